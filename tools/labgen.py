"""Generate a lab's ``starter.ipynb`` and ``solution.ipynb`` from its one source, ``labs/NN_name/lab.md``.

Why one source: the starter and the solution must never drift apart, so both are cut from the same text and a test
(tests/labs/test_labgen.py) regenerates them and compares with the committed copies.

The source is Markdown. Text between code fences becomes Markdown cells (a line ``+++`` splits two of them); each
fenced block becomes a code cell. The fence's info string says what kind of cell:

- ```` ```python ```` an ordinary code cell, the same in both notebooks;
- ```` ```python check ```` a check cell: it calls a check of ``helpers.labs`` and must raise ``LabCheckFailed`` on
  the starter (tagged ``raises-exception`` there, so nbval compares the stored error) and pass on the solution;
- ```` ```python solution ```` / ```` ```python starter ```` a cell that exists only in that notebook
  (Markdown the same way: a block between ``<!-- solution -->`` and ``<!-- end -->``).

Inside a code cell, the part that differs is marked::

    # [solution]
    ...what the solution runs...
    # [starter]
    ...what the learner starts from (the bug, or a TODO)...
    # [end]

Either side may stand alone (``# [starter]`` ... ``# [end]``: lines only the starter has).

Usage: ``python tools/labgen.py`` regenerates every lab (cells only: outputs are stored by ``--execute``);
``python tools/labgen.py --execute labs/03_double_charging_consumer`` also runs both notebooks and stores outputs;
``python tools/labgen.py --check`` exits 1 when a committed notebook's cells differ from its source.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
SOURCE = "lab.md"
VARIANTS = ("starter", "solution")
CHECK_TAG = "lab-check"
RAISES = "raises-exception"

_FENCE = re.compile(r"^```(\S*)\s*(.*)$")
_MARK = re.compile(r"^\s*# \[(solution|starter|end)\]\s*$")
_MD_MARK = re.compile(r"^\s*<!-- (solution|starter|end) -->\s*$")


class LabSourceError(ValueError):
    """The lab source is malformed; the message names the file and line."""


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    lines: list[str]
    role: str = ""  # "", "check", "solution" or "starter"
    line: int = 0
    tags: list[str] = field(default_factory=list)


def parse(text: str, origin: str = SOURCE) -> list[Cell]:
    """Split the source into cells (markers still inside)."""
    cells: list[Cell] = []
    prose: list[str] = []
    prose_start = 1

    def flush_prose() -> None:
        chunk: list[str] = []
        start = prose_start
        for offset, line in enumerate([*prose, "+++"]):
            if line.strip() == "+++":
                while chunk and not chunk[0].strip():
                    chunk.pop(0)
                while chunk and not chunk[-1].strip():
                    chunk.pop()
                if chunk:
                    cells.append(Cell("markdown", chunk, line=start))
                chunk, start = [], prose_start + offset + 1
            else:
                chunk.append(line)
        prose.clear()

    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match and match.group(1):
            if match.group(1) != "python":
                raise LabSourceError(f"{origin}:{i + 1}: only ```python blocks become cells, got ```{match.group(1)}")
            role = match.group(2).strip()
            if role not in ("", "check", "solution", "starter"):
                raise LabSourceError(f"{origin}:{i + 1}: unknown cell kind {role!r} (check, solution or starter)")
            flush_prose()
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise LabSourceError(f"{origin}:{start}: code block never closed")
            cells.append(Cell("code", body, role, start))
            i += 1
            prose_start = i + 1
            continue
        prose.append(lines[i])
        i += 1
    flush_prose()
    return cells


def _select(lines: list[str], variant: str, pattern: re.Pattern[str], origin: str, first_line: int) -> list[str]:
    """Keep the lines of ``variant``: shared lines, plus the variant's side of every marked block."""
    out: list[str] = []
    state = None  # None: shared; "solution" / "starter": inside that side of a block
    opened = 0
    for n, line in enumerate(lines):
        match = pattern.match(line)
        if not match:
            if state is None or state == variant:
                out.append(line)
            continue
        mark = match.group(1)
        where = f"{origin}:{first_line + n}"
        if mark == "solution":
            if state is not None:
                raise LabSourceError(f"{where}: [solution] inside an open block")
            state, opened = "solution", first_line + n
        elif mark == "starter":
            if state == "starter":
                raise LabSourceError(f"{where}: [starter] inside an open [starter] block")
            state, opened = "starter", first_line + n
        else:
            if state is None:
                raise LabSourceError(f"{where}: [end] without [solution]")
            state = None
    if state is not None:
        raise LabSourceError(f"{origin}:{opened}: block opened here is never closed with [end]")
    return out


