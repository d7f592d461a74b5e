"""One classroom's configuration and state directory, shared by the launcher, the hub's config and the board.

The launcher writes ``room.json`` into the state directory and hands its path to every process it starts
(``WORKBOOK_ROOM_FILE``); secrets live beside it in ``secrets/`` (mode 0600, never in the repository, made up at start).

    <state>/room.json            this file's data
    <state>/secrets/             cookie secret, proxy token, instructor password, room password, launcher token
    <state>/hub/                 JupyterHub's database and pid file
    <state>/records.jsonl        every progress record the board received (one line each, with the learner)
    <state>/claims.json          which learner names are taken (see auth.py)
    <state>/learners/<name>/     a learner's home; the course copy is in workbook/ (moved aside on reset)
    <state>/logs/hub.log         the hub, the proxy, the board and every learner server
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOM_FILE_ENV = "WORKBOOK_ROOM_FILE"
#: Every process of a classroom carries this variable (value: the room's id), so stopping can prove nothing is left.
MARKER_ENV = "WORKBOOK_CLASSROOM"
ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_STATE = ROOT / ".classroom" / "room"
PROXY_DIR = ROOT / ".classroom" / "proxy"
RUNTIME_DIR = ROOT / ".classroom" / "runtime"

SECRETS = ("cookie-secret", "proxy-token", "instructor-password", "room-password", "launcher-token")


@dataclass
class Room:
    state_dir: str
    repo: str
    commit: str
    ip: str
    port: int
    hub_port: int
    proxy_api_port: int
    board_port: int
    hub_python: str  # the instructor's Python: hub, board, culler
    learner_python: str  # the Python learner servers and kernels run (a runtime every learner can execute)
    proxy_command: str
    separate_users: bool
    spawner: str = "local"  # local processes here; "docker" in the compose profile; "kubernetes" for z2jh
    board_ip: str = "127.0.0.1"  # the board's own address (0.0.0.0 in a container, where learners are elsewhere)
    backend: str = "embedded"
    endpoint: str | None = None
    with_solutions: bool = False
    kernel_idle_minutes: int = 20
    server_idle_minutes: int = 90
    marker: str = field(default_factory=lambda: secrets.token_hex(8))

    # -- paths ----------------------------------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return Path(self.state_dir)

    @property
    def secrets_dir(self) -> Path:
        return self.state / "secrets"

    @property
    def learners_dir(self) -> Path:
        return self.state / "learners"

    @property
    def records_file(self) -> Path:
        return self.state / "records.jsonl"

    @property
    def claims_file(self) -> Path:
        return self.state / "claims.json"

    @property
    def logs_dir(self) -> Path:
        return self.state / "logs"

    @property
    def hub_dir(self) -> Path:
        return self.state / "hub"

    @property
    def file(self) -> Path:
        return self.state / "room.json"

    def home(self, learner: str) -> Path:
        return self.learners_dir / learner

    def copy(self, learner: str) -> Path:
        """The learner's copy of the course (their JupyterLab's root)."""
        return self.home(learner) / "workbook"

    # -- URLs -----------------------------------------------------------------------------------------------------
    @property
    def public_host(self) -> str:
        return "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip  # noqa: S104 - a name for "every interface"

    @property
    def url(self) -> str:
        return f"http://{self.public_host}:{self.port}"

    @property
    def loopback_url(self) -> str:
        """The proxy as processes on this machine reach it (the launcher, tests), whatever address it serves."""
        return f"http://127.0.0.1:{self.port}"

    def board_path(self, service: str) -> str:
        return f"/services/{service}/"

    def records_url(self, service: str, host: str = "127.0.0.1") -> str:
        """Where kernels post records: the board service directly (on loopback here: no proxy, no TLS between)."""
        return f"http://{host}:{self.board_port}/services/{service}/api/records"

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self) -> Path:
        self.state.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        return self.file

    @classmethod
    def load(cls, path: str | Path | None = None) -> Room:
        where = Path(path or os.environ[ROOM_FILE_ENV])
        return cls(**json.loads(where.read_text()))

    def secret(self, name: str) -> str:
        return (self.secrets_dir / name).read_text().strip()

    def write_secret(self, name: str, value: str) -> None:
        self.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.secrets_dir / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        os.chmod(target, 0o600)


def room_password() -> str:
    """Easy to read aloud and to type: three groups of four, no look-alike characters (~59 bits)."""
    alphabet = "".join(c for c in string.ascii_lowercase + string.digits if c not in "il1o0")
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def strong_secret() -> str:
    """For machines and the instructor: 43 URL-safe characters (JupyterHub wants at least 32 for an admin)."""
    return secrets.token_urlsafe(32)
