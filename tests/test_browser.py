"""The learner's JupyterLab, seen through a real browser: what nbval cannot see.

`make lab` is started as a learner starts it, and the URL it prints is opened in headless Chromium (Debian's package,
driven by Playwright for Python; Playwright's own browser download cannot work offline). The test checks what a learner
would notice: the URL lands on notebook 00, the server refuses visitors without the token, Run All from the menu
finishes without an error output, every Mermaid diagram becomes an SVG, and a widget reacts when it is used.
Screenshots go to build/browser/ so a person can look at them.

Skipped with the reason on a machine without Chromium or Playwright, never under CI (`make test` installs both).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import browser as chrome
from tests.net import free_port, status

ROOT = Path(__file__).resolve().parent.parent
SHOTS = chrome.SHOTS
RUN_ALL_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(600), pytest.mark.xdist_group("browser")]


@dataclass
class Lab:
    base: str
    url: str
    token: str


@pytest.fixture(scope="module")
def sync_playwright() -> Iterator[Any]:
    yield from chrome.playwright()


@pytest.fixture(scope="module")
def browser(sync_playwright: Any) -> Iterator[Any]:
    yield from chrome.chromium(sync_playwright)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """`make lab` as a learner runs it (tools/workbook.py), on free ports; stopped with Ctrl-C afterwards.

    JupyterLab keeps its workspaces (open tabs) under the user's home; the test gets an empty folder of its own, as a
    learner's first session has, and leaves the home untouched."""
    jupyter_port, moto_port = free_port(), free_port()
    env = {**os.environ, "JUPYTER_PORT": str(jupyter_port), "MOTO_PORT": str(moto_port), "CI": "", "TQDM_DISABLE": ""}
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path_factory.mktemp("jupyterlab-workspaces"))
    for name in ("JUPYTER_TOKEN", "AWS_ENDPOINT_URL", "WORKBOOK_BACKEND"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "tools/workbook.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    said: list[str] = []
    try:
        deadline = time.monotonic() + 120
        match = None
        while match is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "make lab stopped:\n" + "".join(said)
            said.append(line)
            match = re.search(r"(http://127\.0\.0\.1:\d+)(/lab\S*\?token=(\S+))", line)
        assert match, "make lab printed no URL within 120 s:\n" + "".join(said)
        yield Lab(base=match.group(1), url=match.group(1) + match.group(2), token=match.group(3))
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=False)
        context.close()


def _open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Each test in a workspace of its own, so one test's open tabs and dialogs never meet another's."""
    workspace = re.sub(r"\W", "-", name)
    page.goto(f"{lab.base}/lab/workspaces/{workspace}/tree/notebooks/{name}?token={lab.token}")
    page.wait_for_selector(f".jp-mod-current .lm-TabBar-tabLabel:text-is('{name}')", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=60_000)
    _accept_kernel_dialog(page)
    _wait_kernel_idle(page)


def _accept_kernel_dialog(page: Any) -> None:
    """JupyterLab may ask which kernel to start even when the notebook names one; a learner clicks Select."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=5_000)
    except Exception:
        return
    dialog.locator("button", has_text="Select").click()
    dialog.wait_for(state="detached", timeout=10_000)


def _notebook(page: Any) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def _wait_kernel_idle(page: Any, timeout_ms: int = 60_000) -> None:
    page.wait_for_selector(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms
    )


