"""Figures that show every series they name: a guard every course plot passes before it is returned.

A line drawn on top of another hides it: the reader sees one series where the legend promises two (notebook 01's
queue depth under its client errors until the drain; notebook 02's three identical backlogs). So the drawing
helpers (:meth:`helpers.instruments.ticks.Series.plot`, :func:`helpers.instruments.viz.timeline`, :func:`bars`)
call :func:`check` on each figure they build, and :func:`check` refuses

- two lines of one panel that share a stretch of points (two or more), unless the legend says so: a label that
  contains :data:`SAME` ("same values as X") tells the reader that one line stands for both;
- two kinds of marker at the same place in one panel (a timeline's steps);
- a legend drawn over the plotting area (it hides data; legends go beside the panel).

:func:`identical` and :func:`overlapping` let a plot decide before it draws: series that would hide each other go
into panels of their own, and a series identical to an earlier one says so in its label.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

#: What a legend label says when one drawn series stands for another with the same values.
SAME = "same values as"
#: Markers per series, so series stay apart even where their lines touch.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

Points = Sequence[tuple[float, float]]


class HiddenSeries(AssertionError):
    """A figure hides a series it names (or covers its data with the legend); the message says which."""


def _key(point: tuple[Any, Any]) -> tuple[float, float]:
    return (round(float(point[0]), 9), round(float(point[1]), 9))


def shared(a: Points, b: Points) -> int:
    """How many points two series have in common (same x, same y)."""
    return len({_key(p) for p in a} & {_key(p) for p in b})


def identical(series: Mapping[str, Points]) -> dict[str, str]:
    """name -> the first earlier name with exactly the same points (series with their own values are absent)."""
    out: dict[str, str] = {}
    seen: list[tuple[str, list[tuple[float, float]]]] = []
    for name, points in series.items():
        key = sorted(_key(p) for p in points)
        match = next((earlier for earlier, other in seen if other == key), None)
        if match is not None:
            out[name] = match
        else:
            seen.append((name, key))
    return out


def overlapping(series: Mapping[str, Points], *, at_least: int = 2) -> list[tuple[str, str]]:
    """Pairs of series that share ``at_least`` points: drawn in one panel, one would cover the other there."""
    return [(a, b) for (a, pa), (b, pb) in itertools.combinations(series.items(), 2) if shared(pa, pb) >= at_least]


def _says_same(*labels: str) -> bool:
    return any(SAME in label for label in labels)


def hidden(fig: Any) -> list[str]:
    """What ``fig`` hides, one sentence per problem (empty: every series it names can be seen)."""
    problems: list[str] = []
    drawn = False
    for number, ax in enumerate(fig.axes, start=1):
        where = f"panel {number}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        lines = [ln for ln in ax.get_lines() if ln.get_visible() and not str(ln.get_label()).startswith("_")]
        for a, b in itertools.combinations(lines, 2):
            la, lb = str(a.get_label()), str(b.get_label())
            common = shared(a.get_xydata(), b.get_xydata())
            if common >= 2 and not _says_same(la, lb):
                problems.append(f"{where}: {la!r} and {lb!r} share {common} points, one line covers the other")
        marks = [c for c in ax.collections if hasattr(c, "get_offsets") and not str(c.get_label()).startswith("_")]
        for a, b in itertools.combinations(marks, 2):
            la, lb = str(a.get_label()), str(b.get_label())
            common = shared(a.get_offsets(), b.get_offsets())
            if common and not _says_same(la, lb):
                problems.append(f"{where}: {la!r} and {lb!r} put {common} markers at the same place")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            if not drawn:  # lay the figure out (no pixels) so the legend and the panel have their places
                fig.draw_without_rendering()
                drawn = True
            box, area = legend.get_window_extent(), ax.get_window_extent()
            width = min(box.x1, area.x1) - max(box.x0, area.x0)
            height = min(box.y1, area.y1) - max(box.y0, area.y0)
            if width > 1 and height > 1:
                problems.append(f"{where}: the legend is drawn over the plotting area (put it beside the panel)")
    return problems


def check(fig: Any) -> Any:
    """Return ``fig`` if it shows every series it names; raise :class:`HiddenSeries` saying what it hides."""
    problems = hidden(fig)
    if problems:
        raise HiddenSeries("this figure hides what it names: " + "; ".join(problems))
    return fig


def legend_beside(ax: Any) -> None:
    """The legend to the right of the panel, out of the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def bars(
    frame: Any,
    *,
    title: str | None = None,
    ylabel: str = "",
    figsize: tuple[float, float] = (8, 3.2),
) -> Any:
    """Grouped bars, one group per row of ``frame`` and one bar per column, each bar labelled with its value (a
    zero bar reads "0" instead of vanishing); legend beside the panel. Checked and closed before it is returned."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    columns = list(frame.columns)
    width = 0.8 / max(len(columns), 1)
    positions = range(len(frame.index))
    for i, column in enumerate(columns):
        offset = (i - (len(columns) - 1) / 2) * width
        drawn = ax.bar([p + offset for p in positions], frame[column].tolist(), width, label=str(column))
        ax.bar_label(drawn, fmt="%g", padding=2)
    ax.set_xticks(list(positions), [str(i) for i in frame.index])
    ax.set_ylabel(ylabel)
    ax.margins(y=0.15)
    if title:
        ax.set_title(title)
    legend_beside(ax)
    fig.tight_layout()
    check(fig)
    plt.close(fig)
    return fig
