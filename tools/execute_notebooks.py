"""`make notebook NB=...` / `make notebooks`: execute notebooks in place the way a learner runs them under `make lab`.

One moto server is started as tools/workbook.py starts it and every kernel gets the lab's environment, so the stored
outputs are what a learner sees on the default path (nbval then checks them the same way, through
tests/workbook_server.py). When a backend is chosen already (LocalStack, an endpoint), that backend is used instead.
Execution timestamps are not recorded, so a re-run's diff shows only real changes.
Usage: ``python tools/execute_notebooks.py NOTEBOOK...``
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.workbook_server import load_launcher, wanted  # noqa: E402 - the repository root is put on the path just above

CELL_TIMEOUT_S = 300


def execute(path: Path, env: dict[str, str]) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    client.execute(env=env)
    nbformat.write(notebook, path)
    return time.monotonic() - started


def main(paths: list[str]) -> int:
    env = {**os.environ, "CI": "true", "TQDM_DISABLE": "1"}
    server = None
    if wanted(env):
        lab = load_launcher()
        server, endpoint, port = lab.start_shared_server(0)
        env = lab.kernel_environment(endpoint, port, base=env)
    try:
        for name in paths:
            seconds = execute(Path(name), env)
            print(f"{name}: executed in {seconds:.1f} s", flush=True)
    finally:
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
