"""Build the course as a static website (``make site``): ``build/site/`` from the stored notebooks, nothing re-run.

Why a generated source tree: the site mirrors the repository (``notebooks/NN_x.ipynb``, ``labs/<lab>/starter.ipynb``) so
that links written for the repository (notebook 00's course map) work on the site too, and each page gets what only
the site needs: where to run it live, the previous and next step of the course, a note on widgets, a lab's time and
what it follows. That tree goes to ``build/site-work/`` (never committed), and Sphinx (myst-nb, sphinx-book-theme,
sphinxcontrib-mermaid; ``tools/site/conf.py``) renders it with warnings as errors. Then every internal link and anchor
of the built site is checked (``check_links.py``) and the external ones are listed in ``build/site-links.txt``.

The pages come from the course catalogue (``helpers.course``: order, titles, the notebook each lab follows) and the
files that exist: a notebook or lab on disk that the catalogue does not know stops the build, so the site cannot
silently leave one out. Solutions are never part of the site; ``--instructor`` builds ``build/site-instructor/`` with
each lab's solution after its starter (for an instructor's own machine, not for publishing).

The browser scripts (Mermaid, MathJax, the ipywidgets html-manager) come from npm packages pinned in
``tools/site/package-lock.json``, installed with ``npm ci`` into ``build/site-npm/`` once and copied into the site.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import check_links  # noqa: E402

# The one place the site reads the course's own modules: the catalogue (order, titles, labs) and the fidelity table.
from helpers import course  # noqa: E402
from helpers.aws import capabilities  # noqa: E402

BUILD = ROOT / "build"
NPM = BUILD / "site-npm"
BUDGET_S = 60

# What the README says that a reader of the site needs: its introduction, and these sections (by heading prefix).
README_SECTIONS = ("Two commands", "Backends", "Classroom", "Troubleshooting")

# npm package -> files of it the pages load (globs relative to the package), copied to _static/npm/<name>/.
VENDOR: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "mermaid": ("mermaid", "dist", ("mermaid.esm.min.mjs", "chunks/mermaid.esm.min/*.mjs")),
    "mathjax": ("mathjax", "es5", ("tex-chtml.js", "output/chtml/fonts/woff-v2/*", "input/tex/extensions/**/*.js")),
    "widgets": (
        "@jupyter-widgets/html-manager",
        "dist",
        ("embed.js", "*.woff2", "*.woff", "*.ttf", "*.eot", "*.svg", "embed.js.LICENSE.txt"),
    ),
}


class SiteError(Exception):
    """The site cannot be built as asked; the message says what to fix."""


@dataclass(frozen=True)
class Page:
    """One page of the course, in course order."""

    doc: str  # the page's path in the site without suffix, mirroring the repository: notebooks/03_event_bus_routing
    source: Path  # the stored notebook it is rendered from
    title: str  # as the course map names it
    kind: str  # "chapter", "lab" or "solution"
    number: str  # the chapter's number, or the number of the chapter a lab follows
    lab: course.Lab | None = None

    @property
    def repo_path(self) -> str:
        """Where the page's notebook is in the repository (the site mirrors it)."""
        return f"{self.doc}.ipynb"

    @property
    def label(self) -> str:
        if self.kind == "chapter":
            return f"{self.number} · {self.title}"
        return f"Lab: {self.title}" + (" (solution)" if self.kind == "solution" else "")


