"""tests/rerun.py tells a notebook that survives "restart and run all" twice from one that does not."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def notebook(*cells: tuple[str, str]) -> dict:
    """A notebook of code cells (source, stored stdout) as nbformat 4 JSON."""
    out = []
    for n, (source, stdout) in enumerate(cells):
        outputs = [{"name": "stdout", "output_type": "stream", "text": [stdout]}] if stdout else []
        out.append(
            {"cell_type": "code", "id": f"c{n}", "metadata": {}, "source": [source], "outputs": outputs,
             "execution_count": n + 1}
        )  # fmt: skip
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return {"cells": out, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def run(pytester: pytest.Pytester, nb: dict) -> pytest.RunResult:
    folder = pytester.mkdir("notebooks")
    (folder / "01_probe.ipynb").write_text(json.dumps(nb))
    return pytester.runpytest_subprocess(
        "-p", "tests.workbook_server", "-p", "tests.rerun", "--nbval", "--nbval-current-env", "-q",
        "-p", "no:cacheprovider", f"--rootdir={pytester.path}", "notebooks/01_probe.ipynb",
    )  # fmt: skip


@pytest.fixture
def in_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in ("WORKBOOK_BACKEND", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", "true")
    return pytester


SETUP = ("from helpers.notebook import setup\nwb = setup('tstrr', quiet=True)", "")
CLEANUP = ("wb.cleanup()", "cleanup: removed 1 resources under 'tstrr-'; nothing left behind\n")


def test_a_re_runnable_notebook_passes_with_both_runs(in_repo: pytest.Pytester) -> None:
    queue = ("q = wb.resources.ensure_queue('jobs')\nprint(q.url.rsplit('/', 1)[-1])", "tstrr-jobs\n")
    result = run(in_repo, notebook(SETUP, queue, CLEANUP))
    result.assert_outcomes(passed=5)  # run 1, three cells, nothing left


def test_state_outside_the_prefix_makes_run_2_differ_and_fail(in_repo: pytest.Pytester) -> None:
    """A counter kept where setup() cannot clean it: run 1 leaves 1, run 2 prints 1 instead of the stored 0."""
    table = f"rerun-probe-{uuid.uuid4().hex[:8]}"
    counter = (
        "wb.resources.ensure_queue('jobs')\n"
        "ddb = wb.client('dynamodb')\n"
        f"T = '{table}'\n"
        "try:\n"
        "    ddb.create_table(TableName=T, KeySchema=[{'AttributeName': 'k', 'KeyType': 'HASH'}],\n"
        "        AttributeDefinitions=[{'AttributeName': 'k', 'AttributeType': 'S'}], BillingMode='PAY_PER_REQUEST')\n"
        "except ddb.exceptions.ResourceInUseException:\n"
        "    pass\n"
        "import uuid\n"
        "print(ddb.scan(TableName=T)['Count'])\n"
        "ddb.put_item(TableName=T, Item={'k': {'S': uuid.uuid4().hex}})",
        "0\n",
    )
    result = run(in_repo, notebook(SETUP, counter, CLEANUP))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    assert "Cell 1" in result.stdout.str()


def test_a_cleanup_that_leaves_a_resource_fails_the_last_item(in_repo: pytest.Pytester) -> None:
    """Resources created after cleanup (a real mistake: work after the last cell's cleanup) are found."""
    late = ("wb.cleanup()\n_ = wb.resources.ensure_queue('late')", CLEANUP[1])
    result = run(in_repo, notebook(SETUP, ("_ = wb.resources.ensure_queue('jobs')", ""), late))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and "left nothing" in result.stdout.str(), result.stdout.str()
