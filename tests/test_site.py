"""The course site (`make site`): what it contains, that it builds offline with no warning, its links, and a browser.

The site is built once for this module, exactly as `make site` builds it (tools/site/build_site.py: Sphinx with
warnings as errors, then every internal link and anchor checked). Then a headless Chromium reads it from a static
server on 127.0.0.1 and checks what a reader sees: the course map on the front page, a chapter's Mermaid diagrams
drawn as SVG with its tables and plots, the "next" link, widgets in their stored state, and no request to any other
host. Screenshots go to build/browser/site-*.png.

Chapters and labs are found from the catalogue and the files, never named here: the lab folders and notebook names
change as the course grows.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest

from tests import browser as chrome

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "site"))
import build_site  # noqa: E402
import check_links  # noqa: E402

SITE = build_site.output_dir()


# -- what the site contains (no build needed) ---------------------------------------------------------------------
def test_every_notebook_and_lab_on_disk_gets_a_page_in_course_order() -> None:
    pages = build_site.course_pages()
    docs = [p.doc for p in pages]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.stem}" in docs, f"{notebook.name} has no page on the site"
    lab_dirs = {p.parent for pattern in ("*/lab.md", "*/starter.ipynb") for p in (ROOT / "labs").glob(pattern)}
    assert lab_dirs, "no lab found: the test would prove nothing"
    for folder in sorted(lab_dirs):
        assert f"labs/{folder.name}/starter" in docs, f"labs/{folder.name} has no page on the site"
    assert not any("solution" in doc for doc in docs), "the public site must not carry solutions"
    # A lab comes right after the chapter it follows, or after the labs that follow the same chapter.
    for i, page in enumerate(pages):
        if page.kind == "lab":
            before = pages[i - 1]
            assert before.number == page.number, f"{page.doc} follows {page.number} but comes after {before.doc}"
    chapters = [p.number for p in pages if p.kind == "chapter"]
    assert chapters == sorted(chapters)


def _write_notebook(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 · New")]), path)


@pytest.mark.parametrize("extra", ["notebooks/99_not_in_the_catalogue.ipynb", "labs/99_not_in_the_catalogue/lab.md"])
def test_a_notebook_or_lab_the_catalogue_does_not_know_stops_the_build(tmp_path: Path, extra: str) -> None:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "labs").mkdir()
    if extra.endswith(".ipynb"):
        _write_notebook(tmp_path / extra)
    else:
        (tmp_path / extra).parent.mkdir(parents=True)
        (tmp_path / extra).write_text("# Lab 99\n")
    with pytest.raises(build_site.SiteError, match=re.escape(str(Path(extra).parent if "labs" in extra else extra))):
        build_site.course_pages(root=tmp_path)


def test_a_solution_is_built_only_for_the_instructor(tmp_path: Path) -> None:
    lab = build_site.course.LABS[0]
    chapter = build_site.course.chapter(lab.follows)
    assert chapter is not None
    _write_notebook(tmp_path / "notebooks" / f"{chapter.stem}.ipynb")
    _write_notebook(tmp_path / "labs" / lab.folder / "starter.ipynb")
    _write_notebook(tmp_path / "labs" / lab.folder / "solution.ipynb")
    public = [p.doc for p in build_site.course_pages(root=tmp_path)]
    instructor = [p.doc for p in build_site.course_pages(instructor=True, root=tmp_path)]
    assert public == [f"notebooks/{chapter.stem}", f"labs/{lab.folder}/starter"]
    assert instructor == [*public, f"labs/{lab.folder}/solution"]


def test_a_diagram_keeps_its_mermaid_front_matter() -> None:
    """MyST would read the front matter as the directive's options and lose the quotes of a title with ': '."""
    source = '---\ntitle: "order 5: refused"\n---\nsequenceDiagram\n    a->>b: hi'
    block = build_site.mermaid_markdown(source + "\n")
    assert block.startswith("```{mermaid}\n:alt: ")
    assert source in block and block.endswith("\n```")
    assert build_site.mermaid_markdown("flowchart LR\n a-->b") == "```{mermaid}\nflowchart LR\n a-->b\n```"


