"""The engine turns scores into decisions; pure values in, Decision out."""

from __future__ import annotations

from moderation.engine import (
    MINORS_ADULT_READING_MAX,
    MINORS_NUDITY_FLOOR,
    OTHER_LANGUAGE_FLOOR,
    adult_reading_bar,
    evaluate,
)
from moderation.policy import CategoryRule, Policy, load_policy_text
from moderation.types import Action, ClassifierResult, Evidence, Span, Stage


def result(name: str = "t", **scores: float) -> ClassifierResult:
    return ClassifierResult(classifier=name, scores={k.replace("_", "/"): v for k, v in scores.items()})


def test_no_scores_allows(rules_policy: Policy) -> None:
    """Nothing measured above any threshold is an allow."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.1)])
    assert d.action is Action.ALLOW and d.allowed and d.categories == ()


def test_flag_threshold(rules_policy: Policy) -> None:
    """A score between flag and block thresholds flags but stays allowed."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.4)])
    assert d.action is Action.FLAG and d.allowed and d.categories == ("sexual",)


def test_block_threshold_is_inclusive(rules_policy: Policy) -> None:
    """A score exactly at the block threshold blocks."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.5)])
    assert d.action is Action.BLOCK and not d.allowed


def test_max_over_classifiers(rules_policy: Policy) -> None:
    """The category score is the maximum any classifier reports."""
    d = evaluate(rules_policy, Stage.PROMPT, [result("a", sexual=0.1), result("b", sexual=0.6)])
    assert d.category_scores["sexual"] == 0.6 and d.reasons[0].classifier == "b"


def test_most_severe_action_wins(rules_policy: Policy) -> None:
    """A flag in one category and a block in another is a block."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(hate=0.35, sexual=0.9)])
    assert d.action is Action.BLOCK and set(d.categories) == {"hate", "sexual"}


def test_unlisted_category_is_measured_not_acted_on(rules_policy: Policy) -> None:
    """A category without a rule in the policy is reported but never triggers."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(illicit=0.99)])
    assert d.action is Action.ALLOW and d.category_scores["illicit"] == 0.99


def test_classifier_error_fails_closed(rules_policy: Policy) -> None:
    """A classifier that failed blocks, even when every other score is clean."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.0), ClassifierResult(classifier="x", error="boom")])
    assert d.action is Action.BLOCK and d.reasons[0].code == "classifier_error"


def test_minors_signal_with_sexual_derives_sexual_minors(rules_policy: Policy) -> None:
    """A minor cue together with sexual content becomes sexual/minors and blocks."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.4, minors=0.9)])
    assert d.action is Action.BLOCK and "sexual/minors" in d.categories
    assert any(r.code == "minors_rule" for r in d.reasons)


def test_minors_signal_alone_allows(rules_policy: Policy) -> None:
    """A child in a benign prompt is not a sexual/minors hit."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.0, minors=0.95)])
    assert d.action is Action.ALLOW and d.signals["minors"] == 0.95


