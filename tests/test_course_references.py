"""Notebook prose names only notebooks and labs the course map knows (existing, or planned in helpers/course.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import course

NOTEBOOKS = sorted((course.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_NUMBER_LIST = r"\d{2}(?:\s*(?:,|and|or|/|to|-)\s*\d{2})*"
_PATTERNS = (
    re.compile(rf"\bnotebooks?\s+({_NUMBER_LIST})\b", re.I),  # "notebook 07", "notebooks 06 and 07"
    re.compile(r"\*\*(\d{2}) ·"),  # "Next: **09 · The idempotent consumer**"
    re.compile(rf"\bpart one\s*\(({_NUMBER_LIST})\)", re.I),
)
_PREREQUISITES = re.compile(r"\*\*Prerequisites:\*\*(.*?)(?:\*\*Time|\n\n|$)", re.S)
_LINK = re.compile(r"\]\((?:\.\./notebooks/|notebooks/)?(\d{2}_[A-Za-z0-9_]+)\.ipynb\)")
_LAB = re.compile(r"\blabs/([A-Za-z0-9_-]+)")


def references(text: str) -> tuple[set[str], set[str], set[str]]:
    """(chapter numbers, notebook stems, lab slugs) that a piece of prose names."""
    numbers: set[str] = set()
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            numbers.update(re.findall(r"\d{2}", match.group(1)))
    for match in _PREREQUISITES.finditer(text):
        numbers.update(re.findall(r"\b(\d{2})\b", match.group(1)))
    return numbers, set(_LINK.findall(text)), set(_LAB.findall(text))


def unknown(text: str) -> list[str]:
    """What the prose names that neither exists nor is planned in the course map."""
    numbers, stems, slugs = references(text)
    known_stems = {c.stem for c in course.CURRICULUM}
    known_labs = {lab.folder for lab in course.LABS}
    problems = [f"notebook {n}" for n in sorted(numbers) if course.chapter(n) is None]
    problems += [f"link to {s}.ipynb" for s in sorted(stems - known_stems)]
    problems += [f"labs/{s}" for s in sorted(slugs - known_labs)]
    return problems


def prose(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_names_only_known_notebooks_and_labs(path: Path) -> None:
    assert not unknown(prose(path)), f"{path.name} names what the course map (helpers/course.py) does not know"


def test_every_notebook_on_disk_is_in_the_course_map() -> None:
    stems = {c.stem for c in course.CURRICULUM}
    assert {p.stem for p in NOTEBOOKS} <= stems


def test_the_check_catches_an_unknown_notebook_or_lab() -> None:
    text = (
        "See notebooks 07 and 13. Next: **14 · Sagas**. **Prerequisites:** 05 (workflows), 15.\n\n"
        "Open [the sagas](16_sagas.ipynb) and `labs/no_such_lab/`; part one (01-03) is planned."
    )
    assert unknown(text) == ["notebook 13", "notebook 14", "notebook 15", "link to 16_sagas.ipynb", "labs/no_such_lab"]


def test_planned_chapters_and_labs_are_accepted() -> None:
    planned = [c for c in course.CURRICULUM if not course.notebook_path(c).exists()]
    text = (
        " ".join(f"notebook {c.number}" for c in planned) + " " + " ".join(f"labs/{lab.folder}" for lab in course.LABS)
    )
    assert unknown(text) == []
    rows = {r["#"]: r["status"] for r in course.map_rows()}
    assert all(rows[c.number] == "planned" for c in planned)


# Notebooks that teach no AWS service behaviour (00 is about the lab itself).
NO_AWS_BEHAVIOUR = {"00_welcome"}


def further_reading(text: str) -> str:
    """The further-reading part of a notebook's prose (from its heading to the next 'Next:' line)."""
    match = re.search(r"\*\*Further reading[^\n]*?\*\*(.*?)(?:\nNext:|\Z)", text, re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem not in NO_AWS_BEHAVIOUR], ids=lambda p: p.stem)
def test_further_reading_links_aws_documentation(path: Path) -> None:
    reading = further_reading(prose(path))
    assert reading, f"{path.name} has no **Further reading** section"
    assert "https://docs.aws.amazon.com/" in reading, f"{path.name}'s further reading cites no AWS documentation page"
