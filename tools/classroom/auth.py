"""Login for a room: one password for every learner, a separate strong one for the instructor, and names that stick.

JupyterHub's SharedPasswordAuthenticator lets anyone with the room password log in as *any* learner name, which
would let learner B open learner A's files by typing "alice". Here the first login with a name claims it for that
browser: a signed cookie (the hub's own cookie secret) marks the seat, and the room password opens a claimed name
only in the browser that holds its seat. A learner who lost their browser asks the instructor, who clicks "let in
again" on the board (which releases the claim). The instructor logs in as ``instructor`` with the generated password.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from traitlets import Unicode

SEAT_COOKIE = "workbook-seat"
SEAT_DAYS = 30


class Claims:
    """Which learner names are taken, and by which seat (a random value kept in that browser's signed cookie)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                partial = self.path.with_suffix(".partial")
                partial.write_text(json.dumps(data, indent=2, sort_keys=True))
                os.chmod(partial, 0o600)
                partial.replace(self.path)

    def admit(self, name: str, seat: str | None) -> str | None:
        """The seat to keep in the browser if ``name`` may log in with it (claiming a free name), else None."""
        with self._locked() as data:
            claim = data.get(name)
            if claim is None:
                fresh = secrets.token_urlsafe(24)
                data[name] = {"seat": fresh, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
                return fresh
            if seat is not None and secrets.compare_digest(seat, claim["seat"]):
                return seat
            return None

    def release(self, name: str) -> bool:
        with self._locked() as data:
            return data.pop(name, None) is not None

    def taken(self) -> set[str]:
        with self._locked() as data:
            return set(data)


class RoomAuthenticator(SharedPasswordAuthenticator):  # type: ignore[misc]
    """SharedPasswordAuthenticator whose learner names stay with the browser that first claimed them."""

    claims_file = Unicode(config=True, help="Where the room keeps which learner names are taken")

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        model = await super().authenticate(handler, data)
        if model is None or model.get("admin"):
            return model
        name = model["name"]
        held = handler.get_secure_cookie(SEAT_COOKIE, max_age_days=SEAT_DAYS)
        seat = held.decode() if held else None
        prefix = f"{name}:"
        granted = Claims(Path(self.claims_file)).admit(
            name, seat[len(prefix) :] if seat and seat.startswith(prefix) else None
        )
        if granted is None:
            self.log.warning("learner name %s is taken by another browser: login refused", name)
            return None
        handler.set_secure_cookie(
            SEAT_COOKIE, f"{name}:{granted}", expires_days=SEAT_DAYS, httponly=True, path=handler.hub.base_url
        )
        return model
