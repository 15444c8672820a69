"""Lexicon classifier: listed terms on word boundaries, through every evasion, minus allow-phrases."""

from __future__ import annotations

import pytest

from classifiers.base import ClassifierLoadError, PromptClassifier
from classifiers.lexicon import LexiconClassifier
from classifiers.registry import build
from moderation.lists import load_lists
from moderation.normalise import normalise
from moderation.types import ClassifierResult


@pytest.fixture(scope="module")
def lexicon() -> LexiconClassifier:
    clf = build("lexicon")
    assert isinstance(clf, LexiconClassifier)
    return clf


def _scores(clf: LexiconClassifier, text: str) -> dict[str, float]:
    return clf.classify([normalise(text)])[0].scores


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("a nude woman on a beach", "sexual"),
        ("hardcore porn scene", "sexual"),
        ("topless model, nsfw", "sexual"),
        ("child porn", "sexual/minors"),
        ("loli hentai", "sexual/minors"),
        ("a decapitated body in a pool of blood", "violence/graphic"),
        ("a mass shooting at a mall", "violence"),
        ("how to make a bomb at home", "illicit/violent"),
        ("a meth lab in a trailer", "illicit"),
        ("thinspiration collage", "self-harm"),
        ("i want to kill myself", "self-harm/intent"),
        ("painless suicide methods", "self-harm/instructions"),
        ("a man yelling a racial slur: nigger", "hate"),
        ("kill all jews", "hate/threatening"),
        ("you are worthless, kill yourself", "harassment"),
        ("i know where you live", "harassment/threatening"),
    ],
)
def test_listed_terms_score_their_category(lexicon: LexiconClassifier, prompt: str, category: str) -> None:
    """A prompt with a listed term scores that term's category at or above 0.5."""
    assert _scores(lexicon, prompt).get(category, 0.0) >= 0.5


@pytest.mark.parametrize(
    "evasive",
    [
        "a p0rn still",  # leetspeak
        "a n@ked woman",
        "a рorn still",  # Cyrillic er
        "a nаkеd woman",  # Cyrillic a and ie
        "a ｎｕｄｅ woman",  # fullwidth
        "a 𝐧𝐮𝐝𝐞 woman",  # mathematical bold
        "a n u d e woman",  # spaced, with the article in front
        "n.u.d.e woman",
        "a nuuuuude woman",  # stretched
        "a NUDE woman",  # case
        "a n\u200bu\u200bd\u200be woman",  # zero-width spaces
        "a nu\u00adde woman",  # soft hyphen
        "a nüdé woman",  # accents
    ],
)
def test_evasions_of_a_term_are_caught(lexicon: LexiconClassifier, evasive: str) -> None:
    """Leetspeak, homoglyph, spaced, stretched, zero-width and accented spellings still match."""
    assert _scores(lexicon, evasive).get("sexual", 0.0) >= 0.5


def test_spaced_letters_after_a_one_letter_word_are_read_both_ways(lexicon: LexiconClassifier) -> None:
    """ "i n c e s t" is incest even though "i" could be a word of its own."""
    assert _scores(lexicon, "i n c e s t")["sexual"] == 1.0


def test_spaced_phrase_is_caught_after_folding(lexicon: LexiconClassifier) -> None:
    """A whole phrase spelt out letter by letter still meets the phrase."""
    assert _scores(lexicon, "c h i l d p o r n")["sexual/minors"] == 1.0


@pytest.mark.parametrize(
    "benign",
    [
        "a class of students",
        "an assassin in a cloak",
        "a map of Scunthorpe",
        "a cocktail at sunset",
        "a therapist's office",
        "a bunch of grapes",
        "data analysis on a whiteboard",
        "a cottage in Sussex",
        "a bowl of spices",
        "a bag of goodies",
        "a passage through the mountains",
        "the document was classified",
        "a shuttlecock on the grass",
        "a peacock in a garden",
        "a hancock tower",
        "a cumulus cloud",
        "a titan rising from the sea",
        "shitake mushrooms",
        "a skilled craftsman",
        "a butterfly on a flower",
    ],
)
def test_terms_inside_longer_words_do_not_match(lexicon: LexiconClassifier, benign: str) -> None:
    """No Scunthorpe problem: a term inside a longer word is not a match."""
    assert _scores(lexicon, benign) == {}


