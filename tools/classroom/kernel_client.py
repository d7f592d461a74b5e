"""Run code in a learner's kernel from outside, through the hub, as the browser does (REST + the kernel websocket).

The classroom test and the benchmark use it to do what a learner does (open a notebook, run its cells) without a
browser. It speaks the Jupyter messaging protocol over the server's ``/api/kernels/<id>/channels`` websocket.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect


@dataclass
class Execution:
    stdout: str = ""
    stderr: str = ""
    error: tuple[str, str] | None = None  # (ename, evalue)
    seconds: float = 0.0
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class LearnerKernel:
    """A kernel in ``learner``'s server, reached through the hub's proxy with a token that may access it."""

    def __init__(self, base: str, token: str, learner: str) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.learner = learner
        self.session = uuid.uuid4().hex
        self.kernel_id: str | None = None
        self._ws: WebSocketClientConnection | None = None

    def _api(self, path: str) -> str:
        return f"{self.base}/user/{urllib.parse.quote(self.learner)}/api/{path}"

    async def _fetch(self, method: str, path: str, body: Any = None) -> Any:
        request = HTTPRequest(
            self._api(path),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=60,
        )
        response = await AsyncHTTPClient().fetch(request)
        return json.loads(response.body) if response.body else None

    async def start(self) -> LearnerKernel:
        made = await self._fetch("POST", "kernels", {"name": "python3"})
        self.kernel_id = made["id"]
        url = self._api(f"kernels/{self.kernel_id}/channels").replace("http", "ws", 1)
        self._ws = await websocket_connect(
            HTTPRequest(f"{url}?session_id={self.session}", headers={"Authorization": f"token {self.token}"}),
            max_message_size=64 * 1024 * 1024,
        )
        return self

    async def run(self, code: str, timeout_s: float = 120.0) -> Execution:
        """Execute ``code`` and collect what it printed and the error it raised, until the kernel is idle again."""
        assert self._ws is not None, "start() the kernel first"
        msg_id = uuid.uuid4().hex
        await self._ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": self.learner,
                        "session": self.session,
                        "date": datetime.now(UTC).isoformat(),
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "buffers": [],
                    "channel": "shell",
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        result, started, replied, idle = Execution(), time.monotonic(), False, False
        while not (replied and idle):
            remaining = timeout_s - (time.monotonic() - started)
            if remaining <= 0:
                raise TimeoutError(f"{self.learner}'s kernel did not finish within {timeout_s:.0f} s")
            raw = await asyncio.wait_for(self._ws.read_message(), remaining)
            if raw is None:
                raise ConnectionError(f"{self.learner}'s kernel websocket closed")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["header"]["msg_type"], message.get("content", {})
            if kind == "stream":
                if content.get("name") == "stderr":
                    result.stderr += content.get("text", "")
                else:
                    result.stdout += content.get("text", "")
            elif kind == "error":
                result.error = (content.get("ename", ""), content.get("evalue", ""))
            elif kind in ("execute_result", "display_data"):
                result.outputs.append(content.get("data", {}))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        result.seconds = time.monotonic() - started
        return result

    async def shutdown(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self.kernel_id is not None:
            await self._fetch("DELETE", f"kernels/{self.kernel_id}")
            self.kernel_id = None

    async def __aenter__(self) -> LearnerKernel:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
