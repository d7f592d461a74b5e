"""`make classroom`: JupyterHub on this machine, one JupyterLab per learner, a live progress board; Ctrl-C stops all.

No Docker, no Kubernetes: the hub, its proxy (configurable-http-proxy from npm, pinned in package-lock.json), the
board and the idle culler are local processes, and so is every learner's server. As root on Linux each learner runs
as a system user of their own (they cannot read each other's files); otherwise the room is a trusted one and this
says so. Everything listens on 127.0.0.1 unless the instructor names an address (then a note says: TLS in front).

    python -m tools.classroom [start] [--prespawn N] [--learners a,b] [--ip ADDR] [--port P] [--password PW]
    python -m tools.classroom install        the proxy (npm ci) and, as root, the learners' Python runtime
    python -m tools.classroom benchmark [-n 5]
    python -m tools.classroom generate [--check]   the compose profile, Kubernetes values, README capacity table
    python -m tools.classroom remove-users   after class, as root: the learners' system users (homes are kept)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers.aws.resources import LEARNER_RE
from helpers.services.http import free_port, port_is_free
from tools.classroom import settings
from tools.classroom.hubapi import HubApi, HubError
from tools.classroom.room import (
    DEFAULT_STATE,
    MARKER_ENV,
    PROXY_DIR,
    ROOM_FILE_ENV,
    ROOT,
    RUNTIME_DIR,
    Room,
    room_password,
    strong_secret,
)

HERE = Path(__file__).resolve().parent
HUB_CONFIG = HERE / "jupyterhub_config.py"
PROXY_BIN = PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
#: A Python every learner can execute, for the runtime of learners' servers when they are separate users.
LEARNER_PYTHONS = ("/usr/bin/python3.11", "/usr/local/bin/python3.11")


class ClassroomError(SystemExit):
    """Stops the launcher with one sentence that says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(f"classroom: {message}")


def say(text: str = "") -> None:
    print(text, flush=True)


