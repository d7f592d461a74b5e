"""JupyterHub's configuration for a classroom: read by `jupyterhub -f` in the process the launcher starts.

Everything variable comes from the room file the launcher wrote (``WORKBOOK_ROOM_FILE``) and the secrets beside it;
nothing here is a secret. Every address is 127.0.0.1 except the proxy's public one, which is the instructor's choice.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tools.classroom import settings
from tools.classroom.room import MARKER_ENV, ROOM_FILE_ENV, Room

c: Any = get_config()  # type: ignore[name-defined]  # noqa: F821 - traitlets' loader provides get_config()
room = Room.load()
state = room.state
hub_env = {ROOM_FILE_ENV: str(room.file), MARKER_ENV: room.marker, "PYTHONPATH": room.repo}

# -- where the hub and its proxy listen ------------------------------------------------------------------------------
c.JupyterHub.ip = room.ip
c.JupyterHub.port = room.port
c.JupyterHub.hub_ip = settings.HOST
c.JupyterHub.hub_port = room.hub_port
c.ConfigurableHTTPProxy.api_url = f"http://{settings.HOST}:{room.proxy_api_port}"
c.ConfigurableHTTPProxy.command = [room.proxy_command]
c.ConfigurableHTTPProxy.auth_token = room.secret("proxy-token")
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.cookie_secret_file = str(room.secrets_dir / "cookie-secret")
c.JupyterHub.db_url = f"sqlite:///{room.hub_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.pid_file = str(room.hub_dir / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server (and so every kernel)
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.template_paths = [str(Path(__file__).parent / "templates")]
c.JupyterHub.template_vars = {"learner_pattern": settings.LEARNER_PATTERN}


def landing(handler: object) -> str:
    """After login: the instructor lands on the board; a learner on their own JupyterLab (the hub's default, "")."""
    user = getattr(handler, "current_user", None)
    return room.board_path(settings.BOARD_SERVICE) if getattr(user, "admin", False) else ""


c.JupyterHub.default_url = landing

# -- who logs in -------------------------------------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "tools.classroom.auth.RoomAuthenticator"
c.RoomAuthenticator.user_password = room.secret("room-password")
c.RoomAuthenticator.admin_password = room.secret("instructor-password")
c.RoomAuthenticator.admin_users = {settings.INSTRUCTOR}
c.RoomAuthenticator.claims_file = str(room.claims_file)
c.Authenticator.allow_all = True  # any learner name the pattern allows (and the room password opens)
c.Authenticator.username_pattern = settings.LEARNER_PATTERN
c.Authenticator.admin_users = {settings.INSTRUCTOR}

# -- one server per learner --------------------------------------------------------------------------------------------
if room.spawner == "docker":
    from tools.classroom.containers import configure_docker

    configure_docker(c, room)
else:
    c.JupyterHub.spawner_class = "tools.classroom.spawner.LearnerSpawner"
c.Spawner.env_keep = ["LANG", "LC_ALL"]
c.Spawner.start_timeout = settings.SPAWN_TIMEOUT_S
c.Spawner.http_timeout = settings.SPAWN_TIMEOUT_S
c.LocalProcessSpawner.interrupt_timeout = 10
c.LocalProcessSpawner.term_timeout = 5
c.JupyterHub.concurrent_spawn_limit = 50

# -- the board and the idle culler, as hub services --------------------------------------------------------------------
service_env = {**hub_env, "PATH": f"{Path(room.hub_python).parent}:/usr/bin:/bin"}
c.JupyterHub.services = [
    {
        "name": settings.BOARD_SERVICE,
        "display": True,
        "url": f"http://{settings.HOST}:{room.board_port}",
        "command": [room.hub_python, "-m", "tools.classroom.board_service"],
        "cwd": room.repo,
        "environment": service_env,
        "oauth_no_confirm": True,
    },
    {
        "name": "idle-culler",
        "command": [
            room.hub_python,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={room.server_idle_minutes * 60}",
            f"--cull-every={settings.CULL_EVERY_S}",
        ],
        "environment": service_env,
    },
    {"name": settings.LAUNCHER_SERVICE, "api_token": room.secret("launcher-token")},
]
c.JupyterHub.load_roles = [
    {
        "name": "progress-board",
        "description": "reads learners and their servers, stops a server (the board's actions)",
        "scopes": ["list:users", "read:users", "read:servers", "delete:servers"],
        "services": [settings.BOARD_SERVICE],
    },
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
    {
        "name": "classroom-launcher",
        "description": "creates learners, starts their servers, reaches them (prespawn, benchmark, tests)",
        "scopes": ["admin:users", "admin:servers", "access:servers", "tokens", "list:users", "read:users"],
        "services": [settings.LAUNCHER_SERVICE],
    },
]
# Only instructors (admins) may open the board: JupyterHub's admin role holds access:services; a learner's does not.

print(f"classroom hub config loaded from {room.file} (python {sys.version.split()[0]})", file=sys.stderr)
