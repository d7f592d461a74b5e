"""pytest plugin: "restart kernel and run all" twice in a row, at the price of one extra run per notebook.

Loaded beside nbval (``-p tests.rerun``, after ``-p tests.workbook_server``), it adds two items to every course
notebook nbval collects (notebooks 01 onwards; 00 only looks around, and a lab's starter fails on purpose):

1. ``[run 1]`` before nbval's cells: the notebook runs in a kernel of its own, on the same backend, and stops before
   its final ``wb.cleanup()`` cell, like a learner who restarts the kernel halfway. Its resources stay behind.
2. nbval's own run is then run 2, in a fresh kernel: it meets what run 1 left, and its outputs are compared with the
   stored ones, so a second run that differs from a first (fresh) one fails.
3. ``[left nothing]`` after nbval's cells: run 2's cleanup removed everything under the notebook's prefix.

Before this plugin a unit test ran every notebook twice more after nbval had run it once; the course was executed
three times for the same guarantee.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMEOUT_S = 120
#: The notebooks that get both runs: the numbered chapters from 01 (00 creates nothing).
RERUN = re.compile(r"notebooks/(0[1-9]|[1-9][0-9])_[^/]+\.ipynb$")


def prefix_of(nb: Any) -> str:
    """The prefix the notebook's ``setup('<prefix>')`` claims."""
    for cell in nb.cells:
        match = re.search(r"""setup\(\s*["']([a-z0-9-]+)["']""", cell.source)
        if cell.cell_type == "code" and match:
            return match.group(1)
    raise AssertionError("the notebook never calls setup('<prefix>')")


def without_cleanup(nb: Any) -> Any:
    """A copy of the notebook without its last ``wb.cleanup()`` cell (which every notebook must have)."""
    copy = nbformat.from_dict(nb)
    cleanup = [i for i, c in enumerate(copy.cells) if c.cell_type == "code" and "wb.cleanup()" in c.source]
    assert cleanup, "the notebook must end with wb.cleanup()"
    del copy.cells[cleanup[-1]]
    return copy


def run_without_cleanup(path: Path, env: dict[str, str]) -> None:
    """Run 1: restart and run all in a fresh kernel, stopping before the cleanup cell; raises on a failing cell."""
    from nbclient import NotebookClient

    nb = without_cleanup(nbformat.read(path, as_version=4))
    client = NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=env)


def left_under(prefix: str, env: dict[str, str]) -> list[str]:
    """What the backend the environment selects still holds under ``prefix``."""
    from helpers.aws import backend as backend_mod
    from helpers.aws.resources import Resources

    return [str(r) for r in Resources(prefix, backend_mod.connect(backend_mod.choose(env))).inventory()]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update({"CI": "true", "TQDM_DISABLE": "1"})
    return env


class FirstRun(pytest.Item):
    def runtest(self) -> None:
        path = Path(str(self.parent.path))
        run_without_cleanup(path, _env())
        prefix = prefix_of(nbformat.read(path, as_version=4))
        assert left_under(prefix, _env()), f"run 1 of {path.name} should leave resources for run 2 to meet"

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.parent.name}: run 1, stopped before cleanup"


class LeftNothing(pytest.Item):
    def runtest(self) -> None:
        path = Path(str(self.parent.path))
        prefix = prefix_of(nbformat.read(path, as_version=4))
        assert left_under(prefix, _env()) == [], f"{path.name}: run 2's cleanup must remove everything under {prefix}"

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.parent.name}: nothing left after cleanup"


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Put run 1 before each notebook's first cell and the leftover check after its last (same xdist scope)."""
    out: list[Any] = []
    index = 0
    while index < len(items):
        item = items[index]
        parent = item.parent
        path = str(getattr(parent, "path", ""))
        if not RERUN.search(path.replace(os.sep, "/")) or type(parent).__name__ != "IPyNbFile":
            out.append(item)
            index += 1
            continue
        end = index
        while end < len(items) and items[end].parent is parent:
            end += 1
        out.append(FirstRun.from_parent(parent, name="run 1 without cleanup"))
        out.extend(items[index:end])
        out.append(LeftNothing.from_parent(parent, name="left nothing"))
        index = end
    items[:] = out
