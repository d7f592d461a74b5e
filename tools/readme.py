"""Regenerate the README's generated sections (course map, fidelity table, layout); `--check` fails when stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import layout

from helpers import course
from helpers.aws import capabilities

README = Path(__file__).resolve().parent.parent / "README.md"


def sections() -> dict[str, str]:
    return {
        "course-map": course.map_markdown("notebooks/"),
        "fidelity-table": capabilities.markdown_table(),
        "layout": layout.markdown(),
    }


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)

        def between_markers(m: re.Match[str], body: str = body) -> str:
            return m.group(1) + body + m.group(2)

        text = pattern.sub(between_markers, text)
    return text


def main(argv: list[str]) -> int:
    current = README.read_text()
    fresh = render(current)
    if "--check" in argv:
        if fresh != current:
            print("README.md's generated sections are stale: run `make readme`")
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