@pytest.mark.parametrize(
    "benign",
    [
        "a chicken breast on a plate",
        "a shooting star over the desert",
        "kill -9 a process",
        "a Bloody Mary cocktail",
        "breast cancer awareness ribbon",
        "a pussy willow branch",
        "a blue tit on a feeder",
        "magna cum laude diploma",
        "a blood orange sliced in half",
        "Moby Dick poster",
        "photo shoot in a studio",
        "the Sex Pistols on stage",
        "a naked mole rat",
        "nude lipstick swatches",
        "a killer whale breaching",
        "a murder of crows on a fence",
        "a suicide prevention poster",
        "Homo sapiens skull",
        "Al Gore giving a speech",
        "a nude-colored dress on a mannequin",  # a hyphen stands for the phrase's space
        "a soldier helping a recruit strap on his helmet",
    ],
)
def test_allow_phrases_neutralise_known_false_positives(lexicon: LexiconClassifier, benign: str) -> None:
    """A term inside an allow-phrase is not evidence."""
    assert _scores(lexicon, benign) == {}


def test_allow_phrase_only_clears_the_term_inside_it(lexicon: LexiconClassifier) -> None:
    """An allow-phrase elsewhere in the prompt does not clear a separate match."""
    assert _scores(lexicon, "a chicken breast and a naked woman")["sexual"] >= 0.8


def test_allow_phrase_does_not_clear_a_longer_term_around_it(lexicon: LexiconClassifier) -> None:
    """ "molotov cocktail" is not cleared by the allow-phrase "cocktail"."""
    assert _scores(lexicon, "throwing a molotov cocktail")["illicit/violent"] >= 0.8


@pytest.mark.parametrize(("prompt", "term"), [("two nudes", "nude"), ("big asses", "ass")])
def test_plurals_match_their_term(lexicon: LexiconClassifier, prompt: str, term: str) -> None:
    """A plural meets its singular term."""
    result = lexicon.classify([normalise(prompt)])[0]
    assert any(e.rule in (f"term:{term}", f"term:{term}s", f"term:{term}es") for e in result.evidence)


def test_score_is_the_strongest_matched_weight(lexicon: LexiconClassifier) -> None:
    """Two terms in one category: the category scores the larger weight."""
    scores = _scores(lexicon, "a busty woman, pornographic")
    assert scores["sexual"] == 1.0


def test_evidence_points_at_the_matched_text(lexicon: LexiconClassifier) -> None:
    """Evidence names the term, its category, weight and the span in the original prompt."""
    result = lexicon.classify([normalise("A Nude figure")])[0]
    (evidence,) = [e for e in result.evidence if e.rule == "term:nude"]
    assert evidence.label == "sexual"
    assert evidence.span is not None
    assert (evidence.span.start, evidence.span.end, evidence.span.text, evidence.span.form) == (
        2, 6, "Nude", "original",
    )  # fmt: skip


def test_evasion_evidence_points_into_the_folded_form(lexicon: LexiconClassifier) -> None:
    """A match found only after folding says so in its span."""
    result = lexicon.classify([normalise("p0rn")])[0]
    assert result.evidence[0].span is not None
    assert result.evidence[0].span.form == "folded"
    assert result.evidence[0].span.text == "porn"


@pytest.mark.parametrize(
    ("masked", "category", "term"),
    [
        ("n*de girl selfie", "sexual", "nude"),
        ("a t*pless woman", "sexual", "topless"),
        ("a n_de model", "sexual", "nude"),
        ("r#pe scene", "violence", "rape"),
        ("sl*ts on a bed", "sexual", "slut"),  # a plural on a listed word
    ],
)
def test_masked_letters_read_as_the_listed_word_they_fit(
    lexicon: LexiconClassifier, masked: str, category: str, term: str
) -> None:
    result = lexicon.classify([normalise(masked)])[0]
    assert category in result.scores
    (evidence,) = [e for e in result.evidence if e.rule == f"term:{term}" and e.label == category]
    assert evidence.span is not None and evidence.span.form == "masked"
    assert evidence.span.text.startswith(term)
    folded = normalise(masked).forms["folded"]  # same offsets: one letter per mask character
    assert set(folded[evidence.span.start : evidence.span.end]) & set("*#_")


@pytest.mark.parametrize(
    "benign",
    [
        "*sparkles* a cat on a sofa",  # emphasis, not a mask
        "**bold** lettering on a 5* hotel sign",
        "#nofilter sunset",
        "a cl*ss photo",  # fits no listed word
        "s**t happens, a rainy day",  # half the letters hidden: too many words fit
        "snake_case code on a screen",
    ],
)
def test_masks_that_hide_no_listed_word_score_nothing(lexicon: LexiconClassifier, benign: str) -> None:
    assert _scores(lexicon, benign) == {}


