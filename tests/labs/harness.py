"""Run a lab the way its notebook runs, with the learner's cell replaced by a file: the wrong and the right solutions.

``run_lab(topic, solution_file)`` executes the lab's code cells (generated from ``lab.md`` by tools/labgen.py) in
order: the setup cell, the learner's cell (the one cell whose starter and solution differ) or the file given instead
of it, then the check cell exactly as the notebook has it, then the cleanup cell. It returns the check's
:class:`Report` whether the check passed or failed.

Files under ``wrong/<topic>/`` are plausible wrong solutions, one mistake each. Their first lines say what the
learner was thinking and what the check must answer::

    # learner: "I keep the keys I have seen in a set at module level, so every worker shares it."
    # misses: crash_after, concurrent      <- expectation keys the check must report missed
    # hint: remembers nothing              <- words the hint of the first of them must contain

Files under ``correct/<topic>/`` are right solutions written differently from the shipped one: each must pass.
"""

from __future__ import annotations

import linecache
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from helpers.labs.report import LabCheckFailed, Report

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
import labgen  # noqa: E402

#: Each lab's check module (by topic, as in helpers/labs/) -> the lab's folder.
LABS: dict[str, Path] = {
    "routing": ROOT / "labs" / "01_route_au_nz_and_big_orders",
    "callback": ROOT / "labs" / "02_callback_that_waits_forever",
    "consumer": ROOT / "labs" / "03_double_charging_consumer",
    "endpoint": ROOT / "labs" / "04_idempotent_payment_endpoint",
    "pipeline_keys": ROOT / "labs" / "05_keys_that_survive_the_pipeline",
}


@dataclass(frozen=True)
class Mistake:
    path: Path
    learner: str
    misses: tuple[str, ...]
    hint: str


def solutions(kind: str, topic: str) -> list[Path]:
    """The files of ``wrong/<topic>`` or ``correct/<topic>``, sorted."""
    return sorted((HERE / kind / topic).glob("*.py"))


def mistake(path: Path) -> Mistake:
    header: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"#\s*(learner|misses|hint):\s*(.*)$", line)
        if not match:
            break
        header[match.group(1)] = match.group(2).strip()
    missing = {"learner", "misses", "hint"} - set(header)
    assert not missing, f"{path.relative_to(ROOT)}: the header lacks {sorted(missing)}"
    misses = tuple(m.strip() for m in header["misses"].split(",") if m.strip())
    return Mistake(path, header["learner"], misses, header["hint"])


def reasoning(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# learner:"), f"{path.relative_to(ROOT)}: the first line says the learner's reasoning"
    return first


def notebook(topic: str, variant: str = "solution") -> nbformat.NotebookNode:
    return labgen.build(LABS[topic] / labgen.SOURCE, variant)


def learner_cell(topic: str) -> int:
    """The index of the code cell the learner edits: the one whose starter and solution differ."""
    starter, solution = notebook(topic, "starter"), notebook(topic, "solution")
    differ = [
        n
        for n, (a, b) in enumerate(zip(starter.cells, solution.cells, strict=False))
        if a.cell_type == b.cell_type == "code" and a.source != b.source
    ]
    assert len(differ) == 1, f"{topic}: expected one learner cell, found {differ}"
    return differ[0]


def _register(name: str, source: str) -> None:
    """Make ``source`` readable through linecache under ``name``, as IPython does for a notebook cell."""
    lines = source.splitlines(keepends=True)
    linecache.cache[name] = (len(source), None, lines, name)


def run_lab(
    topic: str,
    solution: Path | None = None,
    *,
    variant: str = "solution",
    prefix: str | None = None,
    source: str | None = None,
) -> Report:
    """Run the lab's cells with its learner cell replaced by ``solution`` (a file) or ``source``; the check's report."""
    lab = LABS[topic]
    nb = notebook(topic, variant)
    own = f'setup("lab{lab.name[:2]}")'
    swap = learner_cell(topic) if (solution is not None or source is not None) else -1
    namespace: dict[str, Any] = {"__name__": "__main__"}
    report: Report | None = None
    try:
        for n, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            is_check = labgen.CHECK_TAG in cell.metadata.get("tags", [])
            if n == swap:
                code = solution.read_text() if solution is not None else str(source)
                name = str(solution) if solution is not None else f"<{topic} learner cell>"
            else:
                code = cell.source if prefix is None else cell.source.replace(own, f'setup("{prefix}")')
                name = f"<{lab.name}/{variant} cell {n}>"
            if "wb.cleanup()" in code and not is_check:
                break
            _register(name, code)
            if is_check:
                try:
                    exec(compile(code, name, "exec"), namespace)
                    report = namespace["report"]
                except LabCheckFailed as failed:
                    report = failed.report
                # A check tears down what it made for itself, passed or failed: only the learner's resources remain.
                left = [n for _, n in namespace["wb"].resources.inventory() if "-check-" in n]
                assert not left, f"{topic}: the check left {left} behind"
                break
            exec(compile(code, name, "exec"), namespace)
    finally:
        if "wb" in namespace:
            namespace["wb"].cleanup()
    assert report is not None, f"{topic}: the check cell gave no report"
    return report


def stored_error(topic: str) -> str:
    nb = nbformat.read(LABS[topic] / "starter.ipynb", as_version=4)
    return next(o.evalue for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error")


def assert_fails_as_described(report: Report, path: Path) -> None:
    """The wrong solution fails, on every expectation its header names, with a hint aimed at the mistake."""
    m = mistake(path)
    missed = report.keys_missed()
    assert not report.passed, f"{path.name} PASSED the check: {m.learner}"
    assert set(m.misses) <= set(missed), f"{path.name}: expected misses {m.misses}, the check missed {missed}"
    hint = next(e.hint for e in report.missed if e.key == m.misses[0])
    assert m.hint.lower() in hint.lower(), f"{path.name}: the hint of {m.misses[0]!r} should say {m.hint!r}: {hint}"
