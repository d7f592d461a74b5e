"""Where AWS calls go: an embedded moto server (default), LocalStack, or real AWS when explicitly allowed.

Every notebook, lab and test gets its boto3 clients from here, so one environment variable switches the whole course:

- ``WORKBOOK_BACKEND=embedded`` (default): moto. With ``AWS_ENDPOINT_URL`` set (``make lab`` does this) the kernel
  uses that shared server; otherwise a moto server starts inside the kernel on a free 127.0.0.1 port.
- ``WORKBOOK_BACKEND=localstack``: the endpoint in ``AWS_ENDPOINT_URL`` or ``LOCALSTACK_HOST`` (default
  127.0.0.1:4566), checked with ``/_localstack/health``.
- ``WORKBOOK_BACKEND=aws``: refused unless ``WORKBOOK_ALLOW_REAL_AWS=yes``; the decision is made before any call.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from helpers.aws import capabilities as caps

DEFAULT_REGION = "us-east-1"
ALLOW_REAL_AWS_VALUE = "yes"
HEALTH_TIMEOUT_S = 3.0
LOCALSTACK_SERVICES = ("sqs", "sns", "events", "stepfunctions", "dynamodb", "secretsmanager", "iam", "sts", "logs")
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


class BackendError(RuntimeError):
    """The configured backend cannot be used; the message says what to do."""


class BackendUnavailable(BackendError):
    """Nothing answers at the backend's endpoint."""


class RealAwsRefused(BackendError):
    """Real AWS was asked for without the explicit allowance."""


@dataclass(frozen=True)
class BackendChoice:
    """The pure decision taken from the environment, before anything is started or called."""

    name: str
    endpoint_url: str | None
    region: str
    start_embedded_server: bool = False


def choose(env: Mapping[str, str] | None = None) -> BackendChoice:
    """Decide the backend from environment variables; raises before any network call."""
    env = os.environ if env is None else env
    name = (env.get("WORKBOOK_BACKEND") or "embedded").strip().lower()
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    endpoint = (env.get("AWS_ENDPOINT_URL") or "").strip() or None
    if name == "embedded":
        return BackendChoice("embedded", endpoint, region, start_embedded_server=endpoint is None)
    if name == "localstack":
        if endpoint is None:
            host = (env.get("LOCALSTACK_HOST") or "127.0.0.1:4566").strip()
            endpoint = host if host.startswith("http") else f"http://{host}"
        return BackendChoice("localstack", endpoint, region)
    if name == "aws":
        if env.get("WORKBOOK_ALLOW_REAL_AWS", "").strip().lower() != ALLOW_REAL_AWS_VALUE:
            raise RealAwsRefused(
                "WORKBOOK_BACKEND=aws was refused before any AWS call: real AWS costs money and changes a real "
                "account. To allow it, also set WORKBOOK_ALLOW_REAL_AWS=yes (and credentials for a sandbox "
                "account). To use the emulator instead, unset WORKBOOK_BACKEND."
            )
        if endpoint is not None:
            raise BackendError(
                f"WORKBOOK_BACKEND=aws but AWS_ENDPOINT_URL={endpoint} points at an emulator; unset one of them."
            )
        return BackendChoice("aws", None, region)
    raise BackendError(f"WORKBOOK_BACKEND={name!r} is not a backend; use one of: {', '.join(caps.BACKENDS)}.")


def _http_json(url: str, *, method: str = "GET", body: Any = None, timeout: float = HEALTH_TIMEOUT_S) -> Any:
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith(("http://", "https://")):
        raise BackendError(f"endpoint {url!r} must be an http(s) URL")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - checked above
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw.decode(errors="replace")


def configure_moto_server(endpoint_url: str) -> None:
    """Switch on Step Functions execution on a moto server (idempotent)."""
    _http_json(f"{endpoint_url}/moto-api/config", method="POST", body=MOTO_CONFIG)


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def make_moto_dynamodb_writes_atomic() -> None:
    """Serialise moto's DynamoDB writes so a conditional write is atomic, as it is on AWS.

    moto's server handles requests on many threads and checks a condition before it writes without a lock, so two
    concurrent conditional UpdateItem calls can both succeed (measured here: 2 races in 30 rounds of 16 threads).
    The idempotency lessons depend on that atomicity, so the embedded backend restores it. Idempotent.
    """
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_workbook_atomic", False):
        return
    lock = threading.RLock()
    for name in _DYNAMODB_WRITES:
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    setattr(DynamoDBBackend, "_workbook_atomic", True)  # noqa: B010 - an attribute moto does not declare


def start_moto_server(port: int = 0) -> tuple[Any, str]:
    """Start a moto server on 127.0.0.1 (port 0: a free one) and return it with its endpoint."""
    from moto.server import ThreadedMotoServer

    make_moto_dynamodb_writes_atomic()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto's Step Functions interpreter logs every failure a workflow catches at ERROR level; on a notebook's stderr
    # that reads like a crash (and nbval compares it). The execution history carries the same facts.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound_port = server.get_host_and_port()
    # Step Functions service integrations call http://localhost:$MOTO_PORT, so it must name this server.
    os.environ["MOTO_PORT"] = str(bound_port)
    endpoint = f"http://127.0.0.1:{bound_port}"
    configure_moto_server(endpoint)
    return server, endpoint


