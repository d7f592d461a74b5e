"""instruments.plots: a figure may not hide a series it names, and every course figure is drawn by a guarded helper.

The wrong figures are kept here as tests that must fail the guard: notebook 01's outage plot as it was (queue depth
and client errors equal until the drain, one line over the other, the legend on the plateau) and notebook 02's
backlog plot (three identical series, one visible line).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from helpers.instruments import plots, ticks, viz

ROOT = Path(__file__).resolve().parents[2]
#: notebook 01's outage: queue depth and client errors so far, equal for ticks 1-14, apart after the drain.
DEPTH = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 8, 6, 4, 2, 0, 0]
ERRORS = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10, 10, 10, 10]
#: notebook 02's backlog while payments is down: the same for the queue, the router and the bus.
BACKLOG = [0, 3, 6, 9, 12, 9, 6, 3, 0]


def _outage() -> ticks.Series:
    series = ticks.Series()
    for tick, (depth, errors) in enumerate(zip(DEPTH, ERRORS, strict=True), start=1):
        series.add("queue depth", tick, depth)
        series.add("sync: client errors so far", tick, errors)
    return series


def _backlogs() -> ticks.Series:
    return ticks.Series({f"{s} backlog": dict(enumerate(BACKLOG, start=1)) for s in ("queue", "router", "bus")})


def _one_panel(series: dict[str, list[float]], *, legend: str = "upper right") -> object:
    """The figure the old ``Series.plot`` drew: every series on one panel, the legend inside it."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, values in series.items():
        ax.step(range(1, len(values) + 1), values, where="mid", label=name)
    ax.legend(loc=legend)
    plt.close(fig)
    return fig


# -- the guard ----------------------------------------------------------------------------------------------------
def test_identical_series_on_one_panel_fail_the_guard() -> None:
    fig = _one_panel({f"{s} backlog": BACKLOG for s in ("queue", "router", "bus")}, legend="center left")
    problems = plots.hidden(fig)
    assert len(problems) == 4 and "'queue backlog' and 'router backlog' share 9 points" in problems[0]
    assert problems[-1] == "panel 1: the legend is drawn over the plotting area (put it beside the panel)"
    with pytest.raises(plots.HiddenSeries, match="one line covers the other"):
        plots.check(fig)


def test_a_stretch_in_common_fails_the_guard_even_if_the_series_differ_later() -> None:
    fig = _one_panel({"queue depth": DEPTH, "sync: client errors so far": ERRORS})
    problems = plots.hidden(fig)
    assert any("share 14 points" in p for p in problems)
    assert any("legend is drawn over the plotting area" in p for p in problems)


def test_a_legend_that_says_same_values_passes_and_one_crossing_point_is_no_stretch() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 2, 3], label="a")
    ax.plot([1, 2, 3], [1, 2, 3], label=f"b ({plots.SAME} a)")
    ax.plot([1, 2, 3], [3, 2, 1], label="c")  # crosses a and b at one point
    plots.legend_beside(ax)
    plt.close(fig)
    assert plots.check(fig) is fig


def test_markers_of_two_kinds_at_one_place_fail_the_guard() -> None:
    fig, ax = plt.subplots()
    ax.scatter([1, 2], [0, 0], label="call")
    ax.scatter([2, 3], [0, 0], label="effect")
    plt.close(fig)
    assert plots.hidden(fig) == ["panel 1: 'call' and 'effect' put 1 markers at the same place"]


def test_identical_and_overlapping_tell_what_would_hide_what() -> None:
    points = {"a": [(1, 0), (2, 1)], "b": [(1, 0), (2, 1)], "c": [(1, 0), (2, 5)], "d": [(2, 1), (1, 0)]}
    assert plots.identical(points) == {"b": "a", "d": "a"}
    assert plots.overlapping(points) == [("a", "b"), ("a", "d"), ("b", "d")]
    assert plots.overlapping(points, at_least=1) == [
        ("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d"),
    ]  # fmt: skip


# -- the helpers that draw ------------------------------------------------------------------------------------------
def test_series_that_share_a_stretch_get_a_panel_each() -> None:
    fig = _outage().plot(["queue depth", "sync: client errors so far"], title="t", shade=[(5, 14)])
    assert len(fig.axes) == 2 and plots.hidden(fig) == []
    labels = [ax.get_legend_handles_labels()[1] for ax in fig.axes]
    assert labels == [["receiver down", "queue depth"], ["sync: client errors so far"]]


