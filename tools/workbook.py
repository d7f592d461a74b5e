"""`make lab`: one shared moto server and JupyterLab, both on 127.0.0.1, stopped together by Ctrl-C.

The kernels get the moto endpoint through AWS_ENDPOINT_URL, so every notebook shares one emulator that a learner can
also browse at <endpoint>/moto-api/. Jupyter keeps token auth: the token comes from JUPYTER_TOKEN or is made up here.
The printed URL opens notebook 00 (not the Launcher); JupyterLab asks no news question (tools/jupyterlab/settings holds
the overrides) and the file browser hides build outputs and packaging metadata. ``kernel_environment`` is the one
place that says what a kernel sees, so the test that runs every notebook "the make lab way" uses the same values.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from helpers.aws.backend import start_moto_server
from helpers.services.http import HOST, free_port, port_is_free

ROOT = Path(__file__).resolve().parent.parent

START_NOTEBOOK = "notebooks/00_welcome.ipynb"
SETTINGS_DIR = ROOT / "tools" / "jupyterlab" / "settings"
# Not for learners' eyes in the file browser: build outputs, packaging metadata, caches (dot-files are hidden anyway).
HIDDEN = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "build", "*.egg-info")


def kernel_environment(endpoint: str, moto_port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """What every kernel of the lab sees: the shared moto server as its backend."""
    return {
        **(os.environ if base is None else base),
        "WORKBOOK_BACKEND": "embedded",
        "AWS_ENDPOINT_URL": endpoint,
        "MOTO_PORT": str(moto_port),
    }


def start_shared_server(port: int = 0) -> tuple[Any, str, int]:
    """The lab's one moto server (Step Functions execution on, atomic conditional writes), as `make lab` starts it."""
    server, endpoint = start_moto_server(port)
    return server, endpoint, int(endpoint.rsplit(":", 1)[1])


def jupyter_command(port: int) -> list[str]:
    hidden = "[" + ",".join(f"'{glob}'" for glob in HIDDEN) + "]"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False", f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.default_url=/lab/tree/{START_NOTEBOOK}",
        f"--LabApp.app_settings_dir={SETTINGS_DIR}",  # overrides.json: no news popup, no update check
        f"--ContentsManager.hide_globs={hidden}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")  # containers and CI run as root; Jupyter refuses otherwise
    return command


def start_url(base: str, token: str) -> str:
    """The URL to print: it opens notebook 00 directly and carries the token."""
    return f"{base}/lab/tree/{START_NOTEBOOK}?token={token}"


def choose_port(variable: str, default: int) -> int:
    """The port asked for, or a free one with a sentence saying so (never a crash on a taken port)."""
    wanted = int(os.environ.get(variable) or default)
    if port_is_free(wanted):
        return wanted
    free = free_port()
    print(f"port {wanted} is taken, using {free} instead (set {variable}=<port> to choose another)", flush=True)
    return free


def wait_for_jupyter(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"JupyterLab exited with code {process.returncode}; its log is build/jupyterlab.log.")
        try:
            urllib.request.urlopen(f"{url}/api", timeout=1).close()  # noqa: S310 - our own loopback server
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"JupyterLab did not answer at {url} within {timeout_s:.0f} s.")


def main() -> int:
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_urlsafe(24)
    moto_port = choose_port("MOTO_PORT", 5000)
    server, endpoint, moto_port = start_shared_server(moto_port)
    jupyter_port = choose_port("JUPYTER_PORT", 8888)
    env = {**kernel_environment(endpoint, moto_port), "JUPYTER_TOKEN": token}
    command = jupyter_command(jupyter_port)
    log_path = ROOT / "build" / "jupyterlab.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    # Its own session: Ctrl-C reaches only this launcher, which then stops Jupyter without its y/n prompt.
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{HOST}:{jupyter_port}"
    try:
        wait_for_jupyter(base, process)
        print(f"\nmoto server (shared by every notebook): {endpoint}   dashboard: {endpoint}/moto-api/", flush=True)
        print("JupyterLab is ready. Open this URL (it opens notebook 00 and carries the access token):")
        print(f"\n    {start_url(base, token)}\n")
        print("Press Ctrl-C to stop both (JupyterLab logs to build/jupyterlab.log).", flush=True)
        process.wait()
    except KeyboardInterrupt:
        print("\nstopping JupyterLab and the moto server...", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave a server behind
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.stop()
        log.close()
    print("stopped; nothing left running.", flush=True)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Ctrl-C and SIGTERM both stop cleanly, even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
