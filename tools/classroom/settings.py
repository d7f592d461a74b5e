"""The classroom's numbers, in one place.

`make classroom` reads them, and so do the generators of the compose profile, the Zero to JupyterHub values and the
README's capacity table (`python -m tools.classroom generate`); tests/classroom/test_generate.py fails when a
generated file no longer matches them. Change a number here, run the generator, commit both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from helpers.aws.resources import LEARNER_RE

# -- names and addresses -----------------------------------------------------------------------------------------
HOST = "127.0.0.1"
PUBLIC_PORT = 8000
INSTRUCTOR = "instructor"
#: The hub service that receives progress records and serves the board, at /services/<name>/.
BOARD_SERVICE = "progress"
#: The launcher's own hub service (prespawn, benchmark, tests): admin API scopes, never a login.
LAUNCHER_SERVICE = "classroom"
#: A learner's hub name is their prefix on a shared backend too: 1-12 lower-case letters and digits.
LEARNER_PATTERN = LEARNER_RE.pattern
#: System users made for learners (as root on Linux) are named <prefix><learner>.
SYSTEM_USER_PREFIX = "wbc-"
START_NOTEBOOK = "notebooks/00_welcome.ipynb"
#: Files a learner's copy does not get unless the instructor says --with-solutions.
SOLUTIONS = "labs/*/solution.ipynb"

# -- timing ------------------------------------------------------------------------------------------------------
KERNEL_IDLE_MINUTES = 20  # an idle kernel (no execution, open tab or not) is shut down: its moto memory comes back
SERVER_IDLE_MINUTES = 90  # a learner's server with no activity at all is stopped by jupyterhub-idle-culler
CULL_EVERY_S = 60
BOARD_REFRESH_S = 15
SPAWN_TIMEOUT_S = 120  # under a class-start burst a spawn waits for CPU (measured: 12-20 s each at 2 cores)
PRESPAWN_CONCURRENCY = 2  # per core: spawns are CPU-bound, more at once only makes each slower
STOP_GRACE_S = 20  # Ctrl-C: how long the hub may take to stop every server before leftovers are killed
EXIT_GRACE_S = 5.0  # then how long a process still exiting (a kernel its server just stopped) may take

# -- one learner's share (containers and pods) -------------------------------------------------------------------
MEMORY_GUARANTEE_GIB = 1.0  # a chapter and a lab open: ~400 + ~280 MiB PSS measured, with headroom
MEMORY_LIMIT_GIB = 2.0  # four notebooks open at once still fit; a runaway kernel is stopped, not the node
CPU_GUARANTEE = 0.1
CPU_LIMIT = 1.0

#: What was measured on this kind of machine (2 cores, 24 GB, shared with other work), with where it comes from.
MEASURED: dict[str, str] = {
    "hub_start_s": "8-10",  # reference.md section 9 (JupyterHub 6.1.1 prototype)
    "spawn_s": "12-20",
    "spawn_cpu_s": "~5",
    "learner_pss_mib": "~400",  # one notebook open
    "extra_notebook_mib": "~280",
    "idle_cpu": "~0.05 % of a core",
    "check_s": "2-4",  # a lab check with 3 learners checking at once
    "machine_learners_open": "~24",  # a chapter and a lab open each, 2 cores / 24 GB
    "machine_learners_culled": "~40",  # idle kernels culled
}

#: `make classroom-benchmark` on this machine (filled in from its output; see tools/classroom/benchmark.py).
BENCHMARK: dict[str, str] = {
    "learners": "5",
    "when": "2026-12-04, load average 5-9 from other work on the 2 cores",
    "spawn_s": "24-30 (median 27)",
    "pss_mib": "~250",
    "check_s": "2.6-3.2",
}


@dataclass(frozen=True)
class Node:
    """A Kubernetes node type for the big room (a common general-purpose size; any cloud has one like it)."""

    vcpu: int = 8
    memory_gib: int = 32
    reserved_fraction: float = 0.1  # kubelet, system daemons, eviction threshold


@dataclass(frozen=True)
class BigRoom:
    """Zero to JupyterHub sizing for a room of ``learners``, from the per-learner guarantees above."""

    learners: int = 200
    node: Node = Node()
    spare_nodes: int = 1  # one node can fail (or drain) during class without refusing anyone
    placeholders: int = 10  # user-placeholder pods keep room for late arrivals without waiting for a new node

    @property
    def per_node(self) -> int:
        usable_mem = self.node.memory_gib * (1 - self.node.reserved_fraction)
        usable_cpu = self.node.vcpu * (1 - self.node.reserved_fraction)
        return min(math.floor(usable_mem / MEMORY_GUARANTEE_GIB), math.floor(usable_cpu / CPU_GUARANTEE))

    @property
    def nodes(self) -> int:
        return math.ceil((self.learners + self.placeholders) / self.per_node) + self.spare_nodes


BIG_ROOM = BigRoom()


def gib(value: float) -> str:
    """Kubernetes/Docker quantity: 1.0 -> '1G' style strings are ambiguous, so say Gi / MiB explicitly."""
    return f"{round(value * 1024)}Mi" if value % 1 else f"{int(value)}Gi"