# -- install ---------------------------------------------------------------------------------------------------------
def _digest(*paths: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


def install_proxy() -> Path:
    """configurable-http-proxy from npm, exactly as package-lock.json pins it, under .classroom/proxy (idempotent)."""
    manifests = (HERE / "package.json", HERE / "package-lock.json")
    stamp = PROXY_DIR / ".installed"
    if PROXY_BIN.exists() and stamp.exists() and stamp.read_text() == _digest(*manifests):
        return PROXY_BIN
    if shutil.which("npm") is None:
        raise ClassroomError(
            "npm is needed for JupyterHub's proxy (configurable-http-proxy). Install Node.js 20+ and npm "
            "(Debian: apt-get install -y nodejs npm)."
        )
    say("installing configurable-http-proxy from npm (package-lock.json, integrity-checked)")
    PROXY_DIR.mkdir(parents=True, exist_ok=True)
    for manifest in manifests:
        shutil.copy(manifest, PROXY_DIR / manifest.name)
    cache = PROXY_DIR.parent / "npm-cache"
    env = {
        **os.environ,
        "npm_config_cache": str(cache), "npm_config_update_notifier": "false", "npm_config_fund": "false",
        "npm_config_audit": "false", "npm_config_loglevel": "error",
    }  # fmt: skip
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=PROXY_DIR, env=env, check=True)
    shutil.rmtree(cache, ignore_errors=True)
    version = subprocess.run([str(PROXY_BIN), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    stamp.write_text(_digest(*manifests))
    say(f"configurable-http-proxy {version} installed in {PROXY_DIR}")
    return PROXY_BIN


def learner_python_candidate() -> str | None:
    for candidate in LEARNER_PYTHONS:
        if os.path.exists(candidate) and not unreachable(Path(candidate)):
            return candidate
    return None


def install_runtime() -> str:
    """The Python learners' servers run when they are separate users: the lock, in a venv every user can execute.

    The instructor's .venv often points at a Python in a private home (pyenv under /root), which another user cannot
    run; this one is made with the system's Python 3.11 and uv from the lock (uv's cache makes it take seconds).
    """
    base = learner_python_candidate()
    if base is None:
        raise ClassroomError(
            "separate learners need a Python 3.11 every user can run (looked for " + ", ".join(LEARNER_PYTHONS) + "). "
            "Install one (Debian: apt-get install -y python3.11), or start with --trusted-room."
        )
    lock = ROOT / "requirements.lock"
    python = RUNTIME_DIR / "bin" / "python"
    stamp = RUNTIME_DIR / ".installed"
    key = f"{_digest(lock)} {base}"
    if python.exists() and stamp.exists() and stamp.read_text() == key:
        return str(python)
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        raise ClassroomError(f"uv not found next to {sys.executable}: run `make .venv/.installed` first")
    say(f"building the learners' Python runtime in {RUNTIME_DIR} (from requirements.lock, with {base})")
    stamp.unlink(missing_ok=True)
    subprocess.run([str(uv), "venv", "-q", "--allow-existing", "--python", base, str(RUNTIME_DIR)], check=True)
    subprocess.run([str(uv), "pip", "sync", "-q", "--python", str(python), str(lock)], check=True)
    stamp.write_text(key)
    return str(python)


def unreachable(path: Path) -> list[str]:
    """Folders on the way to ``path`` another user cannot pass through (no o+x), and the file itself if unreadable."""
    problems = []
    resolved = path.resolve()
    for folder in [*reversed(resolved.parents)]:
        if not os.stat(folder).st_mode & 0o001:
            problems.append(str(folder))
    if resolved.exists() and resolved.is_file() and not os.stat(resolved).st_mode & 0o005:
        problems.append(str(resolved))
    return problems


# -- start -----------------------------------------------------------------------------------------------------------
def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def choose_port(wanted: int, explicit: bool) -> int:
    if port_is_free(wanted):
        return wanted
    if explicit:
        raise ClassroomError(f"port {wanted} is taken; choose another with --port")
    free = free_port()
    say(f"port {wanted} is taken, using {free} instead (choose with --port)")
    return free


def learner_names(opts: argparse.Namespace) -> list[str]:
    names = [n.strip() for n in (opts.learners or "").split(",") if n.strip()]
    if opts.roster:
        names += [line.strip() for line in Path(opts.roster).read_text().splitlines() if line.strip()]
    if opts.prespawn and not names:
        names = [f"learner{n:02d}" for n in range(1, opts.prespawn + 1)]
    bad = [n for n in names if not LEARNER_RE.match(n) or n == settings.INSTRUCTOR]
    if bad:
        raise ClassroomError(f"learner names must be 1-12 lower-case letters and digits, not a course prefix: {bad}")
    return names[: opts.prespawn] if opts.prespawn else names


def make_room(opts: argparse.Namespace) -> Room:
    in_containers = opts.spawner != "local"
    separate = hasattr(os, "geteuid") and os.geteuid() == 0 and not opts.trusted_room and not in_containers
    proxy = install_proxy()
    learner_python = install_runtime() if separate else sys.executable
    state = Path(opts.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    if separate:
        os.chmod(state, 0o711)  # noqa: S103 - learners pass through to their homes; nobody lists the room
        blocked = unreachable(state) + unreachable(Path(learner_python))
        if blocked:
            raise ClassroomError(
                "learners' system users must be able to pass through these folders, and cannot: "
                + ", ".join(sorted(set(blocked)))
                + ". Choose a --state-dir outside them (e.g. /srv/classroom), or start with --trusted-room."
            )
    commit = git("rev-parse", "HEAD")
    room = Room(
        state_dir=str(state),
        repo=str(ROOT),
        commit=commit,
        ip=opts.ip,
        port=choose_port(opts.port, opts.port_given),
        hub_port=free_port(),
        proxy_api_port=free_port(),
        board_port=free_port(),
        hub_python=sys.executable,
        learner_python=learner_python,
        proxy_command=str(proxy),
        separate_users=separate,
        spawner=opts.spawner,
        board_ip="0.0.0.0" if in_containers else settings.HOST,  # noqa: S104 - learners' containers reach it
        backend=opts.backend,
        endpoint=opts.endpoint if opts.backend != "embedded" else None,
        with_solutions=opts.with_solutions,
        kernel_idle_minutes=opts.cull_kernels_after,
        server_idle_minutes=opts.cull_servers_after,
    )
    for folder in (room.hub_dir, room.logs_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    kept = (room.secrets_dir / "room-password").exists() and room.secret("room-password")
    password = opts.password or os.environ.get("CLASSROOM_PASSWORD") or kept or room_password()
    if len(password) < 8:
        raise ClassroomError("the room password must have at least 8 characters")
    room.write_secret("room-password", password)
    room.write_secret("instructor-password", strong_secret())  # a new one at every start
    room.write_secret("launcher-token", strong_secret())
    room.write_secret("proxy-token", strong_secret())
    if not (room.secrets_dir / "cookie-secret").exists():
        room.write_secret("cookie-secret", os.urandom(32).hex())  # kept: learners stay logged in across restarts
    room.save()
    return room


def hub_environment(room: Room) -> dict[str, str]:
    """The hub's environment: the room, its marker, and no backend of the instructor's own shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WORKBOOK_", "JUPYTER", "MOTO_"))}
    env.update({ROOM_FILE_ENV: str(room.file), MARKER_ENV: room.marker, "PYTHONPATH": room.repo})
    return env


def start_hub(room: Room) -> subprocess.Popen[bytes]:
    log = (room.logs_dir / "hub.log").open("ab")
    # Its own session: Ctrl-C reaches only the launcher, which then stops the hub (and the hub every server).
    return subprocess.Popen(
        [room.hub_python, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
        cwd=room.hub_dir, env=hub_environment(room), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def wait_ready(room: Room, hub: subprocess.Popen[bytes], timeout_s: float = 90.0) -> float:
    """Until the proxy routes to the hub and the board answers; returns the seconds it took."""
    started = time.monotonic()
    hub_api = f"{room.loopback_url}/hub/api/"  # 200 only once the proxy routes to the hub
    board = f"http://127.0.0.1:{room.board_port}/services/{settings.BOARD_SERVICE}/"  # any answer (a redirect)
    while time.monotonic() - started < timeout_s:
        if hub.poll() is not None:
            raise ClassroomError(f"the hub exited with code {hub.returncode}; see {room.logs_dir / 'hub.log'}")
        if _status(hub_api) == 200 and _status(board) > 0:
            return time.monotonic() - started
        time.sleep(0.3)
    raise ClassroomError(f"the hub did not answer within {timeout_s:.0f} s; see {room.logs_dir / 'hub.log'}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _status(url: str) -> int:
    """The HTTP status of a GET (redirects not followed); 0 when nothing answers."""
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=2) as response:  # our own loopback servers
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def announce(room: Room, seconds: float) -> None:
    board = f"{room.url}{room.board_path(settings.BOARD_SERVICE)}"
    say()
    say(f"Classroom ready in {seconds:.1f} s (the course at commit {room.commit[:12]}).")
    say()
    say(f"    hub URL (hand this out):   {room.url}/")
    say(f"    room password (learners):  {room.secret('room-password')}")
    say(f"    progress board:            {board}")
    say(f"    instructor login:          {settings.INSTRUCTOR}, password in {room.secrets_dir / 'instructor-password'}")
    say("                               (not printed here: your screen may be on the projector)")
    say()
    if room.spawner != "local":
        say(f"One {room.spawner} container per learner, memory-limited, each on a network of its own.")
    elif room.separate_users:
        say(f"Learners are separate system users ({settings.SYSTEM_USER_PREFIX}<name>): none can read another's files.")
    else:
        say("WARNING: trusted-room mode. Every learner's server runs as YOUR user: a learner can read, change or")
        say("delete other learners' files (and yours) from a terminal or a notebook. Use it only with people you")
        say("trust; start as root on Linux to give every learner a system user of their own.")
    if room.ip not in ("127.0.0.1", "localhost"):
        say(f"NOTE: the hub listens on {room.ip}. On a shared network put TLS in front of it (a reverse proxy with a")
        say("certificate): passwords and notebooks otherwise cross the network in clear text.")
    solutions = "handed out" if room.with_solutions else "not in learners' copies (--with-solutions hands them out)"
    say(f"Lab solutions: {solutions}.")
    say(f"Idle kernels stop after {room.kernel_idle_minutes} min, idle servers after {room.server_idle_minutes} min.")
    if room.backend != "embedded":
        say(f"Backend: {room.backend} at {room.endpoint}, shared: resource names carry the learner (alice-lab01-...).")
    else:
        say("Backend: each learner's kernel starts its own moto (nothing shared between learners).")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    if dirty:
        say("NOTE: you have uncommitted changes; learners get the last commit, not your working tree.")
    say(f"Logs: {room.logs_dir / 'hub.log'}.  Press Ctrl-C to stop the hub, every learner server and every kernel.")


def prespawn(room: Room, names: list[str]) -> dict[str, float]:
    if not names:
        return {}
    concurrency = settings.PRESPAWN_CONCURRENCY * (os.cpu_count() or 1)
    say(f"prespawning {len(names)} learner servers, {concurrency} at a time: {', '.join(names)}")
    api = HubApi(room.loopback_url, room.secret("launcher-token"))
    started = time.monotonic()
    try:
        seconds = api.spawn_all(names, concurrency, on_ready=lambda n, s: say(f"  {n} ready in {s:.1f} s"))
    except HubError as exc:
        say(f"prespawn stopped: {exc}; the hub runs on (see {room.logs_dir / 'hub.log'} for why)")
        return {}
    say(f"prespawned {len(seconds)} learners in {time.monotonic() - started:.1f} s")
    return seconds


def marked_processes(marker: str) -> list[int]:
    """Every process (any user's, as root) whose environment carries this room's marker."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def command_of(pid: int) -> str:
    """A process's command line, shortened, for a message ("?" once it is gone)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    return text if len(text) <= 80 else text[:79] + "…"


def stop(room: Room, hub: subprocess.Popen[bytes]) -> list[int]:
    """Stop the hub (which stops every server, and each server its kernels), then anything of the room still alive.

    Returns the pids that had to be killed after the hub was gone (none, when everything stopped as it should).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave a server behind
    if hub.poll() is None:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=settings.STOP_GRACE_S + 15)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()
    # A kernel told to stop by its server may still be exiting when the hub is gone: give the room's processes a
    # moment to end on their own before calling any of them a leftover.
    deadline = time.monotonic() + settings.EXIT_GRACE_S
    while time.monotonic() < deadline and marked_processes(room.marker):
        time.sleep(0.1)
    leftovers = marked_processes(room.marker)
    if leftovers:
        say("still running after the hub stopped: " + ", ".join(f"{pid} ({command_of(pid)})" for pid in leftovers))
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and marked_processes(room.marker):
            time.sleep(0.1)
        if not marked_processes(room.marker):
            break
    return leftovers


def start(opts: argparse.Namespace) -> int:
    room = make_room(opts)
    names = learner_names(opts)
    hub = start_hub(room)
    try:
        announce(room, wait_ready(room, hub))
        prespawn(room, names)
        say("running; Ctrl-C stops everything.")
        hub.wait()
        say(f"the hub exited with code {hub.returncode}; see {room.logs_dir / 'hub.log'}")
    except KeyboardInterrupt:
        say("\nstopping the hub, every learner server and every kernel...")
    finally:
        leftovers = stop(room, hub)
        remaining = marked_processes(room.marker)
        if remaining:
            say(f"could not stop processes {remaining}: stop them by hand (kill {' '.join(map(str, remaining))})")
        elif leftovers:
            say(f"stopped; {len(leftovers)} process(es) outlived the hub and were stopped: nothing left running.")
        else:
            say("stopped; nothing left running.")
    return 0 if not marked_processes(room.marker) else 1


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


# -- other commands ------------------------------------------------------------------------------------------------
def remove_users(opts: argparse.Namespace) -> int:
    from tools.classroom import learners

    room = Room.load(Path(opts.state_dir) / "room.json")
    removed = learners.remove_system_users(room)
    say(f"removed {len(removed)} system users: {', '.join(removed) or '-'}")
    say(f"learners' homes stay in {room.learners_dir}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.classroom", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("start", help="start the classroom (the default)")
    s.add_argument("--ip", default=settings.HOST, help="address the hub listens on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help=f"the hub's port (default {settings.PUBLIC_PORT})")
    s.add_argument("--password", help="the room password learners type (default: $CLASSROOM_PASSWORD or generated)")
    s.add_argument("--prespawn", type=int, default=0, help="start N learner servers before class")
    s.add_argument("--learners", help="comma-separated learner names to prespawn (default learner01...)")
    s.add_argument("--roster", help="a file of learner names, one a line, to prespawn")
    s.add_argument("--cull-kernels-after", type=int, default=settings.KERNEL_IDLE_MINUTES, metavar="MIN")
    s.add_argument("--cull-servers-after", type=int, default=settings.SERVER_IDLE_MINUTES, metavar="MIN")
    s.add_argument("--backend", choices=["embedded", "localstack"], default="embedded")
    s.add_argument("--endpoint", default="http://127.0.0.1:4566", help="the shared backend (with --backend localstack)")
    s.add_argument("--with-solutions", action="store_true", help="hand out labs/*/solution.ipynb too")
    s.add_argument("--trusted-room", action="store_true", help="as root, still run every learner as this user")
    s.add_argument("--spawner", choices=["local", "docker"], default="local", help="docker: the compose profile's hub")
    s.add_argument("--state-dir", default=str(DEFAULT_STATE))
    sub.add_parser("install", help="install the proxy (npm) and, as root, the learners' runtime")
    b = sub.add_parser("benchmark", help="spawn N learners, run a lab check in each at once, print the figures")
    b.add_argument("-n", type=int, default=5)
    b.add_argument("--state-dir", default=None)
    g = sub.add_parser("generate", help="write the compose profile, Kubernetes values and README capacity table")
    g.add_argument("--check", action="store_true", help="fail when a generated file is stale")
    r = sub.add_parser("remove-users", help="after class, as root: delete the learners' system users")
    r.add_argument("--state-dir", default=str(DEFAULT_STATE))
    return p


def main(argv: list[str]) -> int:
    commands = {"start", "install", "benchmark", "generate", "remove-users"}
    args = argv if argv and argv[0] in commands else ["start", *argv]
    opts = parser().parse_args(args)
    if opts.command == "start":
        opts.port_given = opts.port is not None
        opts.port = opts.port or settings.PUBLIC_PORT
        if opts.prespawn < 0:
            raise ClassroomError("--prespawn takes a number of learners (0 or more)")
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        return start(opts)
    if opts.command == "install":
        install_proxy()
        if hasattr(os, "geteuid") and os.geteuid() == 0 and learner_python_candidate():
            install_runtime()
        say("classroom: installed")
        return 0
    if opts.command == "benchmark":
        from tools.classroom import benchmark

        return benchmark.main(opts)
    if opts.command == "generate":
        from tools.classroom import generate

        return generate.main(check=opts.check)
    return remove_users(opts)
