"""Sphinx configuration of the course site (``make site``; ``tools/site/build_site.py`` passes ``-c tools/site``).

The source tree is generated under ``build/site-work/<build>/src`` from the stored notebooks, the labs' starters and
the course catalogue; nothing here is executed or fetched. Every script the pages load is copied into ``_static/npm``
from the npm packages pinned in ``tools/site/package-lock.json``: no CDN at view time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

project = "Event-driven architecture and idempotency"
author = "the workbook's authors"
copyright = "the workbook's authors"
html_title = "EDA and idempotency: the workbook"

extensions = ["myst_nb", "sphinxcontrib.mermaid"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_static"]

# The stored outputs are the ones CI checked with nbval: shown as they are, never re-executed.
nb_execution_mode = "off"
# Text/markdown outputs (the course map, Mermaid diagrams helpers.instruments.viz shows) go through MyST, so their
# tables, links and ```mermaid fences render as in JupyterLab.
nb_render_markdown_format = "myst"
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_fence_as_directive = ["mermaid"]
myst_heading_anchors = 3

# Widgets: their stored state is drawn by the html-manager of ipywidgets 8, served from this site (myst-nb's default
# loads require.js and the manager from two CDNs). Each widget also says it is interactive only in the workbook.
nb_ipywidgets_js: dict[str, dict[str, str]] = {"npm/widgets/embed.js": {}}

# Mermaid 11 as an ES module from this site (the version JupyterLab 4.6 bundles, so diagrams look as in the workbook).
mermaid_use_local = "npm/mermaid/mermaid.esm.min.mjs"
mermaid_fullscreen = True
mermaid_fullscreen_button = "⤢"  # the default (U+26F6) is missing from common fonts
# MathJax 3 from this site (JupyterLab 4.6 renders $...$ with MathJax 3 too).
mathjax_path = "npm/mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_theme_options: dict[str, Any] = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "navigation_with_keys": False,
}
# Outputs were made for a light page (pandas tables, matplotlib on white), as in JupyterLab's default theme; the reader
# can switch. Without a default, the theme logs an error on a first visit.
html_context = {"default_mode": "light"}
html_css_files = ["site.css"]
html_favicon = str(HERE / "static" / "favicon.svg")  # else browsers ask for /favicon.ico and get a 404
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt: str | None = None
# A static site with no search server: Sphinx's client-side search index is a local file.
html_search_language = "en"


def _static_paths(app: Any, config: Any) -> None:
    """The generated tree's _static (the pinned npm scripts) and this folder's static (the site's CSS)."""
    config.html_static_path = [str(Path(app.srcdir) / "_static"), str(HERE / "static")]


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _static_paths)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
