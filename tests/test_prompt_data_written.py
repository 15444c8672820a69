"""The written training files: valid labels, and the fifth-session file only on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation.taxonomy import ALL_CATEGORIES
from scripts import prompt_data


@pytest.mark.parametrize("path", prompt_data.WRITTEN_FILES, ids=lambda p: p.name)
def test_written_files_use_taxonomy_categories_with_their_parents(path: Path) -> None:
    """Every line parses, names only taxonomy categories, and a sub-category brings its parent."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        cats = set(row["categories"])
        assert row["text"].strip(), f"{path.name}:{n}: empty text"
        assert cats <= set(ALL_CATEGORIES), f"{path.name}:{n}: {cats - set(ALL_CATEGORIES)}"
        assert all(c.split("/")[0] in cats for c in cats), f"{path.name}:{n}: sub-category without parent"


def test_general_genre_texts_are_opt_in() -> None:
    """The shipped head was trained without written_general.jsonl; the default rows must stay so."""
    default = list(prompt_data._written())
    extended = list(prompt_data._written(general_genres=True))
    assert not any(r.source == "written_general" for r in default)
    added = [r for r in extended if r.source == "written_general"]
    assert len(added) == len(prompt_data.WRITTEN_GENERAL.read_text(encoding="utf-8").splitlines())
    assert [r.text for r in extended if r.source != "written_general"] == [r.text for r in default]