def test_hard_block_threshold_cannot_exceed_cap(rules_policy: Policy) -> None:
    """A direct sexual/minors score of 0.3 blocks under a policy threshold of 0.3."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual_minors=0.3)])
    assert d.action is Action.BLOCK and d.reasons[0].code == "hard_block"


def test_reason_carries_evidence(rules_policy: Policy) -> None:
    """Reasons name the classifier, the rule and the matched text."""
    ev = Evidence(label="sexual", score=0.9, rule="term:nude", span=Span(start=2, end=6, text="nude"))
    r = ClassifierResult(classifier="lexicon", scores={"sexual": 0.9}, evidence=(ev,))
    d = evaluate(rules_policy, Stage.PROMPT, [r])
    assert (d.reasons[0].classifier, d.reasons[0].rule, d.reasons[0].matched) == ("lexicon", "term:nude", "nude")


def test_decision_carries_policy_identity(rules_policy: Policy) -> None:
    """Every decision names the policy id, version and sha256."""
    d = evaluate(rules_policy, Stage.PROMPT, [result()])
    assert (d.policy_id, d.policy_version, d.policy_sha256) == ("rules-only", "t1", rules_policy.sha256)


def test_image_blur_collects_boxes(rules_policy: Policy) -> None:
    """An image blur in regions mode carries the boxes of the categories that blurred."""
    boxes = (Evidence(label="sexual", score=0.6, rule="nudenet:X", box=(1, 2, 3, 4)),)
    r = ClassifierResult(classifier="nudenet", scores={"sexual": 0.6}, evidence=boxes)
    d = evaluate(rules_policy, Stage.IMAGE, [r])
    assert d.action is Action.BLUR and d.allowed and d.blur_boxes == ((1, 2, 3, 4),)


def test_image_minors_rule_blocks_mild_nudity(rules_policy: Policy) -> None:
    """After a prompt with a minor cue, any nudity score over the floor blocks the image."""
    prompt = evaluate(rules_policy, Stage.PROMPT, [result(minors=0.9)])
    d = evaluate(rules_policy, Stage.IMAGE, [result(sexual=MINORS_NUDITY_FLOOR)], prompt_decision=prompt)
    assert d.action is Action.BLOCK and any(r.code == "minors_rule" for r in d.reasons)


def test_image_without_minor_cue_follows_policy(rules_policy: Policy) -> None:
    """The same mild score without a minor cue is only flagged."""
    prompt = evaluate(rules_policy, Stage.PROMPT, [result(minors=0.0)])
    d = evaluate(rules_policy, Stage.IMAGE, [result(sexual=0.25)], prompt_decision=prompt)
    assert d.action is Action.FLAG


def test_unknown_labels_are_ignored(rules_policy: Policy) -> None:
    """A label outside the taxonomy (an operator model's extra class) never changes the decision."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(**{"not a category": 1.0})])
    assert d.action is Action.ALLOW and "not a category" not in d.category_scores


def test_sub_category_raises_its_parent(rules_policy: Policy) -> None:
    """A violence/graphic score also counts as violence, like OpenAI's categories."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(violence_graphic=0.7)])
    assert d.category_scores["violence"] == 0.7


def test_image_minors_rule_flags_covered_parts(rules_policy: Policy) -> None:
    """After a prompt with a minor cue, a suggestive (covered parts) image is flagged for review."""
    prompt = evaluate(rules_policy, Stage.PROMPT, [result(minors=0.9)])
    d = evaluate(rules_policy, Stage.IMAGE, [result(suggestive=0.6)], prompt_decision=prompt)
    assert d.action is Action.FLAG
    assert d.reasons[0].code == "minors_rule"


def _weak(floor: float = 0.05, **weak: float) -> ClassifierResult:
    """A lexicon-like result whose scores rest on topic words only."""
    return ClassifierResult(
        classifier="lexicon", weak_scores={k.replace("_", "/"): v for k, v in weak.items()}, corroboration_floor=floor
    )


def test_weak_score_counts_when_a_model_corroborates(rules_policy: Policy) -> None:
    """A topic word blocks when the model also sees the category, even below the model's own thresholds."""
    d = evaluate(rules_policy, Stage.PROMPT, [_weak(sexual=0.6), result("model", sexual=0.06)])
    assert d.action is Action.BLOCK and d.category_scores["sexual"] == 0.6 and d.reasons[0].classifier == "lexicon"


def test_weak_score_is_dropped_when_the_model_scores_the_category_near_zero(rules_policy: Policy) -> None:
    """'an assault rifle on a gun store wall': the word is there, the model sees no violence."""
    d = evaluate(rules_policy, Stage.PROMPT, [_weak(sexual=0.6), result("model", sexual=0.01)])
    assert d.action is Action.ALLOW and d.category_scores["sexual"] == 0.01


def test_weak_score_stands_when_no_other_classifier_scores_the_category(rules_policy: Policy) -> None:
    """With no model for the category (a rules-only policy), a topic word acts on its weight as before."""
    d = evaluate(rules_policy, Stage.PROMPT, [_weak(sexual=0.6), result("names", **{"public-figure": 0.9})])
    assert d.action is Action.BLOCK and d.category_scores["sexual"] == 0.6


def test_a_subcategory_score_corroborates_its_parent(rules_policy: Policy) -> None:
    """The model's violence/graphic score confirms a weak violence score, as the taxonomy nests them."""
    d = evaluate(rules_policy, Stage.PROMPT, [_weak(violence=0.6), result("model", violence_graphic=0.2, violence=0.0)])
    assert d.category_scores["violence"] == 0.6


def test_a_failed_model_corroborates_nothing_but_still_blocks(rules_policy: Policy) -> None:
    """A model that errored neither confirms nor vetoes a topic word; the request fails closed anyway."""
    failed = ClassifierResult(classifier="model", error="boom")
    d = evaluate(rules_policy, Stage.PROMPT, [_weak(sexual=0.6), failed])
    assert d.action is Action.BLOCK and d.category_scores["sexual"] == 0.6


def test_sexual_minors_is_never_weak(rules_policy: Policy) -> None:
    """The hard-block category cannot be vetoed by a model: its weak score is taken as a full one."""
    weak = ClassifierResult(classifier="lexicon", scores={"sexual/minors": 0.9}, weak_scores={"sexual/minors": 0.95})
    d = evaluate(rules_policy, Stage.PROMPT, [weak, result("model", **{"sexual/minors": 0.0})])
    assert d.action is Action.BLOCK and d.category_scores["sexual/minors"] == 0.9


def test_the_minors_rule_reads_sexual_topic_words_the_model_did_not_confirm(rules_policy: Policy) -> None:
    """Corroboration never makes the hard block easier to pass: a sexual topic word with a minor cue
    blocks as sexual/minors even when the model's sexual score is near zero."""
    d = evaluate(rules_policy, Stage.PROMPT, [_weak(sexual=0.5), result("model", sexual=0.0, minors=0.9)])
    assert d.action is Action.BLOCK and "sexual/minors" in d.categories
    assert d.category_scores["sexual"] == 0.0 and d.category_scores["sexual/minors"] == 0.5


def test_the_adult_reading_blocks_a_prompt_the_model_scores_low_once_a_child_is_named(rules_policy: Policy) -> None:
    """A prompt naming a child that the model scores low as written ("explicit photo of a 12 year old":
    sexual 0.09) blocks when its adult reading scores sexual (0.94)."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.09, minors=1.0, **{"sexual-if-adult": 0.94})])
    assert d.action is Action.BLOCK and d.category_scores["sexual/minors"] == 0.94
    reason = next(r for r in d.reasons if r.category == "sexual/minors")
    assert reason.code == "minors_rule" and "read as about adults" in reason.message


def test_the_adult_reading_counts_only_from_the_policys_sexual_flag_threshold(rules_policy: Policy) -> None:
    """Below the policy's lowest sexual threshold (0.3 here) the adult reading is an ordinary scene."""
    below = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.0, minors=1.0, **{"sexual-if-adult": 0.29})])
    at = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.0, minors=1.0, **{"sexual-if-adult": 0.3})])
    assert below.action is Action.ALLOW and at.action is Action.BLOCK


