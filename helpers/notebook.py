"""The first and last cells of every notebook: pick the backend, claim a name prefix, start clean, clean up.

Each notebook owns a prefix (``nb06``, ``lab02``...). ``setup`` tears down whatever an earlier (perhaps crashed) run
left under that prefix, so "restart kernel and run all" gives the same results every time, on a private in-kernel
emulator and on the shared ``make lab`` server alike.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from helpers import progress
from helpers.aws import backend as backend_mod
from helpers.aws.resources import Resources
from helpers.progress import under_test

__all__ = ["PrivateEmulator", "Workbook", "private_emulator", "setup", "under_test"]


@dataclass
class Workbook:
    prefix: str
    backend: backend_mod.Backend
    resources: Resources

    def client(self, service: str, **config: Any) -> Any:
        return self.backend.client(service, **config)

    def supports(self, capability: str) -> bool:
        return self.backend.supports(capability)

    def explain(self, capability: str) -> str:
        return self.backend.explain(capability)

    def cleanup(self) -> None:
        """Delete everything this notebook created; prints a line a learner can trust."""
        deleted = self.resources.teardown()
        left = self.resources.inventory()
        assert not left, f"teardown left resources behind: {left}"
        print(f"cleanup: removed {deleted} resources under '{self.resources.prefix}-'; nothing left behind")


def setup(prefix: str, *, quiet: bool = False) -> Workbook:
    """Connect to the backend, tear down leftovers under ``prefix`` and say where the notebook runs."""
    if under_test():
        os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        live = backend_mod.current()
    except backend_mod.BackendError as exc:
        # A learner gets one sentence that says what to do, not a traceback.
        raise SystemExit(f"Cannot reach the AWS backend.\n{exc}") from None
    resources = Resources(prefix, live)
    if not quiet:
        # Said before anything is created or deleted, so a learner on real AWS sees the account first.
        where = "a moto server inside this kernel" if live.in_kernel else live.endpoint_url
        if live.name == "aws":
            account, region = resources.account_region
            where = f"REAL AWS account {account}, region {region}"
        print(f"backend: {live.name} ({where}); resources are named '{resources.prefix}-*'")
    if live.fresh:
        live.fresh = False  # an emulator started a moment ago in this kernel is empty: nothing to tear down
    else:
        resources.teardown()
    progress.record_setup(prefix)  # silent: the learner's "where am I" and, in a classroom, the instructor's board
    return Workbook(prefix, live, resources)


@dataclass
class PrivateEmulator:
    """A moto that only this ``with`` block talks to, whose clock the notebook moves (see ``private_emulator``)."""

    clock: Any  # freezegun's frozen clock: .tick(seconds) moves it
    region: str
    _session: boto3.session.Session = field(repr=False)
    _queues: list[tuple[Any, str]] = field(default_factory=list, repr=False)

    def client(self, service: str, **config: Any) -> Any:
        # The configured endpoint (the shared `make lab` server, LocalStack) is ignored on purpose: these calls stay
        # in this kernel, where moto answers them under the moved clock.
        client = self._session.client(
            service, region_name=self.region, config=Config(ignore_configured_endpoint_urls=True, **config)
        )
        if service == "sqs":
            client.meta.events.register(
                "after-call.sqs.CreateQueue",
                lambda parsed, **_: self._queues.append((client, parsed["QueueUrl"])) if "QueueUrl" in parsed else None,
            )
        return client

    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    def _delete_queues(self) -> None:
        for client, url in reversed(self._queues):
            client.delete_queue(QueueUrl=url)
        self._queues.clear()


@contextmanager
def private_emulator(
    start: datetime | None = None, region: str = backend_mod.DEFAULT_REGION
) -> Iterator[PrivateEmulator]:
    """Run a demo on moto inside this kernel with a frozen clock the notebook moves by hand.

    Why: no emulator *server* lets a notebook move its clock (not the shared `make lab` server, not LocalStack), yet
    a 5-minute window is only convincing when it is crossed. moto in this process under freezegun is the one place
    where time can be moved; the demo says that it runs there. Whatever the block creates in SQS is deleted at the
    end, and the data of the notebook's own backend is left alone (moto's mock starts and stops without a reset).
    """
    from freezegun import freeze_time
    from moto import mock_aws

    mock = mock_aws()
    mock.start(reset=False)
    # Made up at run time: moto accepts any keys, and none is written down anywhere.
    session = boto3.session.Session(
        aws_access_key_id=secrets.token_hex(10), aws_secret_access_key=secrets.token_hex(20)
    )
    try:
        with freeze_time(start or datetime.now(UTC)) as clock:
            emulator = PrivateEmulator(clock, region, session)
            try:
                yield emulator
            finally:
                emulator._delete_queues()
    finally:
        mock.stop(remove_data=False)
