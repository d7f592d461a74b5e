"""The first and last cells of every notebook: pick the backend, claim a name prefix, start clean, clean up.

Each notebook owns a prefix (``nb06``, ``lab02``...). ``setup`` tears down whatever an earlier (perhaps crashed) run
left under that prefix, so "restart kernel and run all" gives the same results every time, on a private in-kernel
emulator and on the shared ``make lab`` server alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from helpers import backend as backend_mod
from helpers.resources import Resources


def under_test() -> bool:
    """True under CI or nbval, where progress bars and widgets stay quiet."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or "PYTEST_CURRENT_TEST" in os.environ


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
    return Workbook(prefix, live, resources)