def test_the_adult_reading_needs_a_real_minor_cue(rules_policy: Policy) -> None:
    """A weak cue ("girl" alone, 0.25) is no minor: its adult reading does not make a hard block."""
    d = evaluate(rules_policy, Stage.PROMPT, [result(sexual=0.0, minors=0.25, **{"sexual-if-adult": 0.95})])
    assert "sexual/minors" not in d.categories


def test_no_policy_can_lift_the_adult_reading_bar_above_its_cap() -> None:
    """A policy that tolerates adult content (sexual flagged only from 0.95) still hard-blocks a
    prompt naming a minor whose adult reading scores sexual 0.75."""
    assert adult_reading_bar(CategoryRule(flag=0.95)) == MINORS_ADULT_READING_MAX == 0.7
    assert adult_reading_bar(None) == MINORS_ADULT_READING_MAX
    assert adult_reading_bar(CategoryRule(flag=0.5, block=0.8)) == 0.5
    lenient = load_policy_text(
        'id: lenient\nversion: "1"\nprompt:\n  classifiers: [{name: minors}]\n  categories:\n'
        "    sexual: {flag: 0.95}\n    sexual/minors: {block: 0.3}\nimage:\n  classifiers: []\n",
        name="lenient.yaml",
    )
    d = evaluate(lenient, Stage.PROMPT, [result(sexual=0.1, minors=0.95, **{"sexual-if-adult": 0.75})])
    assert d.action is Action.BLOCK and "sexual/minors" in d.categories


def _language_policy(other: str) -> Policy:
    return load_policy_text(
        f'id: lang\nversion: "1"\nprompt:\n  classifiers: [{{name: minors}}, {{name: language}}]\n  languages: {{other: {other}}}\n'
        "  categories:\n    sexual/minors: {block: 0.3}\nimage:\n  classifiers: []\n",
        name="lang.yaml",
    )


def test_a_prompt_in_another_language_gets_the_policys_action() -> None:
    """The classifiers read English: a French prompt is flagged or blocked as the policy says, with a reason."""
    lang = ClassifierResult(
        classifier="language",
        scores={"other-language": 0.97},
        evidence=(Evidence(label="other-language", score=0.97, rule="lang:fr"),),
    )
    flagged = evaluate(_language_policy("flag"), Stage.PROMPT, [lang])
    assert flagged.action is Action.FLAG and flagged.categories == ()
    (reason,) = flagged.reasons
    assert reason.code == "other_language" and "'fr'" in reason.message and "en only" in reason.message
    assert evaluate(_language_policy("block"), Stage.PROMPT, [lang]).action is Action.BLOCK
    assert evaluate(_language_policy("allow"), Stage.PROMPT, [lang]).action is Action.ALLOW


def test_a_prompt_below_the_language_floor_is_english_for_the_policy() -> None:
    lang = ClassifierResult(classifier="language", scores={"other-language": OTHER_LANGUAGE_FLOOR - 0.01})
    assert evaluate(_language_policy("block"), Stage.PROMPT, [lang]).action is Action.ALLOW
