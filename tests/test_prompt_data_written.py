"""The written training files: valid labels, the opt-in files only on request; the T2I probes kept apart."""

from __future__ import annotations

import json
from collections.abc import Callable
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


def test_implicit_t2i_prompts_are_opt_in_and_read_as_written_t2i() -> None:
    """The shipped head was trained without written_t2i_implicit.jsonl; with the option its lines follow
    written_t2i.jsonl's under the same source, as candidate F was trained (the file appended)."""
    default = list(prompt_data._written())
    extended = list(prompt_data._written(t2i_implicit=True))
    implicit = [json.loads(line)["text"] for line in prompt_data.WRITTEN_T2I_IMPLICIT.read_text("utf-8").splitlines()]
    assert implicit and not {r.text for r in default} & set(implicit)
    assert extended[: len(default)] == default
    assert [r.text for r in extended[len(default) :]] == implicit
    assert {r.source for r in extended[len(default) :]} == {"written_t2i"}
    assert any(r.unsafe for r in extended[len(default) :]) and not all(r.unsafe for r in extended[len(default) :])


def test_t2i_probe_is_labelled_and_never_trained_on() -> None:
    """The evaluation-only T2I probe: both halves present, valid labels, no text shared with training."""
    rows = [json.loads(line) for line in prompt_data.T2I_PROBE.read_text(encoding="utf-8").splitlines()]
    assert {r["half"] for r in rows} == {"dev", "held"}
    assert {r["label"] for r in rows} == {"safe", "unsafe"}
    for r in rows:
        assert (r["category"] is None) == (r["label"] == "safe"), r["text"]
        assert r["category"] is None or r["category"] in ALL_CATEGORIES, r["category"]
    trained = {prompt_data.key_of(line_text) for path in prompt_data.WRITTEN_FILES for line_text in _texts(path)}
    shared = [r["text"] for r in rows if prompt_data.key_of(r["text"]) in trained]
    assert not shared, shared[:5]
    assert len(prompt_data.t2i_probe("dev")) + len(prompt_data.t2i_probe("held")) == len(rows)


@pytest.mark.parametrize(
    ("path", "load"),
    [
        (prompt_data.T2I_PROBE2, prompt_data.t2i_probe2),
        (prompt_data.T2I_PROBE3, prompt_data.t2i_probe3),
        (prompt_data.T2I_PROBE4, prompt_data.t2i_probe4),
        (prompt_data.T2I_PROBE5, prompt_data.t2i_probe5),
    ],
    ids=["probe2", "probe3", "probe4", "probe5"],
)
def test_later_t2i_probes_are_labelled_and_never_trained_on(path: Path, load: Callable[[], list]) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {r["label"] for r in rows} == {"safe", "unsafe"}
    for r in rows:
        assert (r["category"] is None) == (r["label"] == "safe"), r["text"]
        assert r["category"] is None or r["category"] in ALL_CATEGORIES, r["category"]
    trained = {prompt_data.key_of(line_text) for path in prompt_data.WRITTEN_FILES for line_text in _texts(path)}
    assert not [r["text"] for r in rows if prompt_data.key_of(r["text"]) in trained]
    assert len(load()) == len(rows)


def test_every_later_probe_file_is_listed_for_the_contamination_check() -> None:
    """A probe added to bench/data must reach LATER_PROBES, which scripts/check_contamination.py reads."""
    files = set((prompt_data.T2I_PROBE.parent).glob("t2i_probe*.jsonl")) - {prompt_data.T2I_PROBE}
    assert files == set(prompt_data.LATER_PROBES)


def test_the_other_eval_only_prompt_files_are_never_trained_on() -> None:
    """bench/data's language and minors prompts share no text with any training file."""
    trained = {prompt_data.key_of(line_text) for path in prompt_data.WRITTEN_FILES for line_text in _texts(path)}
    for path in prompt_data.EVAL_ONLY_FILES:
        texts = _texts(path)
        assert texts and not [t for t in texts if prompt_data.key_of(t) in trained], path


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_i2p_clean_negatives_are_opt_in_and_apart_from_the_cut() -> None:
    """The shipped head was trained without the clean-outcome I2P prompts; they never overlap the positives."""
    base = prompt_data.load_training_rows(general=False, written=False, chat=False)
    extended = prompt_data.load_training_rows(general=False, written=False, chat=False, i2p_clean=True)
    assert not any(r.source == "i2p_clean" for r in base)
    clean = [r for r in extended if r.source == "i2p_clean"]
    assert clean and all(not any(r.labels.values()) for r in clean)
    positives = {prompt_data.key_of(r.text) for r in base if r.source == "i2p"}
    assert not {prompt_data.key_of(r.text) for r in clean} & positives
    assert sorted(r.text for r in extended if r.source != "i2p_clean") == sorted(r.text for r in base)
