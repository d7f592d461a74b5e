"""Logical time for the integration-style demos: ticks, arrivals, a receiver's schedule, and what was measured.

Wall time on an emulator measures the emulator, so the part-one notebooks count time in **ticks**: tick 1, 2, 3...
At each tick orders arrive, the receiver is up or down (and accepts at most ``capacity`` calls), and a consumer
takes what it can. The real services still carry every message; only the clock is simulated. Nothing here sleeps.

- :func:`arrivals` says which orders arrive at which tick (``per_tick`` of them, numbered from 1);
- :class:`Schedule` says when the receiver is down and how many calls per tick it accepts;
- :func:`run` drives a ``step(tick)`` function until the work is done, with a hard bound so a bug cannot spin;
- :class:`Series` keeps one number per tick and series name (queue depth, errors...), for asserts and plots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from helpers.instruments import plots


def arrivals(count: int, *, per_tick: int = 1, start: int = 1) -> dict[int, list[int]]:
    """Order numbers (1..count) by the tick they arrive at: ``per_tick`` orders each tick from ``start``."""
    if count < 0:
        raise ValueError(f"count={count}: the number of orders cannot be negative")
    if per_tick < 1:
        raise ValueError(f"per_tick={per_tick}: the arrival rate must be at least 1 order per tick")
    if start < 1:
        raise ValueError(f"start={start}: ticks are numbered from 1")
    out: dict[int, list[int]] = {}
    for n in range(1, count + 1):
        out.setdefault(start + (n - 1) // per_tick, []).append(n)
    return out


@dataclass(frozen=True)
class Schedule:
    """When the receiver is down (``down``: inclusive ``(first, last)`` tick windows) and how many calls it
    accepts per tick (``capacity``; None means no limit). The numbers are the demo's, chosen by the notebook."""

    down: tuple[tuple[int, int], ...] = ()
    capacity: int | None = None

    def __post_init__(self) -> None:
        windows = tuple(tuple(w) for w in self.down)
        for window in windows:
            if len(window) != 2 or not all(isinstance(t, int) and not isinstance(t, bool) for t in window):
                raise ValueError(f"down window {window!r} must be a pair of ticks (first, last)")
            first, last = window
            if first < 1 or last < first:
                raise ValueError(f"down window {window!r}: need 1 <= first <= last")
        if self.capacity is not None and (not isinstance(self.capacity, int) or self.capacity < 1):
            raise ValueError(f"capacity={self.capacity!r}: a receiver accepts at least 1 call per tick (or None)")
        object.__setattr__(self, "down", windows)

    def is_up(self, tick: int) -> bool:
        return not any(first <= tick <= last for first, last in self.down)

    def allowance(self, tick: int) -> int | None:
        """Calls the receiver accepts at ``tick``: 0 when down, ``capacity`` otherwise (None: unlimited)."""
        return 0 if not self.is_up(tick) else self.capacity

    def down_ticks(self) -> int:
        return sum(last - first + 1 for first, last in self.down)

    def follow(self, receiver: Any, tick: int) -> None:
        """Stop or start ``receiver`` (anything with ``up``, ``start()``, ``stop()``) so it is up exactly when the
        schedule says it is at ``tick``."""
        if self.is_up(tick) and not receiver.up:
            receiver.start()
        elif not self.is_up(tick) and receiver.up:
            receiver.stop()


def run(step: Callable[[int], object], *, until: Callable[[int], bool], max_ticks: int = 1000, start: int = 1) -> int:
    """Call ``step(tick)`` for tick = start, start+1, ... until ``until(tick)`` is true after a step.

    Returns the last tick run. Raises RuntimeError when ``max_ticks`` pass first (a consumer slower than the
    arrivals never drains its backlog: better a clear error than a notebook that never ends).
    """
    if max_ticks < 1:
        raise ValueError(f"max_ticks={max_ticks}: run at least one tick")
    tick = start
    for tick in range(start, start + max_ticks):
        step(tick)
        if until(tick):
            return tick
    raise RuntimeError(f"the work was not done after {max_ticks} ticks (last tick {tick}); is the consumer stuck?")


