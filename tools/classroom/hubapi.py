"""The hub's REST API as the launcher uses it (prespawn, benchmark, tests), with the launcher service's token."""

from __future__ import annotations

import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from tools.classroom.board import server_state


class HubError(RuntimeError):
    """The hub refused or did not answer; the message says what was asked."""


@dataclass
class HubApi:
    base: str  # the proxy's URL, e.g. http://127.0.0.1:8000
    token: str
    timeout_s: float = 15.0

    def _url(self, path: str) -> str:
        return f"{self.base}/hub/api/{path}"

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        response = requests.request(
            method, self._url(path), json=body, timeout=self.timeout_s, headers={"Authorization": f"token {self.token}"}
        )
        if response.status_code not in ok:
            raise HubError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def user(self, name: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", f"users/{urllib.parse.quote(name)}")  # type: ignore[no-any-return]
        except HubError:
            return None

    def create_users(self, names: list[str]) -> None:
        missing = [n for n in names if self.user(n) is None]
        if missing:
            self.call("POST", "users", {"usernames": missing})

    def start_server(self, name: str, timeout_s: float = 180.0) -> float:
        """Start a learner's server and wait until it answers; returns the seconds it took."""
        started = time.monotonic()
        self.call("POST", f"users/{urllib.parse.quote(name)}/server", ok=(201, 202, 400))
        while time.monotonic() - started < timeout_s:
            user = self.user(name)
            if server_state(user) == "running":
                return time.monotonic() - started
            time.sleep(0.3)
        raise HubError(f"{name}'s server did not become ready within {timeout_s:.0f} s")

    def stop_server(self, name: str, timeout_s: float = 60.0) -> None:
        self.call("DELETE", f"users/{urllib.parse.quote(name)}/server", ok=(202, 204, 400))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if server_state(self.user(name)) == "stopped":
                return
            time.sleep(0.3)
        raise HubError(f"{name}'s server did not stop within {timeout_s:.0f} s")

    def token_for(self, name: str, note: str = "classroom") -> str:
        """A token of a learner's own (as their server carries): to post records as them."""
        made = self.call("POST", f"users/{urllib.parse.quote(name)}/tokens", {"note": note, "expires_in": 3600})
        return str(made["token"])

    def spawn_all(self, names: list[str], concurrency: int, on_ready: Any = None) -> dict[str, float]:
        """Start every server, ``concurrency`` at a time; ``on_ready(name, seconds)`` is called as each comes up."""
        self.create_users(names)
        seconds: dict[str, float] = {}

        def one(name: str) -> None:
            seconds[name] = self.start_server(name)
            if on_ready is not None:
                on_ready(name, seconds[name])

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for future in [pool.submit(one, n) for n in names]:
                future.result()
        return seconds