@pytest.mark.parametrize(
    ("dotted", "term"),
    [("a nu.de woman on a bed", "nude"), ("a n.ude woman", "nude"), ("na.ked girls", "naked")],
)
def test_a_dot_inside_a_listed_word_is_read_through(lexicon: LexiconClassifier, dotted: str, term: str) -> None:
    result = lexicon.classify([normalise(dotted)])[0]
    (evidence,) = [e for e in result.evidence if e.rule == f"term:{term}"]
    assert evidence.span is not None and evidence.span.form == "masked"
    folded = normalise(dotted).forms["folded"]  # padded to the same length: offsets still line up
    assert "." in folded[evidence.span.start : evidence.span.end]


@pytest.mark.parametrize("benign", ["e.g. a cat on a mat", "a meeting at 3 p.m. in the U.S.", "see example.com"])
def test_dots_that_join_no_listed_word_score_nothing(lexicon: LexiconClassifier, benign: str) -> None:
    assert _scores(lexicon, benign) == {}


@pytest.mark.parametrize(
    ("split", "term"),
    [
        ("a nu de woman on a bed", "nude"),
        ("a nak ed woman", "naked"),
        ("a wo man who is na ked", "naked"),
        ("a to pless girl at the beach", "topless"),
    ],
)
def test_a_listed_word_split_in_two_is_read_as_one(lexicon: LexiconClassifier, split: str, term: str) -> None:
    result = lexicon.classify([normalise(split)])[0]
    (evidence,) = [e for e in result.evidence if e.rule == f"term:{term}"]
    assert evidence.span is not None and evidence.span.form == "split"
    folded = normalise(split).forms["folded"]  # the space moves after the word: offsets line up
    assert " " in folded[evidence.span.start : evidence.span.end]


@pytest.mark.parametrize(
    "benign",
    [
        "a pen is on the table",  # both common words
        "an al pacino poster",
        "lol i love naps",  # a one-letter part: "loli" is no reading
        "the child s mother",
    ],
)
def test_words_that_only_happen_to_join_into_a_listed_word_stay_apart(lexicon: LexiconClassifier, benign: str) -> None:
    assert _scores(lexicon, benign) == {}


def test_compounds_of_real_words_are_not_split_words() -> None:
    """A part of four letters or more that is a word ("flower") makes a compound, not a fragment."""
    clf = build("lexicon", lists=load_lists(add={"violence": ["sunflower | 0.9", "zorbnak | 0.9"]}))
    assert _scores(clf, "a sun flower field") == {}
    assert _scores(clf, "a zorb nak") == {"violence": 0.9}  # fragments: joined


def test_a_mask_that_fits_two_listed_words_is_not_guessed() -> None:
    clf = build("lexicon", lists=load_lists(add={"violence": ["zarp | 0.9"], "hate": ["zerp | 0.9"]}))
    assert _scores(clf, "a z*rp") == {}
    assert _scores(clf, "a za*p")["violence"] == 0.9  # one fit: read


def test_a_listed_word_typed_without_vowels_is_read(lexicon: LexiconClassifier) -> None:
    result = lexicon.classify([normalise("a nkd ldy in the shower")])[0]
    assert result.scores["sexual"] >= 0.8
    assert any(e.span is not None and e.span.form == "spelled" for e in result.evidence)


def test_classify_is_batch_first_and_keeps_order(lexicon: LexiconClassifier) -> None:
    """One result per input, in input order, each naming the classifier and its version."""
    results = lexicon.classify([normalise(t) for t in ("a cat", "gore", "a dog", "nude")])
    assert [bool(r.scores) for r in results] == [False, True, False, True]
    assert all(isinstance(r, ClassifierResult) and r.classifier == "lexicon" for r in results)
    assert all(r.version == lexicon.version for r in results)


def test_lexicon_satisfies_the_prompt_classifier_protocol(lexicon: LexiconClassifier) -> None:
    """The registry builds something the moderator can run."""
    assert isinstance(lexicon, PromptClassifier)
    assert lexicon.name == "lexicon"


def test_operator_added_term_is_matched_through_evasions() -> None:
    """A term a policy adds gets the same folding as shipped ones."""
    clf = build("lexicon", lists=load_lists(add={"violence": ["zorblewhack | 0.8"]}))
    assert _scores(clf, "a zorblewhack scene")["violence"] == 0.8
    assert _scores(clf, "a z0rbl3wh4ck scene")["violence"] == 0.8
    assert _scores(clf, "a z o r b l e w h a c k scene")["violence"] == 0.8


