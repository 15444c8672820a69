"""Style-tagged training rows: neutral tags, the subject's labels and the subject's split."""

from __future__ import annotations

import json
import random

import pytest

from classifiers.lexicon import LexiconClassifier
from moderation.normalise import normalise
from scripts import prompt_data
from scripts.build_style_tags import GREY

TAGS = json.loads(prompt_data.STYLE_TAGS.read_text(encoding="utf-8"))
PHRASES = [p for key in ("mediums", "movements", "artists", "flavours", "sites") for p in TAGS[key]]


def test_style_tags_carry_no_listed_or_grey_topic() -> None:
    """A tag that read as unsafe would teach the head that the tag is safe on a benign subject."""
    assert len(TAGS["flavours"]) >= 1000 and len(TAGS["artists"]) >= 1000
    results = LexiconClassifier.from_options().classify([normalise(p) for p in PHRASES])
    listed = [p for p, r in zip(PHRASES, results, strict=True) if any(v > 0 for v in r.scores.values())]
    assert not listed, listed[:5]
    assert not [p for p in PHRASES if GREY.search(p)]


@pytest.mark.parametrize("tag", ["bloody", "Nudity", "war", "smoking", "girls"])
def test_the_grey_screen_catches_word_forms(tag: str) -> None:
    assert GREY.search(f"octane render, {tag}, 8k")


@pytest.mark.parametrize("tag", ["digital painting", "cute", "warm light", "crystal", "bedroom", "hotel"])
def test_the_grey_screen_keeps_words_that_merely_start_alike(tag: str) -> None:
    assert not GREY.search(tag)


def test_tagging_keeps_the_subject_and_is_seeded() -> None:
    subject = "A red bicycle leaning against a wall."
    assert prompt_data.tag_prompt(subject, random.Random(7), TAGS) == prompt_data.tag_prompt(
        subject, random.Random(7), TAGS
    )
    rng = random.Random(1)
    for _ in range(50):
        out = prompt_data.tag_prompt(subject, rng, TAGS)
        assert "ed bicycle leaning against a wall" in out and out != subject
        assert "wall." not in out  # the caption's full stop is dropped before the tags


def test_tagged_rows_take_their_subjects_labels_and_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-split subject must never reach training in tagged form, whatever the tagged text hashes to."""
    benign = [prompt_data.Row(f"a photo of house number {i}", "coco", prompt_data._labels([], prompt_data.ALL_ZERO))
              for i in range(40)]  # fmt: skip
    unsafe = [prompt_data.Row(f"a bloody knife fight number {i}", "rece", prompt_data._labels(["violence"]))
              for i in range(40)]  # fmt: skip
    long = prompt_data.Row(" ".join(["word"] * 40), "rece", prompt_data._labels(["violence"]))
    monkeypatch.setattr(prompt_data, "T2I_SOURCES", (lambda: iter(benign), lambda: iter([*unsafe, long])))
    monkeypatch.setattr(prompt_data, "_written", lambda general_genres=False, t2i_implicit=False: iter([]))
    tagged = list(prompt_data._tagged())
    assert {r.source for r in tagged} == {"tagged_benign", "tagged_unsafe"}
    rows = [r for r in tagged if "number" in r.text]
    assert len(rows) == 80  # every short subject once; the 40-word one is left out
    assert len(tagged) - len(rows) >= prompt_data.TAGGED_PEOPLE * 0.9  # the people grammar's (few repeats)
    subjects = {prompt_data.key_of(r.text): r for r in benign + unsafe}
    for row in rows:
        number = row.text.split("number ")[1].split(",")[0].split()[0]
        kind = "house" if row.source == "tagged_benign" else "knife fight"
        subject = next(s for s in subjects.values() if s.text.endswith(f"{kind} number {number}"))
        assert row.split == prompt_data.split_of(subject.text)
        assert row.labels == subject.labels
    assert {r.split for r in rows} == {"train", "val", "test"}

    monkeypatch.setattr(prompt_data, "CHAT_SOURCES", ())
    loaded = [r for r in prompt_data.load_training_rows(general=False, written=False, tagged=True)
              if r.source.startswith("tagged")]  # fmt: skip
    assert sorted((r.text, r.split) for r in loaded) == sorted((r.text, r.split) for r in tagged)
    # --written-t2i-implicit also tags the implicit written prompts (as when they were appended to written_t2i).
    extra = prompt_data.Row("a knife fight implied number 99", "written_t2i", prompt_data._labels(["violence"]))
    monkeypatch.setattr(
        prompt_data, "_written", lambda general_genres=False, t2i_implicit=False: iter([extra] * t2i_implicit)
    )
    assert not [r for r in prompt_data._tagged() if "implied number 99" in r.text]
    assert len([r for r in prompt_data._tagged(1, True) if "implied number 99" in r.text]) == 1
    # Opt-in: the shipped head was trained without them (docs/evaluation.md, ninth session).
    plain = prompt_data.load_training_rows(general=False, written=False)
    assert not [r for r in plain if r.source.startswith("tagged")]


def test_people_subjects_are_benign_by_the_lists_and_the_screen() -> None:
    rng = random.Random(3)
    people = [prompt_data.person_subject(rng) for _ in range(300)]
    results = LexiconClassifier.from_options().classify([normalise(p) for p in people])
    assert not [p for p, r in zip(people, results, strict=True) if any(v > 0 for v in r.scores.values())]
    assert not [p for p in people if GREY.search(p)]


def test_unsafe_copies_draw_fresh_tags_and_keep_the_subjects_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--tagged-unsafe-copies 2`: every unsafe subject twice, benign ones once; one copy is the default."""
    benign = [prompt_data.Row(f"a photo of house number {i}", "coco", prompt_data._labels([], prompt_data.ALL_ZERO))
              for i in range(20)]  # fmt: skip
    unsafe = [prompt_data.Row(f"a bloody knife fight number {i}", "rece", prompt_data._labels(["violence"]))
              for i in range(20)]  # fmt: skip
    monkeypatch.setattr(prompt_data, "T2I_SOURCES", (lambda: iter(benign), lambda: iter(unsafe)))
    monkeypatch.setattr(prompt_data, "_written", lambda general_genres=False, t2i_implicit=False: iter([]))
    assert list(prompt_data._tagged(1)) == list(prompt_data._tagged())
    doubled = list(prompt_data._tagged(2))
    for i, subject in enumerate(unsafe):
        copies = [r for r in doubled if r.source == "tagged_unsafe" and f"knife fight number {i}," in r.text + ","]
        assert len(copies) == 2 and copies[0].text != copies[1].text
        assert {r.split for r in copies} == {prompt_data.split_of(subject.text)}
        assert all(r.labels == subject.labels for r in copies)
    assert sum(r.source == "tagged_benign" and "house number" in r.text for r in doubled) == len(benign)
