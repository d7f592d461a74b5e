"""The `make lab` path gives the stored outputs: notebooks checked by nbval against one shared moto server.

The proof is the nbval run itself with ``-p tests.workbook_server`` (see that plugin): `make nbval` runs every notebook
and lab that way. This file checks the plugin's configuration and that the Makefile keeps loading it.
"""

from __future__ import annotations

from tests import workbook_server

ROOT = workbook_server.ROOT
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]


def makefile_runs_nbval_the_lab_way() -> bool:
    return "-p tests.workbook_server" in (ROOT / "Makefile").read_text()


def test_the_plugin_gives_kernels_what_make_lab_gives_them() -> None:
    lab = workbook_server.load_launcher()
    env = lab.kernel_environment("http://127.0.0.1:5123", 5123, base={})
    assert env == {"WORKBOOK_BACKEND": "embedded", "AWS_ENDPOINT_URL": "http://127.0.0.1:5123", "MOTO_PORT": "5123"}
    assert workbook_server.wanted({}) and workbook_server.wanted({"WORKBOOK_BACKEND": "embedded"})
    assert not workbook_server.wanted({"WORKBOOK_BACKEND": "localstack"})
    assert not workbook_server.wanted({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})


def test_the_printed_url_opens_notebook_00() -> None:
    lab = workbook_server.load_launcher()
    assert (
        lab.start_url("http://127.0.0.1:8888", "t")
        == "http://127.0.0.1:8888/lab/tree/notebooks/00_welcome.ipynb?token=t"
    )
    assert (ROOT / lab.START_NOTEBOOK).exists()


def test_make_test_checks_every_notebook_and_lab_on_the_make_lab_path() -> None:
    """The proof is `make nbval` itself: it must load the plugin and run every notebook and lab."""
    makefile = (ROOT / "Makefile").read_text()
    nbval_recipe = makefile.split("\nnbval:", 1)[1].split("\n\n", 1)[0]
    assert "-p tests.workbook_server" in nbval_recipe and "$(NOTEBOOKS) $(LABS)" in nbval_recipe, nbval_recipe
    assert "-p tests.rerun" in nbval_recipe, "restart-and-run-all twice is proved inside the nbval run"
