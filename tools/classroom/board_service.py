"""The progress board: a JupyterHub service that takes learners' records and shows the room to instructors.

    POST /services/progress/api/records     a learner's kernel posts records with the learner's own hub token; the
                                            record is filed under the token's owner, whatever it says (403 for a
                                            service's token, 401 without one); ids already seen are not counted twice
    GET  /services/progress/                the board (instructors only: hub login, then 403 for a learner)
    GET  /services/progress/board.csv       one line per learner and lab
    GET  /services/progress/api/board       the same data as JSON
    POST /services/progress/learners/<name>/{stop,reset,let-in}     the instructor's actions

Started by the hub (``c.JupyterHub.services``); listens on 127.0.0.1 only. Records are kept in memory and appended to
``<state>/records.jsonl``, which is read back at start, so a restarted hub shows the same board.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from tools.classroom import board, learners, settings
from tools.classroom.auth import Claims
from tools.classroom.room import Room

KINDS = {"setup", "check"}
MAX_BATCH = 200
TEXT_LIMITS = {"notebook": 40, "lab": 40, "title": 200, "first_miss": 300}
_ID = re.compile(r"^[0-9a-f]{8,64}$")


class Store:
    """Every record received, by learner, deduplicated by record id; appended to a file so a restart loses nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.by_learner: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("learner"):
                    self._keep(entry)

    def _keep(self, entry: dict[str, Any]) -> bool:
        if entry.get("id") in self._seen:
            return False
        if entry.get("id"):
            self._seen.add(str(entry["id"]))
        self.by_learner[str(entry["learner"])].append(entry)
        return True

    def add(self, learner: str, entries: list[dict[str, Any]]) -> int:
        """File ``entries`` under ``learner``; returns how many were new."""
        accepted = []
        with self._lock:
            for entry in entries:
                entry = {**entry, "learner": learner}
                if self._keep(entry):
                    accepted.append(entry)
            if accepted:
                with self.path.open("a") as out:
                    out.writelines(json.dumps(e, sort_keys=True) + "\n" for e in accepted)
        return len(accepted)

    def reset(self, learner: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.add(learner, [{"kind": "reset", "at": stamp, "id": os.urandom(16).hex()}])


def clean(entry: Any, received: datetime) -> dict[str, Any] | None:
    """A learner's record as the board keeps it: known kinds and fields only, bounded text, a sane time."""
    if not isinstance(entry, dict) or entry.get("kind") not in KINDS or not _ID.match(str(entry.get("id", ""))):
        return None
    kept: dict[str, Any] = {"kind": entry["kind"], "id": entry["id"]}
    try:
        at = datetime.fromisoformat(str(entry.get("at", "")).replace("Z", "+00:00"))
        if at.tzinfo is None or abs(at - received) > timedelta(days=2):
            raise ValueError
    except ValueError:
        at = received
    kept["at"] = at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for name, limit in TEXT_LIMITS.items():
        value = entry.get(name)
        if isinstance(value, str):
            kept[name] = value[:limit]
    for name in ("met", "total"):
        value = entry.get(name)
        if isinstance(value, int) and 0 <= value <= 1000:
            kept[name] = value
    if kept["kind"] == "check" and (not kept.get("lab") or "total" not in kept):
        return None
    return kept


class Hub:
    """The hub's REST API, with this service's token (scopes from the progress-board role)."""

    def __init__(self) -> None:
        self.url = os.environ["JUPYTERHUB_API_URL"]
        self.token = os.environ["JUPYTERHUB_API_TOKEN"]
        self.client = AsyncHTTPClient()
        self._users: tuple[float, list[dict[str, Any]]] = (0.0, [])

    async def call(self, method: str, path: str) -> Any:
        request = HTTPRequest(
            url_path_join(self.url, path),
            method=method,
            headers={"Authorization": f"token {self.token}"},
            allow_nonstandard_methods=True,
            request_timeout=10,
        )
        response = await self.client.fetch(request)
        return json.loads(response.body) if response.body else None

    async def users(self, max_age_s: float = 3.0) -> list[dict[str, Any]]:
        fetched, cached = self._users
        if time.monotonic() - fetched < max_age_s:
            return cached
        found = await self.call("GET", "users?include_stopped_servers=1&limit=10000")
        users = found if isinstance(found, list) else found.get("items", [])
        self._users = (time.monotonic(), users)
        return users

    async def stop(self, name: str, wait_s: float = 60.0) -> bool:
        try:
            await self.call("DELETE", f"users/{urllib.parse.quote(name)}/server")
        except HTTPClientError as exc:
            if exc.code not in (400, 404):  # 400: not running
                raise
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            user = await self.call("GET", f"users/{urllib.parse.quote(name)}")
            if board.server_state(user) == "stopped":
                self._users = (0.0, [])
                return True
            await asyncio.sleep(0.5)
        return False


class Service:
    def __init__(self, room: Room) -> None:
        self.room = room
        self.store = Store(room.records_file)
        self.claims = Claims(room.claims_file)
        self.hub = Hub()
        # the one HubOAuth of this process: the OAuth callback handler uses the same instance
        self.auth = HubOAuth.instance(cache_max_age=60)

    async def board(self) -> board.Board:
        users = await self.hub.users()
        return board.build(self.store.by_learner, users, datetime.now(UTC), instructors=[settings.INSTRUCTOR])


class RecordsHandler(web.RequestHandler):
    """Records from learners' kernels, authenticated by the learner's own token (no cookie, so no XSRF)."""

    def initialize(self, service: Service) -> None:
        self.service = service

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated API: no browser cookie is involved."""

    async def post(self) -> None:
        match = re.match(r"(?:token|bearer)\s+(\S+)", self.request.headers.get("Authorization", ""), re.I)
        if not match:
            raise web.HTTPError(401, "a learner's hub token is required")
        model = await self.service.auth.user_for_token(match.group(1), sync=False)
        if not model:
            raise web.HTTPError(401, "unknown token")
        if model.get("kind", "user") != "user" or model["name"] == settings.INSTRUCTOR:
            raise web.HTTPError(403, "only learners' tokens file records")
        try:
            body = json.loads(self.request.body or b"[]")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON: a record or a list of records") from None
        entries = body if isinstance(body, list) else [body]
        if len(entries) > MAX_BATCH:
            raise web.HTTPError(413, f"at most {MAX_BATCH} records per request")
        received = datetime.now(UTC)
        kept = [e for e in (clean(entry, received) for entry in entries) if e is not None]
        accepted = await asyncio.to_thread(self.service.store.add, model["name"], kept)
        self.write({"learner": model["name"], "received": len(entries), "accepted": accepted})


class InstructorHandler(HubOAuthenticated, web.RequestHandler):
    """Only users whose hub role grants access to this service (instructors, as admins) get past `authenticated`."""

    def initialize(self, service: Service) -> None:
        self.service = service


class BoardPage(InstructorHandler):
    @web.authenticated
    async def get(self) -> None:
        current = await self.service.board()
        self.render(
            "board.html",
            board=current,
            chart=board.chart_svg(current),
            refresh=settings.BOARD_REFRESH_S,
            said=self.get_argument("said", ""),
            hub_url=self.service.room.url,
            prefix=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"),
        )


class BoardCsv(InstructorHandler):
    @web.authenticated
    async def get(self) -> None:
        current = await self.service.board()
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        stamp = current.generated_at.strftime("%Y%m%d-%H%M")
        self.set_header("Content-Disposition", f'attachment; filename="progress-{stamp}.csv"')
        self.write(board.to_csv(current))


class BoardJson(InstructorHandler):
    @web.authenticated
    async def get(self) -> None:
        self.write(board.to_json(await self.service.board()))


class ActionHandler(InstructorHandler):
    @web.authenticated
    async def post(self, name: str, action: str) -> None:
        room, said = self.service.room, ""
        if action == "stop":
            stopped = await self.service.hub.stop(name)
            said = f"{name}: server stopped" if stopped else f"{name}: the server is still stopping"
        elif action == "reset" and room.spawner != "local":
            raise web.HTTPError(
                501,
                f"reset moves a learner's home aside on this machine only; with {room.spawner}, stop the server "
                "and rename or delete the learner's volume by hand (see tools/classroom/README.md)",
            )
        elif action == "reset":
            if not await self.service.hub.stop(name):
                raise web.HTTPError(409, f"{name}'s server did not stop within a minute: nothing was moved")
            aside = await asyncio.to_thread(learners.move_aside, room, name)
            removed = await asyncio.to_thread(_teardown_shared_backend, room, name)
            self.service.store.reset(name)
            said = f"{name}: work moved to {aside.name if aside else '(nothing to move)'}; fresh copy at next start"
            if removed:
                said += f"; {removed} resources of theirs removed from the shared backend"
        elif action == "let-in":
            released = await asyncio.to_thread(self.service.claims.release, name)
            said = f"{name}: may log in again from a new browser" if released else f"{name} had not logged in yet"
        self.redirect(f"{os.environ.get('JUPYTERHUB_SERVICE_PREFIX', '/')}?{urllib.parse.urlencode({'said': said})}")


def _teardown_shared_backend(room: Room, learner: str) -> int:
    """On a shared backend a reset also removes the learner's resources (a private in-kernel moto has none left)."""
    if room.backend == "embedded":
        return 0
    from helpers.aws import backend as backend_mod
    from helpers.aws.resources import course_prefixes, teardown_all

    live = backend_mod.connect(backend_mod.BackendChoice(room.backend, room.endpoint, backend_mod.DEFAULT_REGION))
    return sum(teardown_all(course_prefixes(live, learner=learner), live).values())


def make_app(room: Room) -> web.Application:
    service = Service(room)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{settings.BOARD_SERVICE}/")
    args = {"service": service}
    return web.Application(
        [
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (url_path_join(prefix, "api/records"), RecordsHandler, args),
            (url_path_join(prefix, "api/board"), BoardJson, args),
            (url_path_join(prefix, "board.csv"), BoardCsv, args),
            (url_path_join(prefix, r"learners/([a-z][a-z0-9]{0,11})/(stop|reset|let-in)"), ActionHandler, args),
            (prefix, BoardPage, args),
            (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
        ],
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,
        template_path=str(Path(__file__).parent / "templates"),
    )


def main() -> int:
    room = Room.load()
    room.state.mkdir(parents=True, exist_ok=True)
    app = make_app(room)
    app.listen(room.board_port, address=room.board_ip, max_body_size=1024 * 1024)
    print(f"progress board on {room.board_ip}:{room.board_port}", file=sys.stderr, flush=True)
    IOLoop.current().start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
