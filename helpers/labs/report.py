"""What a lab check says: a table of expectations met and missed, a hint per miss, and one verdict.

A check never asserts in silence. It prints a table (one row per expectation: met or missed, what it observed, a
hint for each miss) and then, if anything was missed, raises :class:`LabCheckFailed` naming the first thing to fix.
The error's name and message are stable (no ids, no timings), so a starter notebook can store it and nbval can prove
that the starter fails for exactly that reason, and that the solution passes.

:meth:`Report.verdict` is the one place a check's outcome is decided: everything that wants to know how a check went
(the notebook, the tests, a progress record) reads the :class:`Report` it returns or the one the error carries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from helpers import progress

MET, MISSED = "met", "MISSED"


class LabCheckFailed(Exception):
    """A lab check found expectations missed. The message names the first one and how to fix it."""

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the table above already says everything else."""
        return [f"{type(self).__name__}: {self}"]


@dataclass
class Expectation:
    """One property the check proved or refuted. ``key`` is a stable short name (tests and records use it)."""

    what: str
    met: bool
    observed: str
    hint: str
    key: str = ""


@dataclass
class Report:
    """The expectations of one check, in the order a learner should work through them."""

    lab: str
    expectations: list[Expectation] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic, repr=False)
    #: Seconds from the report's creation to its verdict (None before the verdict): how long the check took.
    seconds: float | None = None

    def expect(self, what: str, met: bool, *, observed: str, hint: str, key: str = "") -> bool:
        self.expectations.append(Expectation(what, bool(met), observed, hint, key))
        return bool(met)

    @property
    def missed(self) -> list[Expectation]:
        return [e for e in self.expectations if not e.met]

    @property
    def passed(self) -> bool:
        return not self.missed

    @property
    def total(self) -> int:
        return len(self.expectations)

    @property
    def met(self) -> int:
        return self.total - len(self.missed)

    @property
    def first_miss(self) -> Expectation | None:
        return next(iter(self.missed), None)

    def keys_missed(self) -> list[str]:
        return [e.key for e in self.missed]

    def table(self) -> str:
        """Plain text, so it reads the same in JupyterLab, on GitHub and in a terminal."""
        width = max((len(e.what) for e in self.expectations), default=0)
        lines = [f"{self.lab}: {self.met} of {self.total} expectations met"]
        for n, e in enumerate(self.expectations, 1):
            lines.append(f"  {n}. [{MET if e.met else MISSED:>6}] {e.what:<{width}}  observed: {e.observed}")
            if not e.met:
                lines.append(f"     {'':>8} hint: {e.hint}")
        return "\n".join(lines)

    def verdict(self) -> Report:
        """Print the table; raise LabCheckFailed naming the first miss, or say the lab is done."""
        self.seconds = time.monotonic() - self.started
        print(self.table())
        first = self.first_miss
        progress.record_check(  # silent: the learner's "where am I" and, in a classroom, the instructor's board
            self.lab, met=self.met, total=self.total, first_miss=first.what if first is not None else None
        )
        if first is not None:
            raise LabCheckFailed(
                f"{len(self.missed)} of {self.total} expectations missed. Fix first: {first.what}. Hint: {first.hint}",
                self,
            )
        print(f"All {self.total} expectations met: {self.lab} is done.")
        return self


def plural(n: int, word: str) -> str:
    """``plural(1, "charge")`` -> "1 charge"; ``plural(2, "crash")`` -> "2 crashes"."""
    return f"{n} {word}{'' if n == 1 else ('es' if word.endswith(('s', 'sh')) else 's')}"
