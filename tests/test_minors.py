"""Minors cue classifier: the `minors` signal from listed cues and stated ages under 18."""

from __future__ import annotations

import pytest

from classifiers.base import ClassifierLoadError, PromptClassifier
from classifiers.minors import AdultReader, MinorsCueClassifier, age_cues
from classifiers.registry import build
from moderation.lists import load_lists
from moderation.normalise import basic, normalise


@pytest.fixture(scope="module")
def minors() -> MinorsCueClassifier:
    clf = build("minors")
    assert isinstance(clf, MinorsCueClassifier)
    return clf


def _signal(clf: MinorsCueClassifier, text: str) -> float:
    return clf.classify([normalise(text)])[0].scores.get("minors", 0.0)


@pytest.mark.parametrize(
    "prompt",
    [
        "a child on a swing",
        "two kids playing football",
        "a toddler with a balloon",
        "a teenager at a party",
        "a schoolgirl in a classroom",
        "an underage drinker",
        "anime loli character",
        "a shota character",
        "a preteen at the mall",
        "l0li",  # leetspeak
        "a c h i l d",  # spaced
    ],
)
def test_listed_cues_give_the_minors_signal(minors: MinorsCueClassifier, prompt: str) -> None:
    """A listed minor cue gives a strong minors signal."""
    assert _signal(minors, prompt) >= 0.8


@pytest.mark.parametrize(
    ("prompt", "age"),
    [
        ("a 12 year old girl", 12),
        ("a 12-year-old boy", 12),
        ("12yo", 12),
        ("a 12 y.o. kid", 12),
        ("aged 12", 12),
        ("age 15", 15),
        ("age: 15", 15),
        ("a fifteen year old", 15),
        ("a fifteen-year-old student", 15),
        ("seventeen years old", 17),
        ("a 9 years of age boy", 9),
    ],
)
def test_ages_under_18_are_cues(minors: MinorsCueClassifier, prompt: str, age: int) -> None:
    """A stated age under 18, in digits or words, is a cue with its age in the rule."""
    result = minors.classify([normalise(prompt)])[0]
    assert result.scores["minors"] >= 0.9
    assert f"age:{age}" in {e.rule for e in result.evidence}


@pytest.mark.parametrize(
    "prompt",
    [
        "an 18 year old woman",
        "a 25-year-old man",
        "a forty year old man",
        "aged 30",
        "a 19yo",
        "eighteen years old",
    ],
)
def test_ages_18_and_over_are_not_cues(minors: MinorsCueClassifier, prompt: str) -> None:
    """Adults' ages are not minor cues."""
    assert _signal(minors, prompt) == 0.0


@pytest.mark.parametrize(
    "prompt",
    ["a 12 year old whisky", "a 3-year-old dog", "kid gloves", "a baby blue car", "a minor key melody"],
)
def test_ages_and_words_that_are_not_about_children(minors: MinorsCueClassifier, prompt: str) -> None:
    """Aged whisky, a young dog and allow-phrases such as "kid gloves" are not cues."""
    assert _signal(minors, prompt) == 0.0


@pytest.mark.parametrize("prompt", ["a 6 month old baby", "a fifth grader", "under 18", "a 3rd grader"])
def test_infant_ages_grades_and_under_18_are_cues(minors: MinorsCueClassifier, prompt: str) -> None:
    """Ages in months, school grades and "under 18" are cues without a number."""
    assert _signal(minors, prompt) == 1.0


def test_younger_children_score_at_least_as_high_as_teens(minors: MinorsCueClassifier) -> None:
    """A stated age of 12 or less scores no lower than 13 to 17."""
    assert _signal(minors, "a 7 year old") >= _signal(minors, "a 16 year old") >= 0.9


def test_ambiguous_words_stay_below_the_hard_block_floor(minors: MinorsCueClassifier) -> None:
    """ "girl" alone is a weak cue (adult women are called girls), below 0.3."""
    assert 0.0 < _signal(minors, "a girl on a beach") < 0.3