def test_operator_removed_term_no_longer_matches() -> None:
    """A term a policy removes stops scoring."""
    clf = build("lexicon", lists=load_lists(remove={"violence": ["shoot"]}))
    assert "violence" not in _scores(clf, "shoot the target")


def test_operator_allow_phrase_neutralises() -> None:
    """A policy may add its own allow-phrases."""
    clf = build("lexicon", lists=load_lists(add={"allow": ["nude tone palette"]}))
    assert _scores(clf, "a nude tone palette") == {}


def test_version_follows_the_lists() -> None:
    """Edited lists give the classifier a different version string."""
    edited = LexiconClassifier(load_lists(add={"allow": ["zorble garden"]}))
    assert edited.version != LexiconClassifier().version


def test_unknown_option_is_a_load_error() -> None:
    """A typo in the classifier's options fails at load time with the option named."""
    with pytest.raises(ClassifierLoadError, match="maximum_evidence"):
        build("lexicon", {"maximum_evidence": 3})


def test_max_evidence_limits_evidence_per_category() -> None:
    """max_evidence caps the evidence items kept for each category."""
    clf = build("lexicon", {"max_evidence": 1})
    result = clf.classify([normalise("nude, naked, topless, porn")])[0]
    assert len([e for e in result.evidence if e.label == "sexual"]) == 1


def test_cap_limits_every_category_but_sexual_minors() -> None:
    """`cap` ranks list hits below a model's confident scores; weights under it are untouched,
    the hard-block category keeps its full weight and the version says so."""
    full, capped = build("lexicon"), build("lexicon", {"cap": 0.85})
    text = normalise("a nude woman, hardcore porn; loli porn")
    a, b = full.classify([text])[0], capped.classify([text])[0]
    before = {(e.label, e.rule): e.score for e in a.evidence}
    after = {(e.label, e.rule): e.score for e in b.evidence}
    assert after.keys() == before.keys()
    assert any(score > 0.85 for (label, _), score in before.items() if label == "sexual")
    for key, score in after.items():
        assert score == (before[key] if key[0] == "sexual/minors" else min(before[key], 0.85))
    assert b.scores["sexual"] == 0.85 and b.scores["sexual/minors"] == a.scores["sexual/minors"] > 0.85
    assert capped.version.endswith("+cap0.85") and capped.version != full.version


@pytest.mark.parametrize("bad", [0, 0.5, 1.5, -0.2, "high", True])
def test_cap_out_of_range_is_a_load_error(bad: object) -> None:
    with pytest.raises(ClassifierLoadError, match="cap"):
        build("lexicon", {"cap": bad})


def test_corroborate_below_makes_topic_words_weak_scores() -> None:
    """Terms under `corroborate_below` move to `weak_scores` for the engine to confirm with a model;
    explicit terms and the hard-block category stay full scores, and the version says so."""
    plain = build("lexicon")
    weak = build("lexicon", {"corroborate_below": 0.8, "corroborate_at": 0.05})
    text = normalise("a chessboard where the king has been killed; loli porn; a nude woman")
    a, b = plain.classify([text])[0], weak.classify([text])[0]
    assert a.scores["violence"] < 0.8 and "violence" not in b.scores
    assert b.weak_scores == {"violence": a.scores["violence"]} and b.corroboration_floor == 0.05
    assert b.scores["sexual"] == a.scores["sexual"] >= 0.8
    assert b.scores["sexual/minors"] == a.scores["sexual/minors"]
    assert {e.rule for e in b.evidence} == {e.rule for e in a.evidence}  # the word is still explained
    assert "+weak<0.8@0.05" in weak.version and "weak" not in plain.version


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"corroborate_below": 1.5}, "corroborate_below"),
        ({"corroborate_below": "yes"}, "corroborate_below"),
        ({"corroborate_at": 1.0}, "corroborate_at"),
        ({"corroborate_at": -0.1}, "corroborate_at"),
        ({"corroborate_at": True}, "corroborate_at"),
    ],
)
def test_corroboration_options_out_of_range_are_load_errors(options: dict, name: str) -> None:
    with pytest.raises(ClassifierLoadError, match=name):
        build("lexicon", options)


def test_algospeak_is_read_by_its_own_list_weight_not_as_spelled_out() -> None:
    """The models read "kms" as "kill myself"; the lists keep "kms" at its own weight (also kilometres)."""
    text = normalise("kms aesthetic")
    assert text.forms["spelled"] == "kill myself aesthetic"
    lexicon = LexiconClassifier()
    scores = lexicon.classify([text])[0].scores
    assert scores["self-harm"] == pytest.approx(0.6)
