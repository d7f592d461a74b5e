"""Stored notebooks carry no per-cell execution timestamps (`make notebook` strips them: tools/strip_timings.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import strip_timings  # noqa: E402

STORED = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("labs/**/*.ipynb")])


@pytest.mark.parametrize("path", STORED, ids=lambda p: str(p.relative_to(ROOT)))
def test_stored_notebook_has_no_execution_timestamps(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    timed = [n for n, cell in enumerate(cells) if strip_timings.TIMING_KEY in cell.get("metadata", {})]
    assert timed == [], f"cells {timed} carry execution timestamps: store the notebook with `make notebook NB={path}`"


def test_strip_removes_timestamps_and_keeps_everything_else(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    timed = nbformat.v4.new_code_cell("1 + 1", metadata={"execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}})
    timed.metadata["tags"] = ["keep"]
    notebook.cells = [timed, nbformat.v4.new_markdown_cell("text")]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert strip_timings.strip(path) is True
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[0].metadata == {"tags": ["keep"]} and stored.cells[0].source == "1 + 1"
    before = path.read_text()
    assert strip_timings.strip(path) is False and path.read_text() == before  # untouched the second time
    assert strip_timings.main([str(tmp_path / "missing.ipynb")]) == 1
