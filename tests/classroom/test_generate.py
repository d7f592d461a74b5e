"""The compose profile, the Zero to JupyterHub values and the README's capacity table come from settings.py.

Neither Docker nor Kubernetes runs here, so these files are parsed and checked: they are what the generator writes
today (no drift), they say what settings.py says, they bind nothing beyond loopback, and they hold no secret.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tools.classroom import containers, generate, settings
from tools.classroom.room import Room

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("path", list(generate.outputs()), ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_files_are_current(path: Path) -> None:
    assert path.read_text() == generate.outputs()[path], f"{path.name} is stale: run `make classroom-config`"


def test_the_compose_profile_is_included_and_starts_only_with_its_profile() -> None:
    main = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "docker/classroom/compose.yml" in main["include"]
    profile = yaml.safe_load(generate.COMPOSE.read_text())
    for name, service in profile["services"].items():
        assert service["profiles"] == ["classroom"], name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        dockerfile = ROOT / "docker" / "classroom" / Path(service["build"]["dockerfile"]).name
        assert dockerfile.exists(), dockerfile
    assert not set(profile["services"]) & set(main["services"]), "the profile's services shadow the main file's"


def test_the_compose_hub_is_the_classroom_launcher_with_docker_spawner() -> None:
    hub = yaml.safe_load(generate.COMPOSE.read_text())["services"]["classroom-hub"]
    command = hub["command"]
    assert command[:4] == ["python", "-m", "tools.classroom", "start"]
    assert command[command.index("--spawner") + 1] == "docker"
    assert command[command.index("--cull-kernels-after") + 1] == str(settings.KERNEL_IDLE_MINUTES)
    assert re.fullmatch(r"\$\{CLASSROOM_PASSWORD:\?.+\}", hub["environment"]["CLASSROOM_PASSWORD"])
    assert "/var/run/docker.sock:/var/run/docker.sock" in hub["volumes"]
    assert "dockerspawner==" in (ROOT / "docker" / "classroom" / "hub.Dockerfile").read_text()


def test_docker_spawner_gets_the_memory_limit_and_a_network_per_learner() -> None:
    class Config(dict):
        def __getattr__(self, name: str) -> object:
            return self.setdefault(name, Config())

    c = Config()
    room = Room(
        state_dir="/srv/classroom", repo="/srv/workbook", commit="x", ip="0.0.0.0", port=8000, hub_port=8081,
        proxy_api_port=8001, board_port=8090, hub_python="python", learner_python="python", proxy_command="chp",
        separate_users=False, spawner="docker",
    )  # fmt: skip
    containers.configure_docker(c, room)
    assert c.JupyterHub.spawner_class == "dockerspawner.DockerSpawner"
    assert c.DockerSpawner.mem_limit == f"{round(settings.MEMORY_LIMIT_GIB * 1024)}m"
    assert c.DockerSpawner.cpu_limit == settings.CPU_LIMIT
    assert c.DockerSpawner.pre_spawn_hook is containers.per_learner_network
    assert c.DockerSpawner.volumes == {"workbook-{username}": containers.LEARNER_COPY}
    assert containers.learner_network("alice") != containers.learner_network("bob")
    assert f"--MappingKernelManager.cull_idle_timeout={settings.KERNEL_IDLE_MINUTES * 60}" in c.DockerSpawner.args


def values() -> dict:
    return yaml.safe_load(generate.VALUES.read_text())


def test_kubernetes_values_size_every_learner_from_the_settings() -> None:
    single = values()["singleuser"]
    assert single["memory"] == {
        "guarantee": f"{settings.MEMORY_GUARANTEE_GIB:g}G",
        "limit": f"{settings.MEMORY_LIMIT_GIB:g}G",
    }
    assert single["cpu"] == {"guarantee": settings.CPU_GUARANTEE, "limit": settings.CPU_LIMIT}
    assert single["networkPolicy"]["enabled"] is True, "pods must not reach each other's emulators"
    assert f"--MappingKernelManager.cull_idle_timeout={settings.KERNEL_IDLE_MINUTES * 60}" in single["cmd"]
    assert values()["cull"]["timeout"] == settings.SERVER_IDLE_MINUTES * 60
    assert values()["scheduling"]["userPlaceholder"]["replicas"] == settings.BIG_ROOM.placeholders


def test_the_big_room_fits_its_nodes() -> None:
    room = settings.BIG_ROOM
    assert room.learners == 200
    usable = room.node.memory_gib * (1 - room.node.reserved_fraction)
    assert room.per_node * settings.MEMORY_GUARANTEE_GIB <= usable
    assert (room.nodes - room.spare_nodes) * room.per_node >= room.learners + room.placeholders
    assert (room.nodes - room.spare_nodes - 1) * room.per_node < room.learners + room.placeholders, "no idle node"
    assert f"{room.nodes} user nodes for {room.learners} learners" in generate.VALUES.read_text()


def test_kubernetes_values_wire_the_board_and_keep_secrets_out() -> None:
    hub = values()["hub"]
    port = generate.K8S_BOARD_PORT
    assert hub["services"][settings.BOARD_SERVICE]["url"].endswith(f":{port}")
    assert {"name": "progress", "port": port, "targetPort": port} in hub["service"]["extraPorts"]
    assert values()["singleuser"]["extraEnv"]["WORKBOOK_PROGRESS_URL"].startswith(f"http://hub:{port}/")
    room = Room(**hub["extraFiles"]["room"]["data"])
    assert room.board_port == port and room.spawner == "kubernetes"
    for name in ("CLASSROOM_PASSWORD", "CLASSROOM_INSTRUCTOR_PASSWORD"):
        assert "secretKeyRef" in hub["extraEnv"][name]["valueFrom"], f"{name} must come from a Kubernetes secret"
    assert hub["config"]["Authenticator"]["username_pattern"] == settings.LEARNER_PATTERN
    assert "password" not in str(hub["config"]).lower()
    assert f"k8s-hub:{generate.Z2JH_CHART}" in (ROOT / "docker" / "classroom" / "k8s-hub.Dockerfile").read_text()


def test_the_readme_quotes_the_capacity_table() -> None:
    text = (ROOT / "README.md").read_text()
    assert f"<!-- {generate.CAPACITY_MARK}:start -->\n{generate.capacity_table()}<!-- " in text
    assert "not yet run" not in generate.capacity_table(), "run `make classroom-benchmark` and put its figures in"