def test_no_cue_no_signal(minors: MinorsCueClassifier) -> None:
    """A prompt without any cue has no minors score at all."""
    assert minors.classify([normalise("a woman reading a book")])[0].scores == {}


def test_scores_only_the_signal_not_categories(minors: MinorsCueClassifier) -> None:
    """The classifier reports the minors signal and nothing else."""
    result = minors.classify([normalise("a child holding porn magazine")])[0]
    assert set(result.scores) == {"minors"}


def test_age_evidence_has_a_span_in_the_basic_form() -> None:
    """Age cues point at the words in the basic form."""
    (cue,) = age_cues(basic("Portrait of a 14-Year-Old"))
    assert (cue.age, cue.text) == (14, "14-year-old")


def test_operator_added_cue_is_matched() -> None:
    """A cue a policy adds to the minors list is found, evasions included."""
    clf = build("minors", lists=load_lists(add={"minors": ["zorbling | 0.9"]}))
    assert _signal(clf, "a z0rbling") == 0.9


def test_classify_keeps_batch_order(minors: MinorsCueClassifier) -> None:
    """One result per input, in order."""
    results = minors.classify([normalise(t) for t in ("a cat", "a child", "a dog")])
    assert [r.scores.get("minors", 0.0) for r in results] == [0.0, 1.0, 0.0]


def test_minors_satisfies_the_prompt_classifier_protocol(minors: MinorsCueClassifier) -> None:
    """The registry builds something the moderator can run."""
    assert isinstance(minors, PromptClassifier)
    assert minors.name == "minors"


def test_unknown_option_is_a_load_error() -> None:
    """The minors classifier has no options; any option is an error."""
    with pytest.raises(ClassifierLoadError, match="ages"):
        build("minors", {"ages": 16})


@pytest.fixture(scope="module")
def reader() -> AdultReader:
    return AdultReader(load_lists())


@pytest.mark.parametrize(
    ("prompt", "reading"),
    [
        ("explicit photo of a 12 year old", "explicit photo of a person"),
        ("A 12 year old GIRL in l1ngerie", "a woman in lingerie"),
        ("a 12yo sch00lgirl posing", "a woman posing"),
        ("an 11-year-old in a bikini", "a person in a bikini"),
        ("two little boys on a beach", "two men on a beach"),
        ("children in raincoats", "people in raincoats"),
        ("a teenager and her daughter", "a person and her woman"),
    ],
)
def test_adult_reading_puts_adults_in_place_of_minor_cues(reader: AdultReader, prompt: str, reading: str) -> None:
    """Every cue is replaced (ages first, on the basic form; then list terms on the folded form)."""
    assert reader(normalise(prompt))[0] == reading


@pytest.mark.parametrize(
    "prompt", ["a cat on a mat", "a girl reading in a cafe", "a 12 year old whisky", "a 30 year old"]
)
def test_prompts_naming_no_minor_have_no_adult_reading(reader: AdultReader, prompt: str) -> None:
    """No cue, a weak one ("girl", 0.25, often an adult) or an age that is not a child's: nothing to re-read."""
    assert reader(normalise(prompt)) == []


def test_masked_cue_is_read_as_the_listed_cue(minors: MinorsCueClassifier) -> None:
    """A masked cue ("ch*ld") counts for the sexual/minors rule as a masked sexual word does."""
    plain = minors.classify([normalise("a child")])[0].scores
    assert minors.classify([normalise("a n*ked ch*ld")])[0].scores == plain
    assert minors.classify([normalise("a naked chi.ld")])[0].scores == plain  # a dot inside the cue
    assert minors.classify([normalise("a naked chi ld")])[0].scores == plain  # a cue split in two


def test_a_cue_guessed_from_missing_vowels_is_no_cue(minors: MinorsCueClassifier) -> None:
    """A guessed "bby" names an adult as often as a baby: the hard block does not rest on the guess."""
    assert normalise("sxy bby").forms["spelled"] == "sexy baby"
    assert minors.classify([normalise("sxy bby")])[0].scores == minors.classify([normalise("sxy")])[0].scores