def _run_all(page: Any) -> None:
    """Run > Run All Cells from the menu bar, as a learner does, then wait until every cell has run."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_selector(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='busy']", timeout=30_000
    )
    _wait_kernel_idle(page, RUN_ALL_TIMEOUT_MS)
    pending = _notebook(page).locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]")
    assert pending.count() == 0, "cells still waiting to run after the kernel went idle"


def _error_outputs(page: Any) -> list[str]:
    errors = _notebook(page).locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'],"
        " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    )
    return [errors.nth(i).inner_text()[:500] for i in range(errors.count())]


def _mermaid_blocks(notebook_name: str) -> int:
    """How many Mermaid diagrams the stored notebook has (Markdown fences and text/vnd.mermaid outputs)."""
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / notebook_name, as_version=4)
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            count += len(re.findall(r"^```mermaid\s*$", cell.source, flags=re.M))
        elif cell.cell_type == "code":
            count += sum("text/vnd.mermaid" in out.get("data", {}) for out in cell.get("outputs", []))
    return count


def _assert_mermaid_rendered(page: Any, notebook_name: str) -> int:
    """Every diagram becomes an SVG and none shows Mermaid's error; scrolled into view so lazy cells render too."""
    expected = _mermaid_blocks(notebook_name)
    assert expected > 0, f"{notebook_name} has no Mermaid diagram to check"
    cells = _notebook(page).locator(".jp-Cell")
    for i in range(cells.count()):
        cells.nth(i).scroll_into_view_if_needed()
    selector = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedMermaid img[src^='data:image/svg+xml']"
    page.wait_for_function(
        "([selector, n]) => document.querySelectorAll(selector).length >= n", arg=[selector, expected], timeout=60_000
    )
    svgs = page.evaluate(
        "(selector) => Array.from(document.querySelectorAll(selector)).map(img => decodeURIComponent(img.src))",
        selector,
    )
    assert len(svgs) == expected, f"{len(svgs)} Mermaid diagrams rendered to SVG, {expected} in the notebook"
    warned = _notebook(page).locator(".jp-RenderedMermaid.jp-mod-warning")
    assert warned.count() == 0, "Mermaid reported an error: " + warned.first.inner_text()[:500]
    broken = [svg[:300] for svg in svgs if 'aria-roledescription="error"' in svg or "Syntax error" in svg]
    assert not broken, f"Mermaid drew its error diagram: {broken}"
    return expected


def test_the_printed_url_opens_notebook_00(lab: Lab, page: Any) -> None:
    page.goto(lab.url)
    page.wait_for_selector(".jp-mod-current .lm-TabBar-tabLabel:text-is('00_welcome.ipynb')", timeout=60_000)
    assert page.locator(".jp-Launcher:visible").count() == 0, "the Launcher is showing instead of notebook 00"
    tabs = page.locator(".jp-MainAreaWidget-ContainerTabBar .lm-TabBar-tab, #jp-main-dock-panel .lm-TabBar-tab")
    assert tabs.count() == 1, f"a first session opens notebook 00 alone, not {tabs.count()} tabs"
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=60_000)
    _accept_kernel_dialog(page)  # so the screenshot shows the notebook, as the learner sees it


def test_without_the_token_the_lab_asks_for_it_and_the_api_refuses(lab: Lab, page: Any) -> None:
    page.goto(f"{lab.base}/lab")
    page.wait_for_selector("input[type='password'], input[name='password']", timeout=30_000)
    assert "/login" in page.url
    assert status(f"{lab.base}/api/contents") == 403
    assert status(f"{lab.base}/api/contents?token={lab.token}") == 200


@pytest.mark.parametrize("notebook_name", ["00_welcome.ipynb", "10_idempotent_workflow.ipynb"])
def test_run_all_from_the_menu_shows_no_error_and_every_diagram(lab: Lab, page: Any, notebook_name: str) -> None:
    _open_notebook(page, lab, notebook_name)
    _run_all(page)
    assert _error_outputs(page) == []
    _assert_mermaid_rendered(page, notebook_name)


def test_a_widget_renders_and_reacts(lab: Lab, page: Any) -> None:
    """Notebook 06's loss-rate sweep: run it, move the slider, run again: the table changes."""
    _open_notebook(page, lab, "06_where_duplicates_come_from.ipynb")
    _run_all(page)
    assert _error_outputs(page) == []
    slider = _notebook(page).locator(".widget-slider", has_text="loss rate").first
    slider.scroll_into_view_if_needed()
    button = _notebook(page).locator(".widget-button", has_text="run").first

    def table_after_run(rate: str) -> str:
        """Click run and wait for the table of *this* run: the previous table stays on the page until the kernel
        has handled the click, so waiting for any table (or for an idle kernel) can read the old one."""
        button.click()
        cell = _notebook(page).locator(".widget-output table td", has_text=re.compile(rf"^{re.escape(rate)}"))
        cell.first.wait_for(timeout=30_000)
        _wait_kernel_idle(page)
        return _notebook(page).locator(".widget-output table").first.inner_text()

    before = table_after_run("0.3")
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(4):  # 0.3 -> 0.7
        page.keyboard.press("ArrowRight")
    readout = slider.locator(".widget-readout").first.inner_text()
    assert readout.strip() == "0.70", readout
    after = table_after_run("0.7")
    assert "0.7" in after and after != before, (before, after)


