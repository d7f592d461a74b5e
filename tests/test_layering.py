"""The helpers' layering: backend -> resources -> faults/ledger/trace/viz -> idempotency -> systems -> notebook.

A module imports only from its own layer or the ones below, so each layer can be read (and tested) without those
above it, and the idempotency library can be copied out without the course's systems.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"

#: The first dotted part under ``helpers`` names the module's layer.
LAYERS: dict[str, int] = {
    "capabilities": 0,
    "course": 0,
    "backend": 1,
    "resources": 2,
    "faults": 3,
    "ticks": 3,
    "ledger": 3,
    "trace": 3,
    "viz": 3,
    "idempotency": 4,
    "payments": 5,
    "delivery": 5,
    "workflows": 5,
    "powertools": 5,
    "orchestration": 5,
    "choreography": 5,
    "routing": 5,
    "messaging": 5,
    "pipeline": 5,
    "capstone": 5,
    "styles": 5,
    "event_design": 5,
    "notebook": 6,
    "labs": 6,
}


def _top(dotted: str) -> str:
    return dotted.split(".")[1] if dotted.startswith("helpers.") else ""


def _imports(path: Path) -> set[str]:
    """The helpers modules one file imports (absolute ``helpers.x`` and ``from helpers import x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_top(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "helpers":
                found |= {a.name for a in node.names}
            else:
                found.add(_top(node.module))
    return found - {""}


FILES = sorted(p for p in HELPERS.rglob("*.py") if p.name != "__init__.py" or p.parent != HELPERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(HELPERS.parent)))
def test_a_module_imports_nothing_from_a_layer_above_its_own(path: Path) -> None:
    own = path.relative_to(HELPERS).parts[0].removesuffix(".py")
    assert own in LAYERS, f"helpers/{own} has no layer: add it to LAYERS"
    above = sorted(m for m in _imports(path) if LAYERS.get(m, -1) > LAYERS[own])
    assert above == [], f"{path.name} ({own}, layer {LAYERS[own]}) imports from higher layers: {above}"