def build(source: Path, variant: str) -> nbformat.NotebookNode:
    """The notebook for ``variant`` ("starter" or "solution"), without outputs."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    origin = str(source.relative_to(ROOT)) if source.is_relative_to(ROOT) else str(source)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "lab": {"variant": variant, "source": SOURCE},
    }
    for cell in parse(source.read_text(encoding="utf-8"), origin):
        if cell.role in ("solution", "starter") and cell.role != variant:
            continue
        pattern = _MD_MARK if cell.kind == "markdown" else _MARK
        lines = _select(cell.lines, variant, pattern, origin, cell.line)
        text = "\n".join(lines).strip("\n")
        if not text.strip():
            continue
        if cell.kind == "markdown":
            new = nbformat.v4.new_markdown_cell(text)
        else:
            new = nbformat.v4.new_code_cell(text)
            if cell.role == "check":
                new.metadata["tags"] = [CHECK_TAG, RAISES] if variant == "starter" else [CHECK_TAG]
        new["id"] = f"{variant[:4]}-{len(nb.cells):02d}"
        nb.cells.append(new)
    if not any(CHECK_TAG in c.metadata.get("tags", []) for c in nb.cells):
        raise LabSourceError(f"{origin}: a lab needs at least one ```python check cell")
    return nb


def cells_only(nb: Any) -> list[dict[str, Any]]:
    """What the source decides (type, id, text, tags), without outputs: the part a drift test compares."""
    return [
        {"type": c.cell_type, "id": c.get("id"), "source": c.source, "tags": list(c.metadata.get("tags", []))}
        for c in nb.cells
    ]


def lab_dirs() -> list[Path]:
    return sorted(p for p in LABS.glob("*/") if (p / SOURCE).exists())


def write(lab: Path, *, keep_outputs: bool = True) -> list[Path]:
    """Regenerate both notebooks of ``lab``; outputs already stored are kept when the cell's text is unchanged."""
    written = []
    for variant in VARIANTS:
        target = lab / f"{variant}.ipynb"
        fresh = build(lab / SOURCE, variant)
        if keep_outputs and target.exists():
            old = {c.get("id"): c for c in nbformat.read(target, as_version=4).cells}
            for cell in fresh.cells:
                previous = old.get(cell.get("id"))
                if cell.cell_type == "code" and previous is not None and previous.source == cell.source:
                    cell.outputs = copy.deepcopy(previous.get("outputs", []))
                    cell.execution_count = previous.get("execution_count")
        nbformat.write(fresh, target)
        written.append(target)
    return written


def execute(lab: Path) -> None:
    """Run both notebooks in place, the way `make notebook` runs a notebook (one shared moto server, as under
    `make lab`), to store their outputs; the starter's check cells raise, as their ``raises-exception`` tag expects."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from execute_notebooks import main as execute_notebooks
    from strip_timings import strip

    targets = [lab / f"{variant}.ipynb" for variant in VARIANTS]
    execute_notebooks([str(t) for t in targets])
    for target in targets:
        strip(target)


def drift(lab: Path) -> list[str]:
    """Which committed notebooks of ``lab`` differ from what the source generates (empty when none)."""
    problems = []
    for variant in VARIANTS:
        target = lab / f"{variant}.ipynb"
        if not target.exists():
            problems.append(f"{target.relative_to(ROOT)} is missing: run python tools/labgen.py")
        elif cells_only(nbformat.read(target, as_version=4)) != cells_only(build(lab / SOURCE, variant)):
            problems.append(f"{target.relative_to(ROOT)} differs from {SOURCE}: run python tools/labgen.py --execute")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", type=Path, help="lab folders (default: every lab)")
    parser.add_argument("--execute", action="store_true", help="run both notebooks and store their outputs")
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 when there is some")
    args = parser.parse_args(argv)
    labs = [p.resolve() for p in args.labs] or lab_dirs()
    if args.check:
        problems = [p for lab in labs for p in drift(lab)]
        print("\n".join(problems) or f"{len(labs)} labs match their sources")
        return 1 if problems else 0
    for lab in labs:
        for path in write(lab):
            print(f"wrote {path.relative_to(ROOT)}")
        if args.execute:
            execute(lab)
            print(f"executed {lab.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
