"""Check a built static site offline: every internal link and anchor resolves, no page loads from another host.

Internal links (relative URLs in ``href`` / ``src``) must name a file of the site, and a ``#fragment`` an element
``id`` (or ``<a name>``) of the page it points to. External links are collected for a report and never fetched (the
build runs offline). A page that would *load* something from another host (a script, a stylesheet, an image, a font
via ``<link>``) is an error: the site must read offline and must not tell a third party who reads it.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Attributes that only navigate; every other URL attribute loads something into the page.
NAVIGATE = {("a", "href"), ("area", "href")}
URL_ATTRIBUTES = {"href", "src", "poster", "data"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value))
            elif name == "srcset":
                self.urls += [(tag, name, part.strip().split(" ")[0]) for part in value.split(",") if part.strip()]


@dataclass
class Links:
    pages: int = 0
    internal: int = 0
    broken: list[str] = field(default_factory=list)
    external: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # url -> pages linking it

    def report(self) -> str:
        lines = [
            f"Course site link report: {self.pages} pages, {self.internal} internal links and anchors checked, "
            f"{len(self.broken)} broken.",
            f"External links ({len(self.external)}), listed and not fetched (the build is offline):",
        ]
        for url in sorted(self.external):
            pages = sorted(self.external[url])
            more = f" (+{len(pages) - 3} more)" if len(pages) > 3 else ""
            lines.append(f"  {url}  <- {', '.join(pages[:3])}{more}")
        if self.broken:
            lines += ["Broken:", *(f"  {b}" for b in self.broken)]
        return "\n".join(lines) + "\n"


def _parse(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(errors="replace"))
    parser.close()
    return parser


def check_site(root: Path) -> Links:
    """Every page (.html outside _static) under ``root``: its links resolved against the files and the target's ids."""
    # The theme's Jinja macro files under _static/ end in .html too: assets, not pages.
    pages = {
        p.relative_to(root).as_posix(): _parse(p)
        for p in sorted(root.rglob("*.html"))
        if p.relative_to(root).parts[0] != "_static"
    }
    links = Links(pages=len(pages))
    for name, page in pages.items():
        for tag, attribute, url in page.urls:
            parts = urlsplit(url)
            if parts.scheme in ("mailto", "javascript", "data", "tel"):
                continue
            if parts.scheme or parts.netloc:
                if (tag, attribute) in NAVIGATE:
                    links.external[url].add(name)
                else:
                    links.broken.append(f"{name}: <{tag} {attribute}> loads {url} from another host")
                continue
            links.internal += 1
            if parts.path.startswith("/"):
                links.broken.append(f"{name}: {url} is absolute: it breaks when the site is not at a host's root")
                continue
            target = name  # a bare #fragment points into the page itself
            if parts.path:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), unquote(parts.path)))
            if target.startswith("../"):
                links.broken.append(f"{name}: {url} points outside the site")
                continue
            if (root / target).is_dir():
                target = posixpath.join(target, "index.html")
            if not (root / target).is_file():
                links.broken.append(f"{name}: {url} -> {target} does not exist")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.endswith(".html"):
                ids = pages[target].ids if target in pages else set()
                if fragment not in ids:
                    links.broken.append(f"{name}: {url} -> no anchor #{fragment} in {target}")
    return links
