"""The AWS resources one run of a check makes for itself: named ``<lab>-check-*``, deleted when the run ends.

A check builds its own scaffolding (a bus and a queue per rule, a queue of payment requests, a state machine) every
time the learner runs it, often many times in one session, and sometimes the learner's code raises or hangs half way.
So a check never builds on the notebook's own :class:`~helpers.aws.resources.Resources`: it takes a scratch set under
a prefix of its own (``lab02-check``, still inside the lab's prefix, so ``make reset`` and the lab's cleanup cell
would find anything left) and tears it down in a ``finally``. The learner's own resources (the ledger, an
idempotency table) are left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from helpers.aws.resources import Resources


@contextlib.contextmanager
def scratch(wb: Any, name: str = "check") -> Iterator[Resources]:
    """Resources named ``<lab prefix>-<name>-*`` for the duration of the block, deleted however it ends."""
    resources = Resources(f"{wb.prefix}-{name}", wb.backend)
    try:
        yield resources
    finally:
        with contextlib.suppress(Exception):  # nothing to report to the learner: make reset would find what is left
            resources.teardown()
