"""instruments.ticks: arrivals, the receiver's schedule, the tick driver and its series; bad input fails clearly."""

from __future__ import annotations

import pytest

from helpers.instruments import ticks


def test_arrivals_spread_orders_over_ticks() -> None:
    assert ticks.arrivals(5, per_tick=2) == {1: [1, 2], 2: [3, 4], 3: [5]}
    assert ticks.arrivals(3, start=4) == {4: [1], 5: [2], 6: [3]}
    assert ticks.arrivals(0) == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 3, "per_tick": -1}, "arrival rate"),
        ({"count": 3, "per_tick": 0}, "arrival rate"),
        ({"count": -1}, "cannot be negative"),
        ({"count": 3, "start": 0}, "numbered from 1"),
    ],
)
def test_arrivals_refuse_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ticks.arrivals(**kwargs)


def test_schedule_says_when_the_receiver_is_up_and_how_much_it_takes() -> None:
    schedule = ticks.Schedule(down=((5, 14), (20, 20)), capacity=3)
    assert [t for t in range(1, 22) if not schedule.is_up(t)] == [*range(5, 15), 20]
    assert schedule.down_ticks() == 11
    assert (schedule.allowance(4), schedule.allowance(5)) == (3, 0)
    assert ticks.Schedule().allowance(1) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"down": ((5, 4),)}, "first <= last"),
        ({"down": ((0, 3),)}, "first <= last"),
        ({"down": ((1,),)}, "pair of ticks"),
        ({"down": ((1.5, 3),)}, "pair of ticks"),
        ({"capacity": 0}, "at least 1 call"),
        ({"capacity": -2}, "at least 1 call"),
    ],
)
def test_schedule_refuses_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ticks.Schedule(**kwargs)


def test_run_stops_when_the_work_is_done() -> None:
    seen: list[int] = []
    last = ticks.run(seen.append, until=lambda tick: tick == 4)
    assert last == 4 and seen == [1, 2, 3, 4]


def test_run_refuses_to_spin_forever() -> None:
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="not done after 5 ticks"):
        ticks.run(seen.append, until=lambda tick: False, max_ticks=5)
    assert seen == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="at least one tick"):
        ticks.run(seen.append, until=lambda tick: True, max_ticks=0)


def test_series_keeps_values_in_tick_order() -> None:
    series = ticks.Series()
    for tick, value in ((2, 5), (1, 3), (3, 0)):
        series.add("depth", tick, value)
    series.add("errors", 2, 1)
    assert series.values("depth") == [3, 5, 0] and series.ticks("depth") == [1, 2, 3]
    assert series.peak("depth") == 5 and series.peak("missing") == 0
    frame = series.frame()
    assert frame.loc[1, "errors"] == 0 and frame.loc[2, "errors"] == 1
    fig = series.plot(shade=[(2, 2)], title="t")
    assert len(fig.axes) == 1


def test_a_receiver_follows_the_schedule() -> None:
    class Switch:
        up = True

        def start(self) -> None:
            assert not self.up, "started twice"
            self.up = True

        def stop(self) -> None:
            assert self.up, "stopped twice"
            self.up = False

    switch, schedule, seen = Switch(), ticks.Schedule(down=((2, 3),)), []
    for tick in range(1, 5):
        schedule.follow(switch, tick)
        schedule.follow(switch, tick)  # idempotent within a tick
        seen.append(switch.up)
    assert seen == [True, False, False, True]
