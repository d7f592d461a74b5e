"""The lab notebooks match their one source (tools/labgen.py), store what nbval needs, and the catalogue matches."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.labs.harness import LABS as BY_TOPIC
from tests.labs.harness import ROOT, labgen, learner_cell

LABS = labgen.lab_dirs()


def test_the_labs_are_numbered_in_course_order() -> None:
    from helpers.course import CURRICULUM
    from helpers.course import LABS as CATALOGUE

    order = [c.number for c in CURRICULUM]
    follows = [order.index(lab.follows) for lab in CATALOGUE]
    assert follows == sorted(follows), "the labs' numbers must follow the notebooks they come after"
    assert [lab.number for lab in CATALOGUE] == [f"{n:02d}" for n in range(1, len(CATALOGUE) + 1)]
    assert sorted(BY_TOPIC.values()) == LABS


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_committed_notebooks_match_their_source(lab: Path) -> None:
    assert labgen.drift(lab) == []


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_starter_stores_the_check_error_and_solution_passes(lab: Path) -> None:
    """nbval can only prove "fails for the stated reason" if the starter stores that error (and the solution none)."""
    for variant in labgen.VARIANTS:
        nb = nbformat.read(lab / f"{variant}.ipynb", as_version=4)
        checks = [c for c in nb.cells if labgen.CHECK_TAG in c.metadata.get("tags", [])]
        assert checks, f"{lab.name}/{variant}: no check cell"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.execution_count is not None, f"{lab.name}/{variant}: not executed (labgen --execute)"
        errors = [o for c in checks for o in c.outputs if o.output_type == "error"]
        if variant == "starter":
            assert all(labgen.RAISES in c.metadata["tags"] for c in checks)
            assert [e.ename for e in errors] == ["LabCheckFailed"] * len(checks)
            assert all("expectations missed. Fix first:" in e.evalue for e in errors)
        else:
            assert not errors and all(labgen.RAISES not in c.metadata["tags"] for c in checks)


@pytest.mark.parametrize("topic", list(BY_TOPIC))
def test_each_lab_imports_its_check_explicitly_and_has_one_learner_cell(topic: str) -> None:
    text = (BY_TOPIC[topic] / labgen.SOURCE).read_text()
    assert f"from helpers.labs.{topic} import check_" in text
    assert "from helpers.labs import" not in text
    learner_cell(topic)  # exactly one cell differs between starter and solution


def test_marked_blocks_are_cut_per_variant(tmp_path: Path) -> None:
    source = tmp_path / "lab.md"
    source.write_text(
        "# T\n\n<!-- starter -->\nstarter only\n<!-- end -->\n+++\nshared\n\n"
        "```python\nx = 1\n# [solution]\ny = 2\n# [starter]\ny = None  # TODO\n# [end]\n```\n\n"
        "```python check\nassert y == 2\n```\n\n```python solution\nprint('answers')\n```\n"
    )
    starter, solution = (labgen.build(source, v) for v in labgen.VARIANTS)
    assert [c.source for c in starter.cells] == [
        "# T\n\nstarter only",
        "shared",
        "x = 1\ny = None  # TODO",
        "assert y == 2",
    ]
    assert [c.source for c in solution.cells] == ["# T", "shared", "x = 1\ny = 2", "assert y == 2", "print('answers')"]
    assert starter.cells[3].metadata["tags"] == ["lab-check", "raises-exception"]
    assert solution.cells[3].metadata["tags"] == ["lab-check"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```python\n# [solution]\nx = 1\n```\n", "never closed with [end]"),
        ("```python\n# [end]\n```\n", "[end] without [solution]"),
        ("```python\nx = 1\n", "code block never closed"),
        ("```python\nx = 1\n```\n", "needs at least one ```python check cell"),
        ("```python tests\nx = 1\n```\n", "unknown cell kind"),
    ],
)
def test_malformed_sources_are_refused_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "lab.md"
    source.write_text(text)
    with pytest.raises(labgen.LabSourceError, match=message.replace("[", r"\[").replace("(", r"\(")):
        labgen.build(source, "solution")


def test_the_catalogue_matches_the_labs() -> None:
    from helpers.course import LABS as CATALOGUE

    assert [ROOT / "labs" / lab.folder for lab in CATALOGUE] == LABS
    index = (ROOT / "labs" / "README.md").read_text()
    for lab in CATALOGUE:
        text = (ROOT / "labs" / lab.folder / labgen.SOURCE).read_text()
        assert text.startswith(f"# Lab {lab.number} · {lab.title}\n")
        assert f'setup("lab{lab.number}")' in text, f"{lab.folder}: its resources are named lab{lab.number}-*"
        assert f"**Time to complete.** {lab.minutes.replace('-', ' to ')} minutes." in text
        assert f"**Follows.** Notebook {lab.follows}," in text
        for part in ("**Goal.**", "## Hints", "Hint 1", "Hint 2", "Hint 3", "## Read next", "## Cleanup"):
            assert part in text, f"{lab.folder}: no {part}"
        readme = (ROOT / "labs" / lab.folder / "README.md").read_text()
        assert readme.startswith(f"# Lab {lab.number} · {lab.title}\n")
        assert f"labs/{lab.folder}`" in readme
        row = f"[{lab.number} · {lab.title}]({lab.folder}/starter.ipynb) | {lab.follows}"
        assert row in index and f"| {lab.minutes} min |" in index, f"labs/README.md: no row for {lab.folder}"


def test_no_reference_to_an_old_lab_folder_is_left() -> None:
    """The folders were renumbered into course order: every link uses the new names."""
    from helpers.course import LABS as CATALOGUE

    current = {lab.folder for lab in CATALOGUE}
    stems = {folder[3:] for folder in current}
    pattern_paths = [ROOT / "README.md", ROOT / "labs" / "README.md", *ROOT.glob("notebooks/*.ipynb")]
    pattern_paths += [*ROOT.glob("labs/*/*.md"), *ROOT.glob("helpers/**/*.py"), *ROOT.glob("tools/*.py")]
    for path in pattern_paths:
        text = path.read_text()
        for stem in stems:
            for n in range(1, 10):
                folder = f"{n:02d}_{stem}"
                if folder not in current:
                    assert folder not in text, f"{path.relative_to(ROOT)} still names {folder}"
