"""The README's repository layout, generated from each folder's own description so it cannot go stale.

A Python package describes itself in its ``__init__.py`` docstring, a module in its docstring, any other folder in
the first paragraph of its ``README.md``. The first sentence of each is what the layout shows. `make readme` writes
it; `python tools/readme.py --check` (run by a test) fails when the README and the tree disagree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Top-level folders, in the order a newcomer meets them (each must describe itself).
TOP = ("notebooks", "labs", "helpers", "tests", "tools", "benchmarks", "docker")
#: How deep the layout goes: helpers down to its floors' modules (the copyable library has its own README), the
#: rest one level.
DEPTH = {"helpers": 3, "helpers/idempotency": 1}
#: helpers/ in floor order (tests/test_layering.py holds the floors), the course modules first.
ORDER = {
    "helpers": (
        "notebook.py",
        "course.py",
        "progress.py",
        "aws",
        "instruments",
        "idempotency",
        "services",
        "chapters",
        "labs",
    )
}
SKIP = {"__pycache__", "__init__.py", "asl", "settings"}


class Undescribed(ValueError):
    """A folder or module without the description the layout needs."""


def first_sentence(text: str) -> str:
    """The first sentence of a docstring or paragraph, on one line."""
    paragraph = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    flat = " ".join(paragraph.split())
    match = re.match(r"(.+?[.!?])(\s|$)", flat)
    return (match.group(1) if match else flat).rstrip(".")


def describe(path: Path) -> str:
    """What ``path`` says of itself: a module's docstring, a package's ``__init__`` docstring, a README."""
    if path.is_file():
        doc = ast.get_docstring(ast.parse(path.read_text()))
    elif (path / "__init__.py").exists():
        doc = ast.get_docstring(ast.parse((path / "__init__.py").read_text()))
    elif (path / "README.md").exists():
        lines = [ln for ln in (path / "README.md").read_text().splitlines() if not ln.startswith("#")]
        doc = "\n".join(lines)
    else:
        doc = None
    if not doc or not doc.strip():
        kind = "a docstring" if path.suffix == ".py" or (path / "__init__.py").exists() else "a README.md"
        raise Undescribed(f"{path.relative_to(ROOT)} needs {kind} saying what it is (the README layout shows it)")
    return first_sentence(doc)


def _children(folder: Path) -> list[Path]:
    entries = [p for p in sorted(folder.iterdir()) if p.name not in SKIP and not p.name.startswith(".")]
    modules = [p for p in entries if p.suffix == ".py"]
    packages = [p for p in entries if p.is_dir() and ((p / "__init__.py").exists() or (p / "README.md").exists())]
    found = modules + packages
    order = ORDER.get(folder.relative_to(ROOT).as_posix())
    if order:
        unplaced = [p.name for p in found if p.name not in order]
        if unplaced:
            raise Undescribed(f"{folder.relative_to(ROOT)}: place {unplaced} in tools/layout.py ORDER")
        found.sort(key=lambda p: order.index(p.name))
    return found


def _lines(path: Path, depth: int, indent: int) -> list[str]:
    name = path.name + ("/" if path.is_dir() else "")
    out = [f"{'  ' * indent}- `{name}`: {describe(path)}"]
    depth = DEPTH.get(path.relative_to(ROOT).as_posix(), depth)
    if path.is_dir() and depth > 1:
        for child in _children(path):
            out += _lines(child, depth - 1, indent + 1)
    return out


def markdown() -> str:
    lines: list[str] = []
    for top in TOP:
        lines += _lines(ROOT / top, 1, 0)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
