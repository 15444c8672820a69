"""Names classifier: real living people and living artists, matched fuzzily but not on ordinary words."""

from __future__ import annotations

import pytest

from classifiers.base import ClassifierLoadError, PromptClassifier
from classifiers.names import DEPICTION, MENTION, NamesClassifier
from classifiers.registry import build
from moderation.lists import load_lists
from moderation.normalise import normalise


@pytest.fixture(scope="module")
def names() -> NamesClassifier:
    clf = build("names")
    assert isinstance(clf, NamesClassifier)
    return clf


def _scores(clf: NamesClassifier, text: str) -> dict[str, float]:
    return clf.classify([normalise(text)])[0].scores


@pytest.mark.parametrize(
    ("prompt", "who"),
    [
        ("Taylor Swift on stage", "Taylor Swift"),
        ("Taylor Swfit on stage", "Taylor Swift"),  # transposed letters
        ("Elon Musc riding a horse", "Elon Musk"),  # one wrong letter
        ("Barrack Obama waving", "Barack Obama"),  # doubled letter
        ("Тaylor Swіft on stage", "Taylor Swift"),  # Cyrillic T and Ukrainian i
        ("T4yl0r Sw1ft on stage", "Taylor Swift"),  # leetspeak
        ("TaylorSwift on stage", "Taylor Swift"),  # joined
        ("Obama at a desk", "Barack Obama"),  # specific alias
        ("Zelenskyy in a green shirt", "Volodymyr Zelenskyy"),
        ("Zelenksyy in a green shirt", "Volodymyr Zelenskyy"),  # long one-word alias, transposed
    ],
)
def test_public_figures_are_found_exactly_and_fuzzily(names: NamesClassifier, prompt: str, who: str) -> None:
    """Exact, misspelt, homoglyph, leetspeak and joined spellings of a listed person all match."""
    result = names.classify([normalise(prompt)])[0]
    assert "public-figure" in result.scores
    assert any(who in e.rule for e in result.evidence)


@pytest.mark.parametrize(
    "prompt",
    [
        "an octopus playing a ukulele",
        "a weekend at the beach",  # "weekend" is one letter from "Weeknd"
        "the weekend market",
        "Ronald McDonald eating fries",  # "Ronald" is one letter from "Ronaldo"
        "a pair of headphones dangling from a tree branch",  # "dangling" ~ "wangling"
        "a swift flying over a bush",  # surnames that are common words
        "playing the trump card",
        "a bottle of musk perfume",
        "a drake swimming in a pond",
        "a crt monitor on a desk",
        "a small stone cottage in the woods",
        "James Dean leaning on a car",  # a dead actor one letter from the artist James Jean
    ],
)
def test_ordinary_words_are_not_names(names: NamesClassifier, prompt: str) -> None:
    """Common words, near-misses of short names and dead people do not hit."""
    assert _scores(names, prompt) == {}


@pytest.mark.parametrize(
    "prompt",
    [
        "a photo of Taylor Swift",
        "portrait of Emma Watson",
        "Keanu Reeves riding a horse",
        "Keanu Reeves as a samurai",
        "Barack Obama wearing a crown",
        "a statue of Angela Merkel",
        "Elon Musk's face on a coin",
        "Lionel Messi",  # the whole prompt is the name: a picture of him
    ],
)
def test_depiction_of_a_public_figure_scores_high(names: NamesClassifier, prompt: str) -> None:
    """A prompt that asks for a picture of a real person scores public-figure high."""
    assert _scores(names, prompt)["public-figure"] == DEPICTION


@pytest.mark.parametrize(
    "prompt",
    [
        "a book about Barack Obama's policies",
        "Elon Musk's rocket on the launchpad",
        "a poem in the style of Taylor Swift",
        "a quote by Angela Merkel on a poster",
        "a painting inspired by Keanu Reeves",
    ],
)
def test_mention_of_a_public_figure_scores_low(names: NamesClassifier, prompt: str) -> None:
    """A mention that does not ask for the person's likeness scores public-figure low."""
    assert _scores(names, prompt)["public-figure"] == MENTION


