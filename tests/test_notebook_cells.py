"""A code cell shows the lesson, not the harness: machinery over ~40 lines belongs in helpers/chapters, with a test.

Every code cell over ``MAX_LINES`` is reported (a warning in the test summary, so a long lesson cell is seen and
split); one that defines a function or a class at its top level is harness, and fails.
"""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 40
NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("labs/*/*.ipynb")])


def _code_cells(path: Path) -> list[tuple[str, str]]:
    cells = json.loads(path.read_text())["cells"]
    return [(c.get("id", str(i)), "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def _defines(source: str) -> list[str]:
    """The functions and classes a cell defines at its top level (IPython magics make a cell unparsable: none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node.name for node in tree.body if isinstance(node, kinds)]


def long_cells(path: Path) -> list[tuple[str, int, list[str]]]:
    """(cell id, lines, names it defines) for every code cell over MAX_LINES."""
    out = []
    for cell_id, source in _code_cells(path):
        lines = len(source.splitlines())
        if lines > MAX_LINES:
            out.append((cell_id, lines, _defines(source)))
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_harness_cell_over_the_limit(path: Path) -> None:
    harness = []
    for cell_id, lines, defines in long_cells(path):
        if defines:
            harness.append(f"cell {cell_id}: {lines} lines defining {', '.join(defines)}")
        else:
            warnings.warn(f"{path.relative_to(ROOT)} cell {cell_id}: {lines} lines (split it)", stacklevel=1)
    assert not harness, (
        f"{path.relative_to(ROOT)} has harness cells over {MAX_LINES} lines; move them into helpers/chapters "
        "(with a test): " + "; ".join(harness)
    )


def test_the_rule_tells_harness_from_lesson() -> None:
    harness = "def scenario():\n" + "    x = 1\n" * MAX_LINES
    lesson = "x = 1\n" * (MAX_LINES + 1)
    assert _defines(harness) == ["scenario"] and _defines(lesson) == []
    assert _defines("%time x = 1") == []
