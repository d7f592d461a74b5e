"""`make lab`: JupyterLab and the shared moto server on 127.0.0.1 only, token required, both gone after Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.net import free_port, listening, status

ROOT = Path(__file__).resolve().parent.parent


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, to prove nothing listens on them."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a) and not a.startswith("127.")]


@pytest.mark.timeout(120)
def test_lab_serves_on_loopback_with_token_auth_and_stops_cleanly() -> None:
    jupyter_port, moto_port = free_port(), free_port()
    env = {**os.environ, "JUPYTER_PORT": str(jupyter_port), "MOTO_PORT": str(moto_port)}
    env.pop("JUPYTER_TOKEN", None)
    lab = subprocess.Popen(
        [sys.executable, "tools/workbook.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        token = None
        while token is None and time.monotonic() < deadline:
            line = lab.stdout.readline()
            assert line or lab.poll() is None, "".join(lines)
            lines.append(line)
            # The printed URL opens notebook 00 itself, not the Launcher.
            match = re.search(
                rf"http://127\.0\.0\.1:{jupyter_port}/lab/tree/notebooks/00_welcome\.ipynb\?token=(\S+)", line
            )
            token = match.group(1) if match else None
        assert token, "".join(lines)
        base = f"http://127.0.0.1:{jupyter_port}"
        assert status(f"{base}/api/status") == 403, "the API must refuse a request without the token"
        assert status(f"{base}/api/status?token={token}") == 200
        assert status(f"http://127.0.0.1:{moto_port}/moto-api/data.json") == 200
        # A fresh session asks no news question and fetches nothing.
        notification = get_json(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        defaults = notification["schema"]["properties"]
        assert (defaults["fetchNews"]["default"], defaults["checkForUpdates"]["default"]) == ("false", False)
        # Build outputs and packaging metadata stay out of the file browser.
        listed = {item["name"] for item in get_json(f"{base}/api/contents?token={token}")["content"]}
        assert "notebooks" in listed and "build" not in listed, listed
        assert not [name for name in listed if name.endswith(".egg-info")], listed
        for address in other_addresses():
            assert not listening(address, jupyter_port), f"JupyterLab answers on {address}"
            assert not listening(address, moto_port), f"moto answers on {address}"
    finally:
        os.killpg(lab.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
        try:
            out, _ = lab.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            lab.terminate()  # SIGTERM: the launcher still stops JupyterLab and moto, so no server outlives the test
            lab.communicate(timeout=30)
            pytest.fail("Ctrl-C did not stop `make lab` within 30 s")
    assert lab.returncode == 0, "".join(lines) + out
    assert "nothing left running" in out
    assert not listening("127.0.0.1", jupyter_port) and not listening("127.0.0.1", moto_port)


def test_a_taken_port_is_replaced_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    import workbook as lab

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        os.environ["WORKBOOK_TEST_PORT"] = str(port)
        try:
            chosen = lab.choose_port("WORKBOOK_TEST_PORT", 1)
        finally:
            del os.environ["WORKBOOK_TEST_PORT"]
    assert chosen != port
    said = capsys.readouterr().out
    assert f"port {port} is taken, using {chosen}" in said and "WORKBOOK_TEST_PORT" in said
