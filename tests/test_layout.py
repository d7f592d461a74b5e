"""tools/layout.py: the README's layout comes from each folder's own description, and a silent folder is an error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import layout


def test_first_sentence_is_one_line_without_its_full_stop() -> None:
    assert (
        layout.first_sentence("Where calls go: moto,\nLocalStack. More here.\n\nNext.")
        == "Where calls go: moto, LocalStack"
    )


def test_a_module_or_folder_without_a_description_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "ROOT", tmp_path)
    (tmp_path / "quiet.py").write_text("x = 1\n")
    (tmp_path / "folder").mkdir()
    with pytest.raises(layout.Undescribed, match=r"quiet\.py needs a docstring"):
        layout.describe(tmp_path / "quiet.py")
    with pytest.raises(layout.Undescribed, match=r"folder needs a README\.md"):
        layout.describe(tmp_path / "folder")


def test_every_helpers_module_is_in_the_layout() -> None:
    text = layout.markdown()
    helpers = Path(layout.ROOT, "helpers")
    for floor in ("aws", "instruments", "services", "chapters"):
        for module in (helpers / floor).glob("*.py"):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in text, module
