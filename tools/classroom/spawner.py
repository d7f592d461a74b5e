"""One JupyterLab per learner, as a local process, on the learner's own copy of the course.

JupyterHub's LocalProcessSpawner does the process work (start, poll, SIGINT -> SIGTERM -> SIGKILL on stop); this adds
what the classroom needs: the learner's copy made at first start (and again after a reset), their own system user
when the hub runs as root, and an environment that says nothing about a backend, so every kernel starts its own
embedded moto (or, when the instructor chose a shared LocalStack, carries the learner for its resource prefixes).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid

from tools.classroom import learners, settings
from tools.classroom.room import MARKER_ENV, Room
from tools.workbook import HIDDEN, START_NOTEBOOK


def kernel_culling_args(idle_minutes: int) -> list[str]:
    """Idle kernels are shut down even with their tab open: a kernel's moto is most of a learner's memory."""
    return [
        f"--MappingKernelManager.cull_idle_timeout={idle_minutes * 60}",
        f"--MappingKernelManager.cull_interval={settings.CULL_EVERY_S}",
        "--MappingKernelManager.cull_connected=True",
        "--MappingKernelManager.cull_busy=False",
    ]


def server_args(room: Room, copy: Path) -> list[str]:
    hidden = "[" + ",".join(f"'{glob}'" for glob in HIDDEN) + "]"
    args = [
        f"--ServerApp.root_dir={copy}",
        f"--LabApp.app_settings_dir={copy / 'tools' / 'jupyterlab' / 'settings'}",
        f"--ContentsManager.hide_globs={hidden}",
        *kernel_culling_args(room.kernel_idle_minutes),
    ]
    if not room.separate_users and hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")  # a trusted room started as root: servers run as root (warned)
    return args


def learner_environment(room: Room, learner: str, copy: Path, home: Path, user: str) -> dict[str, str]:
    """What a learner's server (and so every kernel it starts) sees, besides the JUPYTERHUB_* variables."""
    runtime_bin = str(Path(room.learner_python).parent)
    env = {
        "PATH": f"{runtime_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "USER": user,
        "SHELL": "/bin/bash",
        "PYTHONPATH": str(copy),  # `helpers` is the learner's own copy, edits included
        "WORKBOOK_LEARNER": learner,
        "WORKBOOK_PROGRESS_FILE": str(copy / ".progress.jsonl"),
        "WORKBOOK_PROGRESS_URL": room.records_url(settings.BOARD_SERVICE),
        MARKER_ENV: room.marker,
    }
    if room.backend != "embedded":
        env["WORKBOOK_BACKEND"] = room.backend
        env["AWS_ENDPOINT_URL"] = room.endpoint or ""
    return env


class LearnerSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """LocalProcessSpawner with the learner's own copy, user and environment."""

    @property
    def room(self) -> Room:
        return Room.load()

    async def start(self) -> Any:
        room = self.room
        learner = self.user.name
        if self.user.admin:
            raise RuntimeError("the instructor has no server of their own here: the board is at /services/progress/")
        copy = await asyncio.to_thread(learners.ensure_learner, room, learner)
        self._copy = copy
        self.cmd = [str(Path(room.learner_python).parent / "jupyterhub-singleuser")]
        self.args = server_args(room, copy)
        self.default_url = f"/lab/tree/{START_NOTEBOOK}"
        return await super().start()

    def make_preexec_fn(self, name: str) -> Any:
        room = self.room
        if room.separate_users:
            return set_user_setuid(learners.system_user(room, name))
        home = str(room.home(name))

        def preexec() -> None:
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        room = self.room
        learner = self.user.name
        user = learners.system_user(room, learner)
        home = room.home(learner)
        env.update(learner_environment(room, learner, room.copy(learner), home, user))
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        return paths  # internal TLS is off: loopback only
