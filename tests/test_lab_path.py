"""The `make lab` path gives the stored outputs: notebooks checked by nbval against one shared moto server.

The proof is the nbval run itself with ``-p tests.lab_server`` (see that plugin). When the Makefile's nbval step
loads the plugin, that step is the proof and this file only checks the plugin's configuration; until then, the
last test here runs every notebook that way itself, so the proof never goes missing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import lab_server

ROOT = lab_server.ROOT
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]


def makefile_runs_nbval_the_lab_way() -> bool:
    return "-p tests.lab_server" in (ROOT / "Makefile").read_text()


def test_the_plugin_gives_kernels_what_make_lab_gives_them() -> None:
    lab = lab_server.load_lab()
    env = lab.kernel_environment("http://127.0.0.1:5123", 5123, base={})
    assert env == {"WORKBOOK_BACKEND": "embedded", "AWS_ENDPOINT_URL": "http://127.0.0.1:5123", "MOTO_PORT": "5123"}
    assert lab_server.wanted({}) and lab_server.wanted({"WORKBOOK_BACKEND": "embedded"})
    assert not lab_server.wanted({"WORKBOOK_BACKEND": "localstack"})
    assert not lab_server.wanted({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})


def test_the_printed_url_opens_notebook_00() -> None:
    lab = lab_server.load_lab()
    assert (
        lab.start_url("http://127.0.0.1:8888", "t")
        == "http://127.0.0.1:8888/lab/tree/notebooks/00_welcome.ipynb?token=t"
    )
    assert (ROOT / lab.START_NOTEBOOK).exists()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_every_notebook_gives_its_stored_outputs_on_the_make_lab_path() -> None:
    if makefile_runs_nbval_the_lab_way():
        pytest.skip("the Makefile's nbval step runs every notebook with -p tests.lab_server: that run is the proof")
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "PYTEST_CURRENT_TEST")}
    env.update(WORKBOOK_BACKEND="embedded", CI="true", TQDM_DISABLE="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.lab_server", "-p", "no:cacheprovider", *NBVAL, *notebooks],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1150,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