def test_identical_series_say_so_in_their_legend() -> None:
    fig = _backlogs().plot(shade=[(4, 7)])
    assert len(fig.axes) == 3 and plots.hidden(fig) == []
    labels = [ax.get_legend_handles_labels()[1][-1] for ax in fig.axes]
    assert labels == [
        "queue backlog",
        "router backlog (same values as queue backlog)",
        "bus backlog (same values as queue backlog)",
    ]


def test_series_apart_share_one_panel_with_the_legend_beside_it() -> None:
    series = ticks.Series()
    for tick in range(1, 6):
        series.add("up", tick, tick)
        series.add("down", tick, 10 - tick)  # meets "up" at tick 5 only
    fig = series.plot()
    assert len(fig.axes) == 1 and plots.hidden(fig) == []
    assert fig.axes[0].get_legend().get_bbox_to_anchor() is not None


def test_series_plot_refuses_what_it_cannot_show() -> None:
    with pytest.raises(ValueError, match="would cover each other in one panel"):
        _backlogs().plot(panels=False)
    with pytest.raises(ValueError, match="nothing to draw"):
        _backlogs().plot(["queue backlog", "missing"])
    with pytest.raises(ValueError, match="nothing to draw"):
        ticks.Series().plot()


def test_bars_label_every_bar_so_a_zero_is_seen() -> None:
    import pandas as pd

    frame = pd.DataFrame({"down": [12, 0, 0], "throttled": [6, 0, 0]}, index=["sync", "queue", "bus"])
    fig = plots.bars(frame, title="orders lost")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["12", "0", "0", "6", "0", "0"] and plots.hidden(fig) == []


def test_a_timeline_passes_the_guard_and_refuses_two_kinds_at_one_place() -> None:
    rows = [{"key": "o-1", "step": 1, "kind": "call"}, {"key": "o-1", "step": 2, "kind": "effect"}]
    assert plots.hidden(viz.timeline(rows)) == []
    with pytest.raises(plots.HiddenSeries, match="markers at the same place"):
        viz.timeline([*rows, {"key": "o-1", "step": 2, "kind": "crash"}])


# -- every course figure ------------------------------------------------------------------------------------------
NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("labs/*/*.ipynb")])
#: Drawing calls a notebook may not make itself: they would bypass the guard.
RAW = {"scatter", "bar", "barh", "hist", "subplots", "figure", "axvspan", "imshow", "fill_between"}


def _raw_drawing(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # an IPython magic: no Python to read
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"imports {n}" for n in names if n and n.split(".")[0] == "matplotlib"]
        elif isinstance(node, ast.Name) and node.id == "plt":
            found.append("uses plt")
        elif isinstance(node, ast.Attribute):
            if node.attr in RAW:
                found.append(f"calls .{node.attr}")
            if isinstance(node.value, ast.Attribute) and node.value.attr == "plot":
                found.append(f"calls .plot.{node.attr} (pandas)")
    return sorted(set(found))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_notebook_draws_only_through_the_guarded_helpers(path: Path) -> None:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    raw = {c.get("id", "?"): _raw_drawing("".join(c["source"])) for c in cells}
    offenders = {cell: found for cell, found in raw.items() if found}
    assert not offenders, (
        f"{path.relative_to(ROOT)} draws by hand, past the guard that every series can be seen: {offenders}; "
        "draw with ticks.Series.plot, Trace.timeline or plots.bars"
    )


def test_the_guard_finds_a_hand_drawn_figure() -> None:
    assert _raw_drawing("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()") == [
        "calls .subplots", "imports matplotlib.pyplot", "uses plt",
    ]  # fmt: skip
    assert _raw_drawing("table.plot.bar(ax=right)") == ["calls .bar", "calls .plot.bar (pandas)"]
    assert _raw_drawing("series.plot(['a'], shade=[(1, 2)])") == []


def _functions_that_draw(path: Path) -> list[tuple[str, bool]]:
    """(function, whether it calls the guard) for each function in ``path`` that makes a matplotlib figure."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        calls = [n.func for n in ast.walk(node) if isinstance(n, ast.Call)]
        attrs = {f.attr for f in calls if isinstance(f, ast.Attribute)}
        attrs |= {f.id for f in calls if isinstance(f, ast.Name)}
        if attrs & {"subplots", "figure"}:
            out.append((node.name, "check" in attrs))
    return out


def test_every_helper_that_draws_calls_the_guard() -> None:
    drawing = {
        f"{path.relative_to(ROOT)}:{name}": guarded
        for path in sorted((ROOT / "helpers").rglob("*.py"))
        for name, guarded in _functions_that_draw(path)
    }
    assert {"helpers/instruments/ticks.py:plot", "helpers/instruments/viz.py:timeline"} <= set(drawing)
    assert [name for name, guarded in drawing.items() if not guarded] == []
