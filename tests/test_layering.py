"""The helpers' floors, by folder: a module imports only from its own floor or the floors below.

    aws -> instruments -> idempotency -> services -> chapters -> labs      (course.py, progress.py, notebook.py beside)

A module's floor is the folder it lives in, so a new module needs no entry here; a new folder does. Each floor can be
read (and tested) without those above it, and the idempotency library can be copied out without the course.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"

#: helpers/<folder>/ -> its floor. ``course`` is data (the course map) and may import nothing of helpers;
#: ``progress`` (the learner's records, written by every setup and lab check) reads only the course map, so the
#: lowest floor can record; ``notebook`` is a notebook's first and last cells and may import any floor.
FLOORS: dict[str, int] = {
    "course": 0,
    "progress": 0,
    "aws": 1,
    "instruments": 2,
    "idempotency": 3,
    "services": 4,
    "chapters": 5,
    "labs": 6,
    "notebook": 7,
}


def _floor_of(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if parts[0] == "helpers" and len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """The floors one file imports from (absolute ``helpers.x...`` and ``from helpers import x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_floor_of(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "helpers":
                found |= {a.name for a in node.names}
            else:
                found.add(_floor_of(node.module))
    return found - {""}


FILES = sorted(p for p in HELPERS.rglob("*.py") if p.parent != HELPERS or p.name != "__init__.py")


def _own_floor(path: Path) -> str:
    return path.relative_to(HELPERS).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(HELPERS.parent)))
def test_a_module_imports_nothing_from_a_floor_above_its_own(path: Path) -> None:
    own = _own_floor(path)
    assert own in FLOORS, f"helpers/{own} is on no floor: a new folder needs its place in FLOORS"
    above = sorted(m for m in _imports(path) if FLOORS.get(m, 99) > FLOORS[own])
    assert above == [], f"{path.relative_to(HELPERS)} ({own}, floor {FLOORS[own]}) imports from floors above: {above}"


def test_the_top_of_helpers_holds_only_the_floors_and_the_course_modules() -> None:
    """A new flat module at the top would be a floor of its own by accident: put it in the folder it belongs to."""
    top = {p.name.removesuffix(".py") for p in HELPERS.iterdir() if p.name not in {"__init__.py", "__pycache__"}}
    assert top == set(FLOORS), f"unexpected at the top of helpers/: {sorted(top - set(FLOORS))}"


def test_the_idempotency_library_imports_nothing_of_the_course() -> None:
    for path in sorted((HELPERS / "idempotency").rglob("*.py")):
        assert _imports(path) == set(), (
            f"{path.relative_to(HELPERS)} imports the course: the library must stay copyable"
        )


def test_course_is_data_and_imports_no_floor() -> None:
    assert _imports(HELPERS / "course.py") == set()


def test_test_files_have_unique_names() -> None:
    """tests/ mirrors helpers/ in folders without __init__.py: pytest imports a test file by its name alone, so two
    files of one name in two folders break collection (seen: tests/chapters and tests/labs both had test_routing.py)."""
    tests = Path(__file__).resolve().parent
    names: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}