# -- what the site contains ---------------------------------------------------------------------------------------
def course_pages(instructor: bool = False, root: Path = ROOT) -> list[Page]:
    """Every chapter and lab that exists under ``root``, in the course map's order; a lab after the chapter it follows.

    A catalogue entry without its file is planned (the course map says so); a file without a catalogue entry is an
    error, so that the site never leaves out a notebook or lab silently.
    """
    known = {c.stem for c in course.CURRICULUM}
    unknown = sorted(f"notebooks/{p.name}" for p in (root / "notebooks").glob("*.ipynb") if p.stem not in known)
    lab_dirs = {p.parent.name for pattern in ("*/lab.md", "*/starter.ipynb") for p in (root / "labs").glob(pattern)}
    unknown += sorted(f"labs/{d}" for d in lab_dirs - {lab.folder for lab in course.LABS})
    if unknown:
        raise SiteError(
            f"not in the course catalogue (helpers/course.py), so the site would leave them out: {', '.join(unknown)}. "
            "Add them to CURRICULUM or LABS."
        )
    numbers = {c.number for c in course.CURRICULUM}
    orphans = [lab.folder for lab in course.LABS if lab.follows not in numbers]
    if orphans:
        raise SiteError(f"labs that follow a notebook the catalogue does not have: {', '.join(orphans)}")
    pages: list[Page] = []
    for chapter in course.CURRICULUM:
        path = root / "notebooks" / f"{chapter.stem}.ipynb"
        if path.exists():
            pages.append(Page(f"notebooks/{chapter.stem}", path, chapter.title, "chapter", chapter.number))
        for lab in (lab for lab in course.LABS if lab.follows == chapter.number):
            folder = root / "labs" / lab.folder
            starter, solution = folder / "starter.ipynb", folder / "solution.ipynb"
            if not starter.exists():
                if folder.exists():
                    raise SiteError(f"labs/{lab.folder} has no starter.ipynb: run `make labs`")
                continue  # planned: the course map says so
            pages.append(Page(f"labs/{lab.folder}/starter", starter, lab.title, "lab", lab.follows, lab))
            if instructor:
                if not solution.exists():
                    raise SiteError(f"labs/{lab.folder} has no solution.ipynb: run `make labs`")
                pages.append(Page(f"labs/{lab.folder}/solution", solution, lab.title, "solution", lab.follows, lab))
    return pages


def _rel(from_doc: str, to_doc: str, suffix: str = ".ipynb") -> str:
    """A link from one page to another, as MyST resolves it: relative to the linking page's folder."""
    return os.path.relpath(to_doc + suffix, os.path.dirname(from_doc) or ".")