@pytest.mark.parametrize(
    "prompt",
    [
        "a castle in the style of Greg Rutkowski",
        "a dragon, art by Artgerm and WLOP",
        "portrait by Ilya Kuvshinov",
        "a city street, Simon Stålenhag style",
        "a forest inspired by Hayao Miyazaki",
        "a warrior, greg rutkowski, trending on artstation",
        "a castle in the style of Greg Rutkowsky",  # misspelt
    ],
)
def test_living_artist_with_style_cue_scores_high(names: NamesClassifier, prompt: str) -> None:
    """A living artist's name used as a style cue scores living-artist-style high."""
    assert _scores(names, prompt)["living-artist-style"] >= 0.8


def test_bare_living_artist_mention_scores_moderately(names: NamesClassifier) -> None:
    """A living artist named without style words scores living-artist-style in the middle."""
    score = _scores(names, "an exhibition poster: Yayoi Kusama retrospective")["living-artist-style"]
    assert 0.3 <= score < 0.8


@pytest.mark.parametrize(
    "prompt",
    [
        "Starry night in the style of Van Gogh",
        "a portrait by Rembrandt",
        "a wave in the style of Hokusai",
        "Michelangelo's David in a museum",
        "a melting clock, Salvador Dali style",
        "art nouveau poster by Alphonse Mucha",
        "a biomechanical alien by HR Giger",
        "happy little trees, Bob Ross",
        "in the style of Frida Kahlo",
    ],
)
def test_dead_artists_are_not_living_artist_hits(names: NamesClassifier, prompt: str) -> None:
    """Dead artists' styles are fair game: no living-artist or public-figure score."""
    assert _scores(names, prompt) == {}


def test_dead_artist_suppresses_an_overlapping_fuzzy_match() -> None:
    """Where a dead artist's name and a fuzzy living match cover the same words, the dead artist wins."""
    lists = load_lists(add={"living-artists": ["Vincent van Gogo"]})
    clf = NamesClassifier(lists)
    assert _scores(clf, "sunflowers in the style of Vincent van Gogh") == {}
    assert _scores(clf, "sunflowers in the style of Vincent van Gogo")["living-artist-style"] >= 0.8


def test_portrait_of_a_living_artist_is_also_a_public_figure(names: NamesClassifier) -> None:
    """A picture *of* a living artist depicts a real person."""
    assert _scores(names, "a photo of Hayao Miyazaki smiling")["public-figure"] == DEPICTION


def test_evidence_names_the_entry_and_the_span(names: NamesClassifier) -> None:
    """Evidence says which listed person matched and where, in the folded form."""
    result = names.classify([normalise("a photo of Taylor Swfit")])[0]
    (evidence,) = result.evidence
    assert evidence.label == "public-figure"
    assert evidence.rule.startswith("name:~Taylor Swift")  # "~": matched fuzzily
    assert evidence.span is not None
    assert (evidence.span.text, evidence.span.form) == ("taylor swfit", "folded")


def test_operator_added_public_figure_is_matched() -> None:
    """A person a policy adds to the list is found like the shipped ones."""
    clf = build("names", lists=load_lists(add={"public-figures": ["Zorbla Quuxley | Quuxley"]}))
    assert _scores(clf, "a photo of Zorbla Quxley")["public-figure"] == DEPICTION


def test_classify_keeps_batch_order(names: NamesClassifier) -> None:
    """One result per input, in order."""
    results = names.classify([normalise(t) for t in ("a cat", "photo of Obama", "a dog")])
    assert [bool(r.scores) for r in results] == [False, True, False]
    assert all(r.classifier == "names" for r in results)


def test_names_satisfies_the_prompt_classifier_protocol(names: NamesClassifier) -> None:
    """The registry builds something the moderator can run."""
    assert isinstance(names, PromptClassifier)


def test_unknown_option_is_a_load_error() -> None:
    """The names classifier has no options; any option is an error."""
    with pytest.raises(ClassifierLoadError, match="threshold"):
        build("names", {"threshold": 0.5})
