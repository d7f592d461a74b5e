"""Bigger rooms than one machine's processes: one container per learner (the compose profile, DockerSpawner).

Neither Docker nor Kubernetes runs on the machines this course is developed on, so this is configuration that is
generated, parsed and checked (tests/classroom/test_generate.py), not run in CI. It keeps what `make classroom` does
(the same login, board, culling and learner environment) and adds what containers give: a memory limit per learner
and one Docker network per learner, so no learner's kernel can reach another's (a kernel's moto listens on the
container's own 127.0.0.1 anyway).
"""

from __future__ import annotations

import os
from typing import Any

from tools.classroom import settings
from tools.classroom.room import Room
from tools.workbook import HIDDEN, START_NOTEBOOK

LEARNER_IMAGE = "workbook-classroom-learner"
HUB_IMAGE = "workbook-classroom-hub"
#: The hub container's name on every learner network (learners reach the hub API and the board by it).
HUB_HOST = "classroom-hub"
LEARNER_HOME = "/home/learner"
LEARNER_COPY = f"{LEARNER_HOME}/workbook"


def learner_network(learner: str) -> str:
    return f"workbook-learner-{learner}"


def memory_limit() -> str:
    """Docker's notation for the per-learner limit (2.0 GiB -> '2g')."""
    return f"{round(settings.MEMORY_LIMIT_GIB * 1024)}m"


def container_args(kernel_idle_minutes: int) -> list[str]:
    """The learner server's arguments in a container or pod (the same as `make classroom` gives, other paths)."""
    hidden = "[" + ",".join(f"'{glob}'" for glob in HIDDEN) + "]"
    from tools.classroom.spawner import kernel_culling_args

    return [
        f"--ServerApp.root_dir={LEARNER_COPY}",
        f"--LabApp.app_settings_dir={LEARNER_COPY}/tools/jupyterlab/settings",
        f"--ContentsManager.hide_globs={hidden}",
        *kernel_culling_args(kernel_idle_minutes),
    ]


def learner_env(room: Room, learner: str) -> dict[str, str]:
    return {
        "PYTHONPATH": LEARNER_COPY,
        "WORKBOOK_LEARNER": learner,
        "WORKBOOK_PROGRESS_FILE": f"{LEARNER_COPY}/.progress.jsonl",
        "WORKBOOK_PROGRESS_URL": room.records_url(settings.BOARD_SERVICE, host=HUB_HOST),
    }


async def per_learner_network(spawner: Any) -> None:
    """pre_spawn_hook: the learner's container on an internal network of its own, which the hub joins as HUB_HOST."""
    learner = spawner.user.name
    if spawner.user.admin:
        raise RuntimeError("the instructor has no server of their own here: the board is at /services/progress/")
    name = learner_network(learner)
    existing = await spawner.docker("networks", names=[name])
    if not any(n.get("Name") == name for n in existing):
        await spawner.docker("create_network", name, driver="bridge", internal=True, labels={"workbook": "learner"})
    try:
        await spawner.docker("connect_container_to_network", os.environ["HOSTNAME"], name, aliases=[HUB_HOST])
    except Exception as exc:  # already connected after a restart of the learner's server
        if "already exists" not in str(exc):
            raise
    spawner.network_name = name
    spawner.environment.update(learner_env(Room.load(), learner))


def configure_docker(c: Any, room: Room) -> None:
    """DockerSpawner settings for the compose profile (the hub runs in a container with the Docker socket)."""
    c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
    c.JupyterHub.hub_ip = "0.0.0.0"  # noqa: S104 - inside the hub container; learners' networks reach it
    c.JupyterHub.hub_connect_ip = HUB_HOST
    c.DockerSpawner.image = os.environ.get("WORKBOOK_LEARNER_IMAGE", LEARNER_IMAGE)
    c.DockerSpawner.mem_limit = memory_limit()
    c.DockerSpawner.cpu_limit = settings.CPU_LIMIT
    # A named volume per learner, filled from the image's copy of the course the first time (Docker does that).
    c.DockerSpawner.volumes = {"workbook-{username}": LEARNER_COPY}
    c.DockerSpawner.notebook_dir = LEARNER_COPY
    c.DockerSpawner.remove = True
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.args = container_args(room.kernel_idle_minutes)
    c.DockerSpawner.default_url = f"/lab/tree/{START_NOTEBOOK}"
    c.DockerSpawner.pre_spawn_hook = per_learner_network