@dataclass
class Series:
    """Numbers per tick, by name: ``s.add("depth", tick, 3)``; read with :meth:`values` or :meth:`frame`."""

    data: dict[str, dict[int, float]] = field(default_factory=dict)

    def add(self, name: str, tick: int, value: float) -> None:
        self.data.setdefault(name, {})[tick] = value

    def values(self, name: str) -> list[float]:
        """The values of ``name`` in tick order."""
        points = self.data.get(name, {})
        return [points[t] for t in sorted(points)]

    def peak(self, name: str) -> float:
        return max(self.values(name), default=0)

    def ticks(self, name: str) -> list[int]:
        return sorted(self.data.get(name, {}))

    def frame(self, names: Iterable[str] | None = None) -> Any:
        """A pandas table, one row per tick, one column per series (0 where a series has no value)."""
        import pandas as pd

        chosen = list(names) if names is not None else list(self.data)
        ticks = sorted({t for n in chosen for t in self.data.get(n, {})})
        rows = [{"tick": t, **{n: self.data.get(n, {}).get(t, 0) for n in chosen}} for t in ticks]
        return pd.DataFrame(rows, columns=["tick", *chosen]).set_index("tick")

    def plot(
        self,
        names: Iterable[str] | None = None,
        *,
        title: str | None = None,
        ylabel: str = "",
        shade: Iterable[tuple[int, int]] = (),
        shade_label: str = "receiver down",
        figsize: tuple[float, float] | None = None,
        panels: bool | None = None,
    ) -> Any:
        """A step plot of the series over ticks; ``shade`` marks windows (the outage). Closed before returned.

        Every series it names can be seen (see :mod:`helpers.instruments.plots`): series that share a stretch of
        values would cover each other in one panel, so they get a panel each (``panels=None`` decides;
        ``panels=False`` refuses them), a series identical to an earlier one says "(same values as X)" in its
        legend, each series has its own marker, and the legends stand beside the panels, out of the data.
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        chosen = list(names) if names is not None else list(self.data)
        missing = [n for n in chosen if not self.data.get(n)]
        if not chosen or missing:
            raise ValueError(f"nothing to draw for {missing or 'no series'}: name series that have values")
        points = {n: list(zip(self.ticks(n), self.values(n), strict=True)) for n in chosen}
        covering = plots.overlapping(points)
        if panels is None:
            panels = bool(covering)
        elif not panels and covering:
            pairs = ", ".join(f"{a!r} and {b!r}" for a, b in covering)
            raise ValueError(f"{pairs} share values and would cover each other in one panel: use panels=True")
        same = plots.identical(points)
        rows = len(chosen) if panels else 1
        size = figsize or ((8, 3.2) if rows == 1 else (10, 1.0 + 1.5 * rows))
        counts = all(float(y).is_integer() for pts in points.values() for _, y in pts)
        fig, grid = plt.subplots(rows, 1, figsize=size, sharex=True, sharey=True, squeeze=False)
        axes = [row[0] for row in grid]
        for k, ax in enumerate(axes):
            for i, (first, last) in enumerate(shade):
                label = shade_label if i == 0 and k == 0 else None
                ax.axvspan(first - 0.5, last + 0.5, color="tab:red", alpha=0.12, label=label)
        for i, name in enumerate(chosen):
            label = f"{name} ({plots.SAME} {same[name]})" if name in same else name
            ax = axes[i] if panels else axes[0]
            xs, ys = zip(*points[name], strict=True)
            ax.step(xs, ys, where="mid", label=label, linewidth=2, color=f"C{i}",
                    marker=plots.MARKERS[i % len(plots.MARKERS)], markersize=4)  # fmt: skip
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if counts:
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            plots.legend_beside(ax)
        if panels and rows > 1:
            fig.supylabel(ylabel)
        else:
            axes[0].set_ylabel(ylabel)
        axes[-1].set_xlabel("tick (logical time)")
        if title:
            axes[0].set_title(title)
        fig.tight_layout()
        plots.check(fig)
        plt.close(fig)
        return fig