def _md_escape(text: str) -> str:
    """Keep text literal in MyST outside code spans: a `<var>` in a table cell is text, not an HTML element."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;") for p in parts)


# -- the banners each page gets ------------------------------------------------------------------------------------
def live_banner(page: Page, pages: list[Page]) -> str:
    """Where to run this page live, and for a lab how long it takes and what it follows."""
    if page.kind == "chapter":
        text = (
            f"This page is `{page.repo_path}` with the outputs stored in the repository (the ones CI checks); "
            f"nothing was re-run to build it. To run it live on your machine: clone the repository, run `make lab` "
            f"(JupyterLab and an emulated AWS, no account needed), and open `{page.repo_path}`."
        )
        return f":::{{admonition}} Run it live\n:class: tip workbook-live\n{text}\n:::\n"
    assert page.lab is not None
    chapter = course.chapter(page.number)
    chapter_page = next((p for p in pages if p.kind == "chapter" and p.number == page.number), None)
    after = f"{page.number} · {chapter.title}" if chapter else page.number
    if chapter_page:
        after = f"[{after}]({_rel(page.doc, chapter_page.doc)})"
    title = f"Lab · {page.lab.minutes} minutes · follows notebook {page.number}"
    if page.kind == "solution":
        text = (
            f"**Instructor build.** This is the solution, `{page.repo_path}`: keep it off a public site. "
            f"It follows notebook {after}; learners take {page.lab.minutes} minutes over it."
        )
        return f":::{{admonition}} {title}\n:class: warning workbook-live workbook-lab\n{text}\n:::\n"
    text = (
        f"**Time to complete:** {page.lab.minutes} minutes (the lab's own estimate). **Follows:** notebook {after}. "
        f"**Goal:** {page.lab.goal}.\n\n"
        f"This page is the starter, `{page.repo_path}`, with its stored outputs: the check at the end fails, as it "
        f"does until you solve the lab. To do it: `make lab`, open `{page.repo_path}`, and change the code until "
        f"the check passes."
    )
    return f":::{{admonition}} {title}\n:class: note workbook-live workbook-lab\n{text}\n:::\n"


def prev_next(page: Page, pages: list[Page]) -> str:
    """Links to the previous and next step of the course (the theme's footer has them too, at the page's end)."""
    i = pages.index(page)
    if i > 0:
        back = f"← Previous: [{pages[i - 1].label}]({_rel(page.doc, pages[i - 1].doc)})"
    else:
        back = f"← [Course map]({_rel(page.doc, 'index', '.md')})"
    forward = f"Next: [{pages[i + 1].label}]({_rel(page.doc, pages[i + 1].doc)}) →" if i + 1 < len(pages) else ""
    return f":::{{container}} workbook-prevnext\n{back}\n\n{forward}\n:::\n"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# helpers.instruments.viz.Mermaid's output: JupyterLab draws it; myst-nb knows no renderer for it
MERMAID = "text/vnd.mermaid"
WIDGET_NOTE = (
    ":::{note}\n:class: workbook-widget-note\n"
    "The controls above are interactive in the workbook (`make lab`): here they show the state stored with the "
    "notebook, and moving them changes nothing.\n:::\n"
)


def mermaid_markdown(source: str) -> str:
    """A Mermaid diagram as the MyST directive that draws it.

    MyST reads a leading ``---`` block of a directive as its options, and sphinxcontrib-mermaid writes a ``title``
    option back unquoted (YAML then fails on a title with ': '): an option line first keeps Mermaid's own front
    matter (``title: ...``) part of the diagram, as JupyterLab reads it.
    """
    source = source.strip("\n")
    options = ":alt: Mermaid diagram\n" if source.startswith("---") else ""
    return f"```{{mermaid}}\n{options}{source}\n```"


Notebook = dict[str, Any]


def _text(value: str | list[str]) -> str:
    """A notebook's multiline string: stored as a list of lines or as one string (nbformat's format allows both)."""
    return value if isinstance(value, str) else "".join(value)


def _cell(source: str, cell_id: str) -> Notebook:
    """A Markdown cell the site adds, with a fixed id so that two builds write the same source."""
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source}


def page_notebook(page: Page, pages: list[Page]) -> Notebook:
    """The stored notebook with the site's cells added: banner and links under the title, a note under widgets.

    Read as JSON, not with nbformat: its import (jsonschema's format checkers) costs more CPU than this whole step,
    and myst-nb reads and validates the result anyway.
    """
    nb = json.loads(page.source.read_text())
    if nb.get("nbformat") != 4:
        raise SiteError(f"{page.repo_path}: nbformat {nb.get('nbformat')}, the site reads version 4")
    first = nb["cells"][0] if nb["cells"] else None
    if first is None or first["cell_type"] != "markdown" or not _text(first["source"]).startswith("# "):
        raise SiteError(f"{page.repo_path}: the first cell must be Markdown starting with the '# ' title")
    title, _, rest = _text(first["source"]).partition("\n")
    banner = live_banner(page, pages) + "\n" + prev_next(page, pages)
    cells = [_cell(title, "site-title"), _cell(banner, "site-live")]
    if rest.strip():
        cells.append(_cell(rest.strip("\n"), "site-intro"))
    for cell in nb["cells"][1:]:
        outputs = cell.get("outputs", [])
        for output in outputs:
            data = output.get("data", {})
            if MERMAID in data:  # drawn from its source, as JupyterLab draws it (its text/markdown is the same)
                data["text/markdown"] = mermaid_markdown(_text(data.pop(MERMAID)))
        cells.append(cell)
        if any(WIDGET_VIEW in o.get("data", {}) for o in outputs):
            cells.append(_cell(WIDGET_NOTE, f"site-widget-note-{len(cells)}"))
    nb["cells"] = cells
    return nb


# -- the pages that are not notebooks ------------------------------------------------------------------------------
def readme_parts() -> tuple[str, dict[str, str]]:
    """The README's introduction (before its first section) and its sections by heading."""
    text = (ROOT / "README.md").read_text()
    head, *sections = re.split(r"^## ", text, flags=re.M)
    intro = head.split("\n", 1)[1].strip()
    by_heading = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        by_heading[heading.strip()] = body.strip()
    return intro, by_heading


def _repo_links_as_text(markdown: str) -> str:
    """README links to repository files the site does not have become the file's name in code."""

    def replace(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        return f"{text} (`{target}` in the repository)" if f"`{target}`" != text else text

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", replace, markdown)


def course_map(pages: list[Page]) -> str:
    """The course map from the catalogue: a row per chapter, each lab after the chapter it follows."""
    by_key = {(p.kind, p.number, p.lab.folder if p.lab else ""): p for p in pages}
    lines = ["| # | chapter | what you see happen |", "|---|---|---|"]
    for chapter in course.CURRICULUM:
        page = by_key.get(("chapter", chapter.number, ""))
        name = f"[{chapter.title}]({page.doc}.ipynb)" if page else f"{chapter.title} *(planned)*"
        lines.append(f"| {chapter.number} | {name} | {_md_escape(chapter.sees)} |")
        for lab in (lab for lab in course.LABS if lab.follows == chapter.number):
            lab_page = by_key.get(("lab", chapter.number, lab.folder))
            name = f"[lab: {lab.title}]({lab_page.doc}.ipynb)" if lab_page else f"lab: {lab.title} *(planned)*"
            lines.append(f"| | {name} | {_md_escape(lab.goal)} ({lab.minutes} min) |")
    return "\n".join(lines) + "\n"


def index_page(pages: list[Page], instructor: bool) -> str:
    intro, _ = readme_parts()
    first = pages[0]
    toc = "\n".join(p.doc for p in pages)
    note = ""
    if instructor:
        note = (
            ":::{warning}\nInstructor build: each lab's solution follows its starter. Keep this build off a public "
            "host; `make site` builds the public one.\n:::\n\n"
        )
    return f"""# Event-driven architecture and idempotency: a live workbook

{note}{_repo_links_as_text(intro)}

(course-map)=
## Course map

{course_map(pages)}
Start with [{first.label}]({first.doc}.ipynb). Each lab comes after the chapter it follows; its page says how long
it takes. [What the emulators do faithfully](fidelity.md) lists where the emulated AWS differs from AWS and what the
notebooks do about it.

:::{{admonition}} Read it here, run it live
:class: tip workbook-live
Every page is a notebook of the course with the outputs stored in the repository: the ones CI executes and checks.
To run them yourself, against an AWS emulated on your machine (no AWS account, no Docker): clone the repository,
run `make lab`, and JupyterLab opens notebook 00. [How to run it](running.md) has the details.
:::

```{{toctree}}
:caption: Course
:hidden:

{toc}
```

```{{toctree}}
:caption: Reference
:hidden:

running
fidelity
```
"""


def running_page() -> str:
    _, sections = readme_parts()
    parts = ["# How to run it\n", "The course runs in JupyterLab on your machine. From the repository's README:\n"]
    for prefix in README_SECTIONS:
        heading = next((h for h in sections if h.startswith(prefix)), None)
        if heading is None:
            raise SiteError(f"README.md has no section starting '## {prefix}', which the site shows")
        parts.append(f"## {heading}\n\n{_repo_links_as_text(sections[heading])}\n")
    return "\n".join(parts)


def fidelity_page() -> str:
    return (
        "# What the emulators do faithfully\n\n"
        "Each notebook runs against an emulated AWS: moto inside the workbook by default, LocalStack 4.14 for "
        "classrooms, real AWS only when explicitly allowed. Where an emulator differs from AWS, the notebook says so "
        "in the cell and takes the fallback listed here. Generated from the same declarations the notebooks consult "
        "(`helpers/aws/capabilities.py`).\n\n" + _md_escape(capabilities.markdown_table())
    )


# -- the scripts the pages load ------------------------------------------------------------------------------------
def _npm_key() -> str:
    return hashlib.sha256(b"".join((HERE / f).read_bytes() for f in ("package.json", "package-lock.json"))).hexdigest()


def install_assets() -> float:
    """``npm ci`` of tools/site/package-lock.json into build/site-npm, once per lock; the seconds it took."""
    stamp = NPM / ".installed"
    if stamp.exists() and stamp.read_text() == _npm_key() and (NPM / "node_modules").is_dir():
        return 0.0
    npm = shutil.which("npm")
    if npm is None:
        raise SiteError("npm is needed once to install the site's pinned scripts (Debian: apt-get install npm)")
    started = time.monotonic()
    shutil.rmtree(NPM, ignore_errors=True)
    NPM.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(HERE / name, NPM / name)
    env = {
        **os.environ,
        "npm_config_cache": str(NPM / ".cache"),  # not ~/.npm
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_loglevel": "error",
    }
    print("site: installing Mermaid, MathJax and the widgets manager from tools/site/package-lock.json (npm ci)")
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=NPM, env=env, check=True)
    shutil.rmtree(NPM / ".cache", ignore_errors=True)
    stamp.write_text(_npm_key())
    return time.monotonic() - started


def copy_assets(static: Path) -> None:
    for name, (package, base, patterns) in VENDOR.items():
        root = NPM / "node_modules" / package / base
        target = static / "npm" / name
        for pattern in patterns:
            found = [p for p in root.glob(pattern) if p.is_file()]
            if not found and "*" not in pattern:
                raise SiteError(f"{package} has no {base}/{pattern}: is tools/site/package.json's version right?")
            for path in found:
                dest = target / path.relative_to(root)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
        license_file = NPM / "node_modules" / package / "LICENSE"
        if license_file.exists():
            shutil.copy2(license_file, target / "LICENSE")


# -- the build -----------------------------------------------------------------------------------------------------
def output_dir(instructor: bool = False) -> Path:
    """build/site (public), or build/site-instructor (with solutions: never published)."""
    return BUILD / ("site-instructor" if instructor else "site")


def work_dir(instructor: bool = False) -> Path:
    """Where a build keeps its generated sources, doctrees and myst-nb's image files, apart from the other build."""
    return BUILD / "site-work" / output_dir(instructor).name


def write_sources(pages: list[Page], src: Path, instructor: bool) -> None:
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for page in pages:
        out = src / f"{page.doc}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(page_notebook(page, pages), indent=1, ensure_ascii=False) + "\n")
    (src / "index.md").write_text(index_page(pages, instructor))
    (src / "running.md").write_text(running_page())
    (src / "fidelity.md").write_text(fidelity_page())
    copy_assets(src / "_static")


def _offline(env: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    """The environment with every proxy set to a closed port on 127.0.0.1: a fetch during the build fails it."""
    closed = "http://127.0.0.1:9"
    proxies = {name: closed for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy")}
    return {**{k: v for k, v in env.items() if k.lower() != "no_proxy"}, **proxies}


def _sphinx_env() -> dict[str, str]:
    """Offline, and with compiled bytecode kept under build/ (the Makefile says PYTHONDONTWRITEBYTECODE, and the venv
    has none): Sphinx, docutils, pygments and myst-nb are ~1,100 modules, whose compiling was a third of a build."""
    env = _offline(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BUILD / "site-work" / "pycache")
    return env


def sphinx(work: Path, out: Path, jobs: str) -> None:
    """Sphinx into work/html (myst-nb writes image files beside it), then moved to ``out`` when it succeeded."""
    html = work / "html"
    shutil.rmtree(html, ignore_errors=True)
    shutil.rmtree(work / "doctrees", ignore_errors=True)
    shutil.rmtree(work / "jupyter_execute", ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-j", jobs]
    command += ["-c", str(HERE), "-d", str(work / "doctrees"), str(work / "src"), str(html)]
    result = subprocess.run(command, cwd=ROOT, env=_sphinx_env(), check=False)
    if result.returncode != 0:
        raise SiteError(f"Sphinx reported warnings or errors (treated as errors), exit code {result.returncode}")
    shutil.rmtree(out, ignore_errors=True)
    html.rename(out)


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """One build at a time on this machine (two would share build/site-npm and replace each other's output)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"site: another build holds {lock.relative_to(ROOT)}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def build(instructor: bool = False, jobs: str = "auto") -> dict[str, Any]:
    """Install the scripts if needed, generate the sources, run Sphinx, check the links; write the timing."""
    with exclusive(BUILD / "site.lock"):
        return _build(instructor, jobs)


def _build(instructor: bool, jobs: str) -> dict[str, Any]:
    started = time.monotonic()
    install_s = install_assets()
    build_started = time.monotonic()
    out, work = output_dir(instructor), work_dir(instructor)
    pages = course_pages(instructor)
    write_sources(pages, work / "src", instructor)
    sphinx(work, out, jobs)
    links = check_links.check_site(out)
    links_report = out.with_name(f"{out.name}-links.txt")
    links_report.write_text(links.report())
    if links.broken:
        raise SiteError(
            f"{len(links.broken)} broken internal links or anchors (all in {links_report.relative_to(ROOT)}):\n"
            + "\n".join(f"  {b}" for b in links.broken[:40])
        )
    build_s = time.monotonic() - build_started
    result = {
        "output": out.relative_to(ROOT).as_posix(),
        "instructor": instructor,
        "pages": len(pages),
        "build_seconds": round(build_s, 1),
        "install_seconds": round(install_s, 1),
        "budget_seconds": BUDGET_S,
        "cores": os.cpu_count(),
        "external_links": len(links.external),
    }
    out.with_name(f"{out.name}-build.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = "within" if build_s <= BUDGET_S else "OVER"
    install = f"; {time.monotonic() - started:.1f} s with the one-time script install" if install_s else ""
    print(
        f"site: {len(pages)} course pages in {result['output']}/ in {build_s:.1f} s ({verdict} its {BUDGET_S} s "
        f"budget{install}); every internal link and anchor resolves; {len(links.external)} external links listed "
        f"in {links_report.relative_to(ROOT)}, not fetched"
    )
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--instructor", action="store_true", help="include each lab's solution (build/site-instructor)")
    parser.add_argument("--jobs", default="auto", help="Sphinx's -j (default: one per core)")
    args = parser.parse_args(argv)
    try:
        build(instructor=args.instructor, jobs=args.jobs)
    except SiteError as exc:
        print(f"site: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
