"""`make classroom-benchmark`: N learners arrive at once, each runs a lab check at the same moment; the figures.

It starts a real classroom (the launcher's own functions, free ports, a state directory of its own), spawns N learner
servers together, opens a kernel in each, runs lab 01's setup and solution, then the lab's check in every kernel at
once, and prints: spawn time per learner, memory per learner (PSS of their server and kernel), check latency. Then it
stops everything (and, as root, removes the learners' system users). The README quotes its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.classroom import classroom, learners
from tools.classroom.hubapi import HubApi
from tools.classroom.kernel_client import LearnerKernel
from tools.classroom.room import MARKER_ENV, ROOT, Room

LAB = ROOT / "labs" / "01_route_au_nz_and_big_orders"


def code_cells(notebook: Path) -> list[str]:
    """The code of a notebook's code cells, in order."""
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def learner_pss_mib(marker: str) -> dict[str, float]:
    """Memory per learner: the PSS of every process of theirs (server, kernels), found by the room's marker."""
    needle = f"{MARKER_ENV}={marker}".encode()
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if needle not in environ:
                continue
            learner = next((v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"WORKBOOK_LEARNER=")), None)
            rollup = (entry / "smaps_rollup").read_text()
        except OSError:
            continue
        if learner is None:
            continue
        pss_kib = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
        totals[learner] = totals.get(learner, 0.0) + pss_kib / 1024
    return totals


async def _prepare(room: Room, token: str, name: str, cells: list[str]) -> LearnerKernel:
    kernel = await LearnerKernel(room.loopback_url, token, name).start()
    for code in cells[:2]:  # setup("lab01") and the rules
        result = await kernel.run(code)
        if not result.ok:
            raise RuntimeError(f"{name}: {result.error}")
    return kernel


async def _check(kernel: LearnerKernel, code: str) -> float:
    result = await kernel.run(code)
    if not result.ok:
        raise RuntimeError(f"{kernel.learner}'s check failed: {result.error}")
    return result.seconds


async def _kernels(room: Room, token: str, names: list[str]) -> tuple[list[float], dict[str, float], float]:
    cells = code_cells(LAB / "solution.ipynb")
    started = time.monotonic()
    kernels = await asyncio.gather(*(_prepare(room, token, n, cells) for n in names))
    prepared = time.monotonic() - started
    try:
        checks = await asyncio.gather(*(_check(k, cells[2]) for k in kernels))
        memory = learner_pss_mib(room.marker)
    finally:
        await asyncio.gather(*(k.shutdown() for k in kernels), return_exceptions=True)
    return list(checks), memory, prepared


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f}, min {min(values):.1f}, max {max(values):.1f}"


def run(n: int, state_dir: str | None = None) -> dict[str, Any]:
    state = Path(state_dir or tempfile.mkdtemp(prefix="wb-classroom-bench-"))
    state.chmod(0o711)
    opts = classroom.parser().parse_args(["start", "--state-dir", str(state), "--password", "benchmark-room"])
    opts.port_given, opts.port = False, classroom.free_port()
    room = classroom.make_room(opts)
    hub = classroom.start_hub(room)
    names = [f"bench{i:02d}" for i in range(1, n + 1)]
    try:
        hub_s = classroom.wait_ready(room, hub)
        api = HubApi(room.loopback_url, room.secret("launcher-token"))
        started = time.monotonic()
        spawns = api.spawn_all(names, concurrency=n)
        all_up = time.monotonic() - started
        checks, memory, prepared = asyncio.run(_kernels(room, room.secret("launcher-token"), names))
    finally:
        leftovers = classroom.stop(room, hub)
        if room.separate_users:
            learners.remove_system_users(room)
        if state_dir is None:
            shutil.rmtree(state, ignore_errors=True)
    return {
        "learners": n,
        "hub_start_s": hub_s,
        "spawn_s": list(spawns.values()),
        "all_up_s": all_up,
        "kernels_ready_s": prepared,
        "pss_mib": list(memory.values()),
        "check_s": checks,
        "left_running_after_stop": leftovers,
    }


def main(opts: argparse.Namespace) -> int:
    figures = run(opts.n, opts.state_dir)
    print(f"\nclassroom benchmark: {figures['learners']} learners arriving at once")
    print(f"  hub start:                  {figures['hub_start_s']:.1f} s")
    print(f"  spawn per learner (s):      {_summary(figures['spawn_s'])}; all {figures['all_up_s']:.1f} s")
    print(f"  kernel + lab 01 setup:      {figures['kernels_ready_s']:.1f} s for all")
    print(f"  memory per learner (MiB):   {_summary(figures['pss_mib'])} PSS (server + one kernel with its moto)")
    print(f"  lab 01 check, all at once:  {_summary(figures['check_s'])} s")
    print(f"  processes killed after stop: {len(figures['left_running_after_stop'])}")
    return 0
