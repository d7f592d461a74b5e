"""Restart and run all, twice in a row, passes for each notebook: the second run meets what the first left behind.

Each notebook is executed twice, each time in a fresh kernel (nbclient), against ONE backend that outlives both
kernels: the backend the environment selects when ``AWS_ENDPOINT_URL`` or ``WORKBOOK_BACKEND`` is set, else one
moto server started here and handed to both kernels through ``AWS_ENDPOINT_URL``. (Without a shared backend each
kernel would start its own empty emulator and the test would prove nothing.)

The first run stops before the notebook's final ``wb.cleanup()`` cell, like a learner who restarts the kernel halfway,
so its resources and data are still there when the second run starts. The second run must pass, produce the same
compared outputs as the first (after the nbval sanitiser), and leave nothing behind under the notebook's prefix.

Notebooks 01 onwards are covered (00 only looks around); new ones are picked up by the glob. pytest-xdist spreads them
over both cores. Deselect with ``-m "not slow"``.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.aws import backend as backend_mod
from helpers.aws.resources import Resources

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = ("notebooks/0[1-9]_*.ipynb", "notebooks/1[0-9]_*.ipynb")
NOTEBOOKS = sorted({p for pattern in PATTERNS for p in ROOT.glob(pattern)})
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
CELL_TIMEOUT_S = 120
COMPARED = ("text/plain", "text/markdown", "text/html", "text/vnd.mermaid", "text/latex")

pytestmark = pytest.mark.slow


def sanitizers() -> list[tuple[re.Pattern[str], str]]:
    parser = configparser.RawConfigParser()
    parser.read(SANITIZE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def sanitize(text: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def compared_outputs(nb: Any, rules: list[tuple[re.Pattern[str], str]]) -> dict[str, list[str]]:
    """The outputs nbval would compare, per cell id (cells tagged to be ignored or skipped are left out)."""
    found: dict[str, list[str]] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & {"nbval-ignore-output", "nbval-skip"}:
            continue
        raw: list[list[str]] = []  # [label, text]
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                # Like nbval, join consecutive writes to one stream: how the kernel batches them varies by timing.
                if raw and raw[-1][0] == out.name:
                    raw[-1][1] += out.text
                else:
                    raw.append([out.name, out.text])
            elif out.output_type in ("execute_result", "display_data"):
                raw += [[mime, out.data[mime]] for mime in COMPARED if mime in out.data]
        texts = [f"{label}: {sanitize(text, rules)}" for label, text in raw]
        found[cell.get("id", "")] = texts
    return found


def prefix_of(nb: Any) -> str:
    for cell in nb.cells:
        match = re.search(r"""setup\(\s*["']([a-z0-9-]+)["']""", cell.source)
        if cell.cell_type == "code" and match:
            return match.group(1)
    raise AssertionError("the notebook never calls setup('<prefix>')")


def without_cleanup(nb: Any) -> Any:
    copy = nbformat.from_dict(nb)
    cleanup = [i for i, c in enumerate(copy.cells) if c.cell_type == "code" and "wb.cleanup()" in c.source]
    assert cleanup, "the notebook must end with wb.cleanup()"
    del copy.cells[cleanup[-1]]
    return copy


def execute(nb: Any, env: dict[str, str]) -> Any:
    """Restart-and-run-all: a fresh kernel, every cell in order; raises on the first failing cell."""
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute(env=env)
    return nb


@pytest.fixture(scope="module")
def shared_backend() -> Iterator[dict[str, str]]:
    """Environment for the kernels: the selected shared backend, or a moto server that outlives them."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update({"CI": "true", "TQDM_DISABLE": "1"})
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("WORKBOOK_BACKEND"):
        yield env
        return
    with pytest.MonkeyPatch.context() as patch:
        # start_moto_server points MOTO_PORT (read by Step Functions integrations in this process) at its server;
        # the context puts back whatever this test session used before.
        patch.setenv("MOTO_PORT", os.environ.get("MOTO_PORT", ""))
        server, endpoint = backend_mod.start_moto_server()
        try:
            env.update({"AWS_ENDPOINT_URL": endpoint, "WORKBOOK_BACKEND": "embedded"})
            yield env
        finally:
            server.stop()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_restart_and_run_all_twice(path: Path, shared_backend: dict[str, str]) -> None:
    original = nbformat.read(path, as_version=4)
    prefix = prefix_of(original)
    rules = sanitizers()

    first = execute(without_cleanup(original), shared_backend)
    live = backend_mod.connect(backend_mod.choose(shared_backend))
    left = Resources(prefix, live).inventory()
    assert left, f"the first run of {path.name} should leave its resources for the second run to meet"

    second = execute(nbformat.from_dict(original), shared_backend)
    assert Resources(prefix, live).inventory() == [], "the second run's cleanup must remove everything"

    before, after = compared_outputs(first, rules), compared_outputs(second, rules)
    differing = {cell: (before[cell], after.get(cell)) for cell in before if before[cell] != after.get(cell)}
    assert not differing, f"{path.name}: outputs differ between run 1 and run 2 (cell: (run 1, run 2)): {differing}"