# -- the classroom's progress board, as an instructor sees it -------------------------------------------------------
@dataclass
class Room:
    url: str
    instructor_password: str
    learners: tuple[str, ...]


def _records(learner: int) -> list[dict[str, Any]]:
    """Two learners' morning: chapters opened, lab 01 done by one and stuck for the other, lab 03 under way."""
    import secrets as random_ids

    def record(minutes_ago: float, kind: str, **fields: Any) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")
        return {"kind": kind, "id": random_ids.token_hex(16), "at": at.replace("+00:00", "Z"), **fields}

    miss, crash = "every pattern is one AWS accepts", "a crash between charge and delete does not charge again"
    if learner == 0:
        return [
            record(40, "setup", notebook="nb00"), record(30, "setup", notebook="nb03"),
            record(20, "check", lab="lab01", met=1, total=3, first_miss=miss),
            record(15, "check", lab="lab01", met=3, total=3, first_miss=None),
            record(5, "check", lab="lab03", met=3, total=5, first_miss=crash),
        ]  # fmt: skip
    return [
        record(35, "setup", notebook="nb00"), record(25, "setup", notebook="nb06"),
        *(record(m, "check", lab="lab01", met=1, total=3, first_miss=miss) for m in (8, 5, 2)),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def classroom_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """`make classroom` on free ports, with two learners whose kernels' records were posted with their own tokens."""
    import json
    import shutil as sh
    import tempfile

    import requests

    from tools.classroom import classroom, learners
    from tools.classroom.hubapi import HubApi
    from tools.classroom.room import Room as ClassroomRoom

    if sh.which("npm") is None and not classroom.PROXY_BIN.exists():
        chrome.skip_or_fail("npm is not installed: the classroom's proxy cannot be installed")
    state = Path(tempfile.mkdtemp(prefix="wb-board-shot-"))
    state.chmod(0o711)
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.classroom", "--state-dir", str(state), "--port", str(free_port())],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    said: list[str] = []
    room = None
    try:
        deadline = time.monotonic() + 120
        while room is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "the classroom stopped:\n" + "".join(said)
            said.append(line)
            if "Classroom ready" in line:
                room = ClassroomRoom.load(state / "room.json")
        assert room is not None, "no classroom within 120 s:\n" + "".join(said)
        api = HubApi(room.loopback_url, room.secret("launcher-token"))
        names = ("amara", "bogdan")
        api.create_users(list(names))
        for n, name in enumerate(names):
            token = api.token_for(name)
            answer = requests.post(
                room.records_url("progress"), data=json.dumps(_records(n)), timeout=10,
                headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
        yield Room(room.loopback_url, room.secret("instructor-password"), names)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        if room is not None and room.separate_users:
            learners.remove_system_users(room)
        sh.rmtree(state, ignore_errors=True)


@pytest.mark.xdist_group("classroom")
def test_the_instructor_sees_the_progress_board(classroom_room: Room, page: Any) -> None:
    """Log in as the instructor, land on the board: two learners' rows, the stuck one flagged, the chart, all local."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{classroom_room.url}/hub/login")
    page.fill("#username_input", "instructor")
    page.fill("#password_input", classroom_room.instructor_password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/services/progress/.*"), timeout=60_000)
    page.wait_for_selector("table tbody tr", timeout=30_000)
    rows = page.locator("table tbody tr")
    assert rows.count() == 2, rows.all_inner_texts()
    first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert first.startswith("amara") and "3/3" in first and "done" in first and "03" in first
    assert second.startswith("bogdan") and "stuck" in second and "1/3" in second and "06" in second
    explain = page.locator(".explain").inner_text()
    assert "2 learners" not in explain and '1 learner at "every pattern is one AWS accepts"' in explain
    assert page.locator("svg.chart rect").count() >= 3
    elsewhere = [url for url in requested if not url.startswith(classroom_room.url)]
    assert elsewhere == [], f"the board loaded something from elsewhere: {elsewhere}"