def _emulator_credentials() -> dict[str, str]:
    # Emulators accept any credentials; making them up at run time keeps even dummy keys out of the repository
    # and out of a learner's habits, and explicit keys stop boto3 from looking for real ones.
    return {
        "aws_access_key_id": "EMU" + secrets.token_hex(8).upper(),
        "aws_secret_access_key": secrets.token_urlsafe(30),
    }


@dataclass
class Backend:
    """A live backend: boto3 clients bound to it, its health and what it does faithfully."""

    name: str
    endpoint_url: str | None
    region: str
    session: boto3.Session
    server: Any = None
    in_kernel: bool = False
    # True until the first notebook setup on an emulator this kernel just started: it holds nothing to clean up.
    fresh: bool = False
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_emulator(self) -> bool:
        return self.name != "aws"

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client bound to this backend (cached per service when no extra config is given)."""
        if config:
            return self._make_client(service, config)
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make_client(service, {})
            return self._clients[service]

    def _make_client(self, service: str, config: dict[str, Any]) -> Any:
        settings = {"connect_timeout": 2, "read_timeout": 30, "retries": {"max_attempts": 3, "mode": "standard"}}
        settings.update(config)
        return self.session.client(service, endpoint_url=self.endpoint_url, config=Config(**settings))

    def supports(self, capability: str) -> bool:
        if capability == "time_travel" and self.name == "embedded" and not self.in_kernel:
            return False
        return caps.get(capability).supported_on(self.name)

    def explain(self, capability: str) -> str:
        """One sentence a notebook prints when it takes a fallback."""
        c = caps.get(capability)
        if self.supports(capability):
            return f"{self.name}: {c.summary}: supported."
        note = c.note_on(self.name) or "not supported"
        fallback = f" This notebook instead: {c.fallback}." if c.fallback else ""
        return f"{self.name}: {c.summary}: {note}.{fallback}"

    def capabilities(self) -> list[dict[str, Any]]:
        return [
            {
                "capability": c.name,
                "supported": self.supports(c.name),
                "note": c.note_on(self.name),
                "fallback": "" if self.supports(c.name) else c.fallback,
                "summary": c.summary,
            }
            for c in caps.CAPABILITIES
        ]

    def health(self) -> dict[str, Any]:
        """Ask the backend whether it is up; raises BackendUnavailable with what to do when it is not."""
        try:
            if self.name == "embedded":
                # moto's config endpoint: cheap, and unlike /moto-api/data.json (the dashboard's dump of every model)
                # it does not fail when one service's state cannot be serialised (moto 5.2.5, after S3 deletes).
                _http_json(f"{self.endpoint_url}/moto-api/config")
                return {"backend": "embedded", "status": "running", "in_kernel": self.in_kernel}
            if self.name == "localstack":
                report = _http_json(f"{self.endpoint_url}/_localstack/health")
                services = report.get("services", {}) if isinstance(report, dict) else {}
                wanted = {s: services.get(s, "missing") for s in LOCALSTACK_SERVICES}
                bad = {s: v for s, v in wanted.items() if v not in ("running", "available")}
                if bad:
                    raise BackendUnavailable(
                        f"localstack at {self.endpoint_url} is up but these services are not: {bad}. "
                        f"Start it with SERVICES={','.join(LOCALSTACK_SERVICES)} (docker compose up, or "
                        "make localstack-start)."
                    )
                return {"backend": "localstack", "status": "running", "version": report.get("version", "?")}
            identity = self.client("sts").get_caller_identity()
            return {"backend": "aws", "status": "running", "account": identity["Account"], "region": self.region}
        except BackendError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise unavailable(self.name, self.endpoint_url, exc) from None

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def unavailable(name: str, endpoint: str | None, cause: object) -> BackendUnavailable:
    how = {
        "embedded": "Start the shared server with `make lab`, or unset AWS_ENDPOINT_URL so the kernel starts its own.",
        "localstack": "Start it with `docker compose up` (classroom) or `make localstack-start` (host), "
        "or unset WORKBOOK_BACKEND to use the embedded emulator.",
        "aws": "Check your credentials and network.",
    }[name]
    return BackendUnavailable(f"The {name} backend does not answer at {endpoint or 'AWS'} ({cause}). {how}")


_current: Backend | None = None
_current_lock = threading.Lock()


def connect(choice: BackendChoice) -> Backend:
    """Start or reach the chosen backend and check it answers (bounded by HEALTH_TIMEOUT_S)."""
    if choice.name == "aws":
        backend = Backend("aws", None, choice.region, boto3.Session(region_name=choice.region))
        backend.health()
        return backend
    session = boto3.Session(region_name=choice.region, **_emulator_credentials())
    if choice.start_embedded_server:
        server, endpoint = start_moto_server()
        return Backend("embedded", endpoint, choice.region, session, server=server, in_kernel=True, fresh=True)
    backend = Backend(choice.name, choice.endpoint_url, choice.region, session)
    backend.health()
    if choice.name == "embedded":
        try:
            configure_moto_server(choice.endpoint_url or "")
        except (urllib.error.URLError, OSError) as exc:
            raise unavailable("embedded", choice.endpoint_url, exc) from None
    return backend


def current() -> Backend:
    """The backend of this kernel, chosen and connected on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = connect(choose())
        return _current


def client(service: str, **config: Any) -> Any:
    """The one way notebooks get a boto3 client."""
    return current().client(service, **config)


def reset_current() -> None:
    """Forget (and stop, if it started one) the current backend; tests use it to switch environments."""
    global _current
    with _current_lock:
        if _current is not None:
            _current.close()
        _current = None
