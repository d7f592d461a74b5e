"""Render what happened: Mermaid sequence, state and flowchart diagrams, and a matplotlib timeline.

Everything here is deterministic text (or a figure whose only compared output is its size), so nbval can compare
it: no ids, no timestamps, logical step numbers instead of wall-clock times.

JupyterLab (4.1 and later) renders Mermaid natively, both as the ``text/vnd.mermaid`` MIME type and as a
```` ```mermaid ```` block in Markdown; :class:`Mermaid` offers both, plus the source as ``text/plain`` so a plain
console, ``nbval`` and a reader of the stored notebook all see the diagram's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helpers.instruments import plots

MERMAID_MIME = "text/vnd.mermaid"

#: Mermaid styles for what a diagram highlights: the path taken, and where it failed.
HIGHLIGHT_STYLE = "fill:#d7f0d7,stroke:#2e7d32,stroke-width:2px"
FAILED_STYLE = "fill:#f8d7da,stroke:#c62828,stroke-width:2px"
TAKEN_EDGE_STYLE = "stroke:#2e7d32,stroke-width:3px"

#: The Mermaid arrow for each trace step kind (crash and note are drawn as notes).
ARROWS: dict[str, str] = {
    "call": "->>",
    "effect": "->>",
    "reply": "-->>",
    "error": "-->>",
    "send": "-)",
    "lost": "--x",
}

#: Marker and colour for each step kind on a timeline.
MARKERS: dict[str, tuple[str, str]] = {
    "call": ("o", "tab:blue"),
    "send": (">", "tab:blue"),
    "reply": (".", "tab:gray"),
    "effect": ("D", "tab:red"),
    "lost": ("x", "tab:orange"),
    "error": ("s", "tab:orange"),
    "crash": ("X", "black"),
    "note": ("|", "tab:gray"),
}

_RESERVED = {
    "end", "loop", "alt", "opt", "par", "and", "else", "rect", "note", "participant", "actor", "activate",
    "deactivate", "critical", "break", "box", "title", "autonumber", "links", "link", "properties", "details",
    "create", "destroy", "over", "state", "as", "direction", "classdef", "class", "click", "style",
}  # fmt: skip


class Mermaid:
    """A Mermaid diagram: displays as a diagram in JupyterLab, compares as its source text under nbval."""

    def __init__(self, source: str) -> None:
        self.source = source.rstrip("\n")

    def markdown(self) -> str:
        return f"```mermaid\n{self.source}\n```"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {MERMAID_MIME: self.source, "text/markdown": self.markdown(), "text/plain": self.source}

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Mermaid({self.source.splitlines()[0] if self.source else ''!r}, {len(self.source.splitlines())} lines)"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mermaid):
            return self.source == other.source
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def lines(self) -> list[str]:
        return self.source.splitlines()


def escape(text: Any) -> str:
    """Text safe inside a Mermaid label: ``#`` and ``;`` as entity codes, newlines as ``<br/>``."""
    out = re.sub(r"[#;]", lambda m: "#35;" if m.group() == "#" else "#59;", str(text))
    return out.replace("\r\n", "\n").replace("\n", "<br/>")