def test_sphinx_runs_where_a_fetch_fails() -> None:
    """The build step gets every proxy pointed at a closed local port: anything it tried to download would fail it."""
    fetch = "import urllib.request; urllib.request.urlopen('http://example.org/', timeout=5)"
    env = build_site._offline(os.environ)
    result = subprocess.run([sys.executable, "-c", fetch], env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "refused" in result.stderr, result.stderr[-500:]


# -- the link checker tells a broken site from a good one ----------------------------------------------------------
def test_the_link_checker_finds_broken_links_missing_anchors_and_resources_from_other_hosts(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1 id="top">t</h1><a href="sub/page.html#here">ok</a><a href="#top">self</a>'
        '<a href="sub/page.html#gone">missing anchor</a><a href="nowhere.html">missing page</a>'
        '<a href="https://docs.aws.amazon.com/x.html">external</a><img src="sub/plot.png">'
        '<script src="https://cdn.example.org/lib.js"></script>'
    )
    (tmp_path / "sub" / "page.html").write_text('<p id="here">x</p><a href="../index.html#top">back</a>')
    (tmp_path / "sub" / "plot.png").write_bytes(b"png")
    links = check_links.check_site(tmp_path)
    assert sorted(links.broken) == sorted(
        [
            "index.html: sub/page.html#gone -> no anchor #gone in sub/page.html",
            "index.html: nowhere.html -> nowhere.html does not exist",
            "index.html: <script src> loads https://cdn.example.org/lib.js from another host",
        ]
    )
    assert list(links.external) == ["https://docs.aws.amazon.com/x.html"]
    assert "https://docs.aws.amazon.com/x.html  <- index.html" in links.report()


# -- the build ------------------------------------------------------------------------------------------------------
def _build(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("npm") is None:
        chrome.skip_or_fail("no npm to install the site's pinned scripts (Debian: apt-get install npm)")
    return subprocess.run(
        [sys.executable, "tools/site/build_site.py", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def site() -> Path:
    """`make site`, once per test run, shared by the xdist workers.

    The tests that need it carry one xdist_group, but under pytest 9.2 pytest-xdist 3.8's loadgroup groups nothing
    (pytest-xdist issue 1386): both workers may ask for the site. The first builds it and stamps the run's id beside
    it; the other waits on the lock and reuses it, rather than replacing the pages the first is reading.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    stamp = ROOT / "build" / "site-test-run"
    with build_site.exclusive(ROOT / "build" / "site-test.lock"):
        if not (stamp.exists() and stamp.read_text() == run and (SITE / "index.html").exists()):
            stamp.unlink(missing_ok=True)
            result = _build()
            assert result.returncode == 0, f"make site failed:\n{result.stdout}\n{result.stderr}"
            stamp.write_text(run)
    return SITE


class _Text(HTMLParser):
    """A page's visible text (scripts and styles left out), for checks that need no browser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text())
    return " ".join("".join(parser.chunks).split())


def _prev_next(path: Path) -> list[str]:
    """The links of the page's previous/next block (a plain div of paragraphs; see build_site.prev_next)."""
    block = re.search(r'<div class="workbook-prevnext[^"]*">(.*?)</div>', path.read_text(), flags=re.S)
    assert block, f"{path.name} has no previous/next block"
    return re.findall(r'href="([^"#]*)', block.group(1))


def test_a_warning_fails_the_build(tmp_path: Path) -> None:
    """The build's -W at work on a one-page site: a clean page builds, a link to nowhere stops it."""
    (tmp_path / "src" / "_static").mkdir(parents=True)
    (tmp_path / "src" / "index.md").write_text("# A page\n\nNothing wrong here.\n")
    build_site.sphinx(tmp_path, tmp_path / "ok", jobs="1")
    assert (tmp_path / "ok" / "index.html").exists()
    (tmp_path / "src" / "index.md").write_text("# A page\n\nA [link](nowhere.md) to nowhere.\n")
    with pytest.raises(build_site.SiteError, match="warnings or errors"):
        build_site.sphinx(tmp_path, tmp_path / "broken", jobs="1")
    assert not (tmp_path / "broken").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("site")
def test_make_site_builds_with_no_warning_and_every_internal_link_resolves(site: Path) -> None:
    report = json.loads((ROOT / "build" / "site-build.json").read_text())
    assert report["pages"] == len(build_site.course_pages())
    links = check_links.check_site(site)
    assert links.broken == []
    assert links.internal > 500, "the checker saw too few links to have checked the site"
    listed = (ROOT / "build" / "site-links.txt").read_text()
    assert "0 broken" in listed and "https://docs.aws.amazon.com/" in listed, listed[:500]
    assert (site / "index.html").exists() and (site / "running.html").exists() and (site / "fidelity.html").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("site")
def test_every_page_says_how_to_run_it_live_and_links_the_steps_around_it(site: Path) -> None:
    pages = build_site.course_pages()
    for i, page in enumerate(pages):
        html_file = site / f"{page.doc}.html"
        assert html_file.exists(), f"{page.repo_path} has no page"
        text = _text(html_file)
        assert "make lab" in text and page.repo_path in text, f"{page.doc}: no 'run it live' note"
        here = Path(page.doc).parent
        expected = [os.path.relpath(pages[i - 1].doc + ".html" if i else "index.html", here)]
        if i + 1 < len(pages):
            expected.append(os.path.relpath(pages[i + 1].doc + ".html", here))
        assert _prev_next(html_file) == expected, f"{page.doc}: previous/next links, expected {expected}"
        if page.kind == "lab":
            assert page.lab is not None
            assert f"{page.lab.minutes} minutes" in text and f"follows notebook {page.number}" in text


@pytest.mark.slow
@pytest.mark.xdist_group("site")
def test_the_public_site_carries_no_solution(site: Path) -> None:
    assert not [p for p in site.rglob("*") if "solution" in p.name], "a solution file is in the public site"
    for folder in sorted({p.parent for p in (ROOT / "labs").glob("*/solution.ipynb")}):
        # The lab's own page (a chapter may well share a line with a solution: it teaches the same library).
        text = _text(site / "labs" / folder.name / "starter.html")
        starter = {
            line.strip() for c in nbformat.read(folder / "starter.ipynb", 4).cells for line in c.source.splitlines()
        }
        only_in_solution = {
            line.strip()
            for c in nbformat.read(folder / "solution.ipynb", 4).cells
            if c.cell_type == "code"
            for line in c.source.splitlines()
            if len(line.strip()) > 25 and line.strip() not in starter
        }
        assert only_in_solution, f"{folder.name}: the solution has no line of its own to look for"
        leaked = [line for line in only_in_solution if " ".join(line.split()) in text]
        assert not leaked, f"{folder.name}: solution code on the public site: {leaked[:3]}"


@pytest.mark.slow
@pytest.mark.xdist_group("site")
def test_the_instructor_build_adds_each_solution_after_its_starter(site: Path) -> None:
    result = _build("--instructor")
    assert result.returncode == 0, f"make site INSTRUCTOR=1 failed:\n{result.stdout}\n{result.stderr}"
    instructor = build_site.output_dir(instructor=True)
    for page in (p for p in build_site.course_pages(instructor=True) if p.kind == "solution"):
        assert "Instructor build" in _text(instructor / f"{page.doc}.html"), page.doc
    assert "Instructor build" in _text(instructor / "index.html")


# -- in a browser ----------------------------------------------------------------------------------------------------
def _mermaid_count(nb: nbformat.NotebookNode) -> int:
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            count += len(re.findall(r"^```mermaid\s*$", cell.source, flags=re.M))
        else:
            count += sum(build_site.MERMAID in o.get("data", {}) for o in cell.get("outputs", []))
    return count


def _has_output(nb: nbformat.NotebookNode, mime: str, needle: str = "") -> bool:
    return any(
        mime in o.get("data", {}) and needle in str(o["data"][mime])
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


@functools.cache
def _showcase() -> build_site.Page:
    """The first chapter whose stored outputs have a Mermaid diagram, an HTML table and a plot."""
    for page in build_site.course_pages():
        nb = nbformat.read(page.source, as_version=4)
        if (
            page.kind == "chapter"
            and _mermaid_count(nb)
            and _has_output(nb, "text/html", "<table")
            and _has_output(nb, "image/png")
        ):
            return page
    raise AssertionError("no chapter has a diagram, a table and a plot: nothing to show the browser test")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """A static server on 127.0.0.1, as a static host would serve the site."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    for started in chrome.playwright():
        yield from chrome.chromium(started)


class Visit:
    """One browser tab that records every request leaving the local server, and every failed one."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.elsewhere: list[str] = []
        self.failed: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.on("requestfailed", self._failed)
        self.page.on("response", lambda r: self.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else 0)

    def _failed(self, request: Any) -> None:
        # Leaving a page cancels what it was still loading (Mermaid fetches diagram modules lazily): Chromium reports
        # net::ERR_ABORTED for those, which says nothing about the site. A missing file is an HTTP 404 (see above).
        if "ERR_ABORTED" not in str(request.failure):
            self.failed.append(f"{request.url}: {request.failure}")

    def _only_local(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc != urlsplit(self.base).netloc:
            self.elsewhere.append(url)
            route.abort()  # recorded, and never sent: the test machine has no network anyway
        else:
            route.continue_()

    def open(self, doc: str) -> None:
        self.page.goto(f"{self.base}/{doc}")
        self.page.wait_for_load_state("networkidle")

    def shot(self, name: str, element: Any = None) -> None:
        chrome.SHOTS.mkdir(parents=True, exist_ok=True)
        if element is not None:
            element.scroll_into_view_if_needed()
        self.page.screenshot(path=str(chrome.SHOTS / f"site-{name}.png"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(chromium: Any, server: str) -> Iterator[Visit]:
    tab = Visit(chromium, server)
    try:
        yield tab
    finally:
        tab.close()


def _wait_for_diagrams(page: Any, expected: int) -> None:
    """Every `.mermaid` block drawn: Mermaid replaces its source with an SVG (lazily for hidden ones)."""
    blocks = page.locator("pre.mermaid")
    for i in range(blocks.count()):
        blocks.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "n => document.querySelectorAll('pre.mermaid > svg').length >= n", arg=expected, timeout=30_000
    )
    assert page.locator("pre.mermaid").count() == expected
    assert page.locator("pre.mermaid > svg").count() == expected
    errors = page.locator("pre.mermaid svg[aria-roledescription='error']")
    assert errors.count() == 0, "Mermaid drew its error diagram: " + errors.first.inner_text()[:300]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.xdist_group("site")
def test_the_front_page_shows_the_course_map(visit: Visit) -> None:
    visit.open("index.html")
    table = visit.page.locator("#course-map table")
    table.wait_for()
    for page in build_site.course_pages():
        link = table.locator(f"a[href='{page.doc}.html']")
        assert link.count() == 1, f"the course map does not link {page.doc}"
        assert page.title.split("`")[0].strip() in link.inner_text()
    for chapter in build_site.course.CURRICULUM:
        assert table.locator("td", has_text=re.compile(rf"^{chapter.number}$")).count() == 1
    visit.shot("front-page-course-map", table)
    assert visit.elsewhere == [] and visit.failed == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.xdist_group("site")
def test_a_chapter_draws_its_mermaid_diagrams_as_svg_with_its_tables_and_plots(visit: Visit) -> None:
    page = _showcase()
    nb = nbformat.read(page.source, as_version=4)
    visit.open(f"{page.doc}.html")
    _wait_for_diagrams(visit.page, _mermaid_count(nb))
    tables = visit.page.locator(".cell_output table")
    assert tables.count() >= 1 and tables.first.is_visible()
    plots = visit.page.locator(".cell_output img")
    assert plots.count() == sum(
        "image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    plots.first.scroll_into_view_if_needed()
    assert plots.first.evaluate("img => img.complete && img.naturalWidth > 100")
    visit.shot("chapter-diagram", visit.page.locator("pre.mermaid > svg").first)
    visit.shot("chapter-table", tables.first)
    visit.shot("chapter-plot", plots.first)
    assert visit.elsewhere == [] and visit.failed == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.xdist_group("site")
def test_the_next_link_leads_to_the_next_chapter(visit: Visit) -> None:
    pages = build_site.course_pages()
    page = _showcase()
    after = pages[pages.index(page) + 1]
    visit.open(f"{page.doc}.html")
    visit.page.locator(".workbook-prevnext p", has_text="Next:").locator("a").click()
    visit.page.wait_for_url(f"**/{after.doc}.html")
    heading = visit.page.locator("h1").first.inner_text()
    assert heading.startswith(after.number if after.kind == "chapter" else "Lab"), heading
    visit.page.go_back()
    visit.page.wait_for_url(f"**/{page.doc}.html")
    footer = visit.page.locator("a.right-next")  # the theme's own "next" at the end of the page
    footer.scroll_into_view_if_needed()
    footer.click()
    visit.page.wait_for_url(f"**/{after.doc}.html")
    visit.shot("next-chapter")
    assert visit.elsewhere == [] and visit.failed == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.xdist_group("site")
def test_widgets_show_their_stored_state_and_say_they_are_interactive_in_the_workbook(visit: Visit) -> None:
    page = next(p for p in build_site.course_pages() if nbformat.read(p.source, as_version=4).metadata.get("widgets"))
    visit.open(f"{page.doc}.html")
    widget = visit.page.locator(".jupyter-widgets.widget-slider, .jupyter-widgets.widget-dropdown").first
    widget.wait_for(timeout=30_000)
    assert widget.is_visible()
    note = visit.page.locator(".workbook-widget-note").first
    assert "interactive in the workbook" in note.inner_text()
    visit.shot("widgets-stored-state", widget)
    assert visit.elsewhere == [] and visit.failed == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.xdist_group("site")
def test_no_page_requests_another_host_and_every_diagram_and_formula_renders(visit: Visit, site: Path) -> None:
    docs = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    docs = [d for d in docs if not d.startswith("_static/")]  # the theme's Jinja macro files are not pages
    assert len(docs) > len(build_site.course_pages())
    for doc in docs:
        visit.open(doc)
        diagrams = visit.page.locator("pre.mermaid").count()
        if diagrams:
            _wait_for_diagrams(visit.page, diagrams)
        if visit.page.locator(".math").count():
            visit.page.wait_for_selector("mjx-container", timeout=30_000)
        assert visit.elsewhere == [], f"{doc} requested another host: {visit.elsewhere[:5]}"
        assert visit.failed == [], f"{doc}: failed requests {visit.failed[:5]}"
    visit.shot("every-page-local-only")


def test_the_publish_workflow_builds_with_make_site_and_publishes_only_the_public_build() -> None:
    """It cannot run here (no GitHub Actions); this holds it to `make site` and build/site, never the solutions."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "site.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    steps = workflow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "make site" for step in steps)
    uploads = [step for step in steps if str(step.get("uses", "")).startswith("actions/upload-pages-artifact")]
    assert [step["with"]["path"] for step in uploads] == [build_site.output_dir().relative_to(ROOT).as_posix()]
    assert not any("instructor" in str(step.get("run", "")).lower() for step in steps)