def identifier(name: str, taken: set[str] | None = None) -> str:
    """A Mermaid-safe id for ``name`` (letters, digits, underscores; not a keyword; unique within ``taken``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "x"
    if ident[0].isdigit():
        ident = "n" + ident
    if ident.lower() in _RESERVED:
        ident += "_"
    if taken is not None:
        base, n = ident, 2
        while ident in taken:
            ident, n = f"{base}_{n}", n + 1
        taken.add(ident)
    return ident


def class_lines(classes: Mapping[str, str], members: Mapping[str, Iterable[str]]) -> list[str]:
    """``classDef`` lines for every class, then a ``class`` line for each class that has members (ids)."""
    lines = [f"    classDef {name} {style}" for name, style in classes.items()]
    for name in classes:
        chosen = list(members.get(name, ()))
        if chosen:
            lines.append(f"    class {','.join(chosen)} {name}")
    return lines


def _frontmatter(title: str | None) -> list[str]:
    if not title:
        return []
    safe = str(title).replace("\n", " ").replace('"', "'")
    return ["---", f'title: "{safe}"', "---"]


# -- sequence diagrams -------------------------------------------------------------------------------------------
def sequence_diagram(
    steps: Iterable[Any],
    *,
    actors: Sequence[str] | None = None,
    title: str | None = None,
    autonumber: bool = False,
    aliases: Mapping[str, str] | None = None,
) -> Mermaid:
    """A ``sequenceDiagram`` from trace steps (objects or dicts with src/dst/label/kind, or from/to/message/kind).

    Participants appear in the order of ``actors``, then in order of first appearance. ``aliases`` maps an actor to
    the text shown for it. Arrows follow :data:`ARROWS`; ``crash`` and ``note`` steps become notes.
    """
    rows = [_step_fields(s) for s in steps]
    order: list[str] = list(dict.fromkeys(actors or []))
    for src, dst, _label, _kind in rows:
        for who in (src, dst):
            if who not in order:
                order.append(who)
    taken: set[str] = set()
    ids = {name: identifier(name, taken) for name in order}
    aliases = dict(aliases or {})
    lines = [*_frontmatter(title), "sequenceDiagram"]
    if autonumber:
        lines.append("    autonumber")
    for name in order:
        shown = aliases.get(name, name)
        if ids[name] == shown:
            lines.append(f"    participant {ids[name]}")
        else:
            lines.append(f"    participant {ids[name]} as {escape(shown)}")
    for src, dst, label, kind in rows:
        if kind in ("note", "crash"):
            text = escape(label if kind == "note" else f"✖ {label}")
            over = ids[src] if src == dst else f"{ids[src]},{ids[dst]}"
            lines.append(f"    Note over {over}: {text}")
            continue
        arrow = ARROWS.get(kind, "->>")
        lines.append(f"    {ids[src]}{arrow}{ids[dst]}: {escape(label) or ' '}")
    return Mermaid("\n".join(lines))


def _step_fields(step: Any) -> tuple[str, str, str, str]:
    if isinstance(step, Mapping):
        src = step.get("src", step.get("from"))
        dst = step.get("dst", step.get("to"))
        label = step.get("label", step.get("message", ""))
        kind = step.get("kind", "call")
    else:
        src, dst, label, kind = step.src, step.dst, step.label, getattr(step, "kind", "call")
    if src is None or dst is None:
        raise ValueError(f"a sequence step needs a sender and a receiver: {step!r}")
    return str(src), str(dst), str(label), str(kind)


# -- state diagrams -----------------------------------------------------------------------------------------------
def state_diagram(
    transitions: Iterable[Any],
    *,
    key: Any | None = None,
    label: str | Any = "reason",
    title: str | None = None,
    start: str | None = "auto",
    final: Iterable[str] = (),
    changes_only: bool = False,
    path: Iterable[Any] | None = None,
    highlight: Iterable[str] = (),
    highlight_class: str = "taken",
) -> Mermaid:
    """A ``stateDiagram-v2`` from a list of transitions.

    Each transition is a dict with ``from``, ``to`` and a label field (``reason`` by default; ``label="event"`` or a
    function of the transition chooses another), or a ``(from, to[, label])`` tuple, or an object with
    ``from_``/``to`` attributes. ``from`` of None, ``""`` or ``"[*]"`` is the start. ``key`` keeps only the
    transitions of that key (dicts with a ``key`` field). Edges appear once per (from, to, label), in order of first
    appearance, with ``xN`` when taken N times. ``start="auto"`` draws ``[*] -->`` the first state when no transition
    starts from ``[*]``; ``final`` states get ``--> [*]``. ``changes_only`` drops self-transitions.

    ``path`` (transitions in the same forms) draws one run over the whole machine: each edge it took gets
    ``· step N`` (its position in the path), edges it took that ``transitions`` lacks are added, and every state it
    visited is highlighted. ``highlight`` names further states to highlight (class ``highlight_class``).
    """
    edges: dict[tuple[str, str, str], int] = {}
    for t in transitions:
        if key is not None and isinstance(t, Mapping) and str(t.get("key")) != str(key):
            continue
        src, dst, text = _transition_fields(t, label)
        if changes_only and src == dst:
            continue
        edges[(src, dst, text)] = edges.get((src, dst, text), 0) + 1
    marked = set(highlight)
    if path is not None:
        edges, visited = _with_path(edges, [_transition_fields(t, label) for t in path])
        marked |= visited
    states = list(dict.fromkeys(s for (src, dst, _t) in edges for s in (src, dst) if s != "[*]"))
    taken: set[str] = set()
    ids = {name: identifier(name, taken) for name in states}
    ids["[*]"] = "[*]"
    lines = [*_frontmatter(title), "stateDiagram-v2"]
    for name in states:
        if ids[name] != name:
            lines.append(f'    state "{escape(name)}" as {ids[name]}')
    if start == "auto":
        if edges and not any(src == "[*]" for (src, _d, _t) in edges):
            first = next(iter(edges))[0]
            lines.append(f"    [*] --> {ids[first]}")
    elif start:
        lines.append(f"    [*] --> {ids.get(start, identifier(start))}")
    for (src, dst, text), n in edges.items():
        shown = text if n == 1 else f"{text} x{n}" if text else f"x{n}"
        suffix = f": {escape(shown)}" if shown else ""
        lines.append(f"    {ids[src]} --> {ids[dst]}{suffix}")
    for name in final:
        lines.append(f"    {ids.get(name, identifier(name))} --> [*]")
    if marked:
        chosen = [ids.get(name, identifier(name)) for name in sorted(marked - {"[*]"})]
        lines += class_lines({highlight_class: HIGHLIGHT_STYLE}, {highlight_class: chosen})
    return Mermaid("\n".join(lines))


def _with_path(
    edges: dict[tuple[str, str, str], int], path: list[tuple[str, str, str]]
) -> tuple[dict[tuple[str, str, str], int], set[str]]:
    """The edges relabelled with the steps of ``path`` that took them (new ones appended), and the states visited."""
    steps: dict[tuple[str, str, str], list[str]] = {}
    for n, edge in enumerate(path, 1):
        steps.setdefault(edge, []).append(str(n))

    def relabel(edge: tuple[str, str, str]) -> tuple[str, str, str]:
        src, dst, text = edge
        return (src, dst, f"{text} · step {', '.join(steps[edge])}") if edge in steps else edge

    out = {relabel(e): n for e, n in edges.items()}
    for edge in steps:
        if edge not in edges:
            out[relabel(edge)] = 1
    return out, {s for src, dst, _ in steps for s in (src, dst)}


def _transition_fields(t: Any, label: str | Any) -> tuple[str, str, str]:
    if isinstance(t, Mapping):
        src = t.get("from", t.get("from_"))
        dst = t.get("to")
        text = label(t) if callable(label) else t.get(label, "")
    elif isinstance(t, tuple | list):
        src, dst = t[0], t[1]
        text = t[2] if len(t) > 2 else ""
        if callable(label):
            text = label(t)
    else:
        src = getattr(t, "from_", getattr(t, "src", None))
        dst = getattr(t, "to", getattr(t, "dst", None))
        text = label(t) if callable(label) else getattr(t, label, "")
    if dst in (None, ""):
        raise ValueError(f"a transition needs a target state: {t!r}")
    src = "[*]" if src in (None, "", "[*]") else str(src)
    return src, str(dst), "" if text is None else str(text)


# -- flowcharts --------------------------------------------------------------------------------------------------
#: Node shapes a flowchart draws: opening and closing brackets around the quoted label.
SHAPES: dict[str, tuple[str, str]] = {
    "box": ('["', '"]'),
    "decision": ('{"', '"}'),
    "terminal": ('(["', '"])'),
    "slanted": ('[/"', '"/]'),
}


@dataclass(frozen=True)
class FlowNode:
    """A flowchart node: a Mermaid id, the text shown, and a shape from :data:`SHAPES`."""

    id: str
    label: str
    shape: str = "box"


@dataclass(frozen=True)
class FlowGroup:
    """A subgraph: a box around nodes (and further groups)."""

    id: str
    label: str
    children: tuple[FlowNode | FlowGroup, ...]


@dataclass(frozen=True)
class FlowEdge:
    src: str
    dst: str
    label: str = ""
    dashed: bool = False


def flowchart(
    items: Iterable[FlowNode | FlowGroup],
    edges: Iterable[FlowEdge],
    *,
    direction: str = "TD",
    classes: Mapping[str, str] | None = None,
    members: Mapping[str, Iterable[str]] | None = None,
    highlight_edges: Iterable[int] = (),
    edge_style: str = TAKEN_EDGE_STYLE,
) -> Mermaid:
    """A ``flowchart``: nodes and groups in order, then the edges (numbered from 0 in the order given).

    ``classes`` maps a class name to its style and ``members`` the class to node ids; ``highlight_edges`` are edge
    numbers drawn with ``edge_style``.
    """
    lines = [f"flowchart {direction}"]

    def emit(item: FlowNode | FlowGroup, indent: str) -> None:
        if isinstance(item, FlowGroup):
            lines.append(f'{indent}subgraph {item.id} ["{_flow_label(item.label)}"]')
            for child in item.children:
                emit(child, indent + "    ")
            lines.append(f"{indent}end")
            return
        opening, closing = SHAPES[item.shape]
        lines.append(f"{indent}{item.id}{opening}{_flow_label(item.label)}{closing}")

    for item in items:
        emit(item, "    ")
    for edge in edges:
        arrow = "-.->" if edge.dashed else "-->"
        text = f'|"{_flow_label(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.src} {arrow}{text} {edge.dst}")
    if classes:
        lines += class_lines(classes, members or {})
    chosen = [str(i) for i in highlight_edges]
    if chosen:
        lines.append(f"    linkStyle {','.join(chosen)} {edge_style}")
    return Mermaid("\n".join(lines))


def _flow_label(text: str) -> str:
    return escape(text).replace('"', "'")


# -- timelines ------------------------------------------------------------------------------------------------------
def timeline(
    rows: Any,
    *,
    lane: str = "key",
    x: str = "step",
    kind: str = "kind",
    lanes: Sequence[str] | None = None,
    legend: Mapping[str, str] | None = None,
    title: str | None = None,
    xlabel: str = "logical step",
    figsize: tuple[float, float] | None = None,
) -> Any:
    """A matplotlib figure: one horizontal lane per ``lane`` value (an order id), a marker per row at ``x``.

    ``rows`` is a list of dicts, a DataFrame, or anything with ``.rows()`` (a :class:`helpers.instruments.trace.Trace`).
    Markers follow :data:`MARKERS` by ``kind``; ``legend`` renames kinds in the legend. Rows without a lane value
    are left out. The figure is closed before it is returned, so it shows exactly once where you display it.
    """
    import matplotlib.pyplot as plt

    records = _records(rows)
    records = [r for r in records if r.get(lane) not in (None, "")]
    order = list(lanes) if lanes is not None else list(dict.fromkeys(str(r[lane]) for r in records))
    position = {name: i for i, name in enumerate(order)}
    height = max(1.6, 0.45 * len(order) + 1.2)
    fig, ax = plt.subplots(figsize=figsize or (9, height))
    kinds = list(dict.fromkeys(str(r.get(kind, "")) for r in records))
    spare = iter(["P", "*", "v", "^", "<", "h"])
    for k in kinds:
        chosen = [r for r in records if str(r.get(kind, "")) == k and str(r[lane]) in position]
        if not chosen:
            continue
        marker, colour = MARKERS.get(k) or (next(spare, "o"), "tab:purple")
        ax.scatter(
            [r[x] for r in chosen],
            [position[str(r[lane])] for r in chosen],
            marker=marker,
            color=colour,
            s=70 if k in ("effect", "crash") else 45,
            label=(legend or {}).get(k, k),
            zorder=3,
        )
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    if kinds:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    plots.check(fig)  # two kinds of step at one place would hide each other
    plt.close(fig)
    return fig


def _records(rows: Any) -> list[dict[str, Any]]:
    if hasattr(rows, "rows") and callable(rows.rows):
        return list(rows.rows())
    if hasattr(rows, "to_dict"):
        frame = rows.reset_index() if getattr(rows.index, "name", None) else rows
        return list(frame.to_dict("records"))
    return [dict(r) for r in rows]
