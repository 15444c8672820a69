"""The policy engine: classifier measurements in, one `Decision` out. Pure: no I/O, no clock.

Two rules here are not the policy's to change: a failed classifier blocks (fail closed), and
sexual content involving minors blocks. In the prompt stage `sexual/minors` is also derived as
min(minors cue, sexual score), and as min(minors cue, sexual-if-adult) when the prompt read as
about adults would be flagged as sexual; in the image stage, any nudity blocks when the prompt
carried a minors cue.
"""

from __future__ import annotations

from collections.abc import Sequence

from moderation.policy import CategoryRule, Policy
from moderation.taxonomy import HARD_BLOCK, HARD_BLOCK_MAX_THRESHOLD, LABELS, PARENT, Category, Signal
from moderation.types import Action, ClassifierResult, Decision, Evidence, Reason, Stage, most_severe

# A prompt whose minors signal reaches this is treated as depicting a minor.
MINORS_CUE_FLOOR = 0.5
# The prompt read as about adults (Signal.SEXUAL_IF_ADULT) counts towards sexual/minors from the
# policy's lowest prompt-stage sexual threshold ("what would be flagged for an adult is blocked for
# a minor"), but never from above this, so no policy can lift the rule by raising its sexual
# thresholds. With the default policy (sexual flag 0.45, chosen on validation) it changes one
# decision on the 267 validation rows read as adults (an unsafe row, allow -> block), and one
# benign chat line on the evaluation sets (bench/adult_reading.py, docs/evaluation.md).
MINORS_ADULT_READING_MAX = 0.7
# A prompt whose other-language signal reaches this gets the policy's `prompt.languages.other`
# action. Both detectors must read it as unsupported on both forms (classifiers/language.py). At
# this floor they mark 1 of 10,683 benign English T2I prompts (a garbled COCO caption), 0 of the
# 590 everyday and look-alike T2I prompts, and 32 of 34 other-language prompts; at 0.8 and 0.85
# they also mark short English prompts ("black hi-top sneakers") (bench/language_eval.py).
OTHER_LANGUAGE_FLOOR = 0.9
# Image stage, after a minors cue: a sexual (nudity) score at or above this blocks.
MINORS_NUDITY_FLOOR = 0.15
# ... and a suggestive signal (covered parts) at or above this is flagged for review.
MINORS_SUGGESTIVE_FLOOR = 0.5

_CATEGORIES = frozenset(c.value for c in Category)
_SIGNALS = frozenset(s.value for s in Signal)


def _best_evidence(
    results: Sequence[ClassifierResult], effective: Sequence[dict[str, float]], label: str
) -> tuple[ClassifierResult, Evidence | None]:
    """The working classifier with the top score for `label`, and its strongest evidence for it."""
    working = [k for k, r in enumerate(results) if r.error is None]
    i = max(working, key=lambda k: effective[k].get(label, 0.0))
    evidence = [e for e in results[i].evidence if e.label == label]
    return results[i], max(evidence, key=lambda e: e.score, default=None)


def _family(label: str) -> tuple[str, ...]:
    """A category and its subcategories: a model's `violence/graphic` score corroborates `violence`."""
    return (label, *(child.value for child, parent in PARENT.items() if parent.value == label))


def effective_scores(results: Sequence[ClassifierResult]) -> list[dict[str, float]]:
    """Each result's scores with its corroborated weak scores added.

    A weak score (a word-list topic word) stands only if another classifier scores the same category
    at least the floor the weak score carries, or if no other classifier scores that category: a
    topic word is evidence for the model to confirm, not a verdict, wherever a model can confirm it.
    A failed classifier confirms nothing (and blocks the request anyway).
    """
    out = []
    for i, result in enumerate(results):
        scores = dict(result.scores)
        for label, weak in result.weak_scores.items():
            if label == Category.SEXUAL_MINORS.value or weak <= scores.get(label, 0.0):
                continue  # the hard-block category is never weak; a stronger score already stands
            others = [
                other.scores[name]
                for k, other in enumerate(results)
                if k != i and other.error is None
                for name in _family(label)
                if name in other.scores
            ]
            if not others or max(others) >= result.corroboration_floor:
                scores[label] = weak
        out.append(scores)
    return out


def _effective_rule(category: Category, rule: CategoryRule | None) -> CategoryRule | None:
    if category not in HARD_BLOCK:
        return rule
    block = (
        HARD_BLOCK_MAX_THRESHOLD if rule is None or rule.block is None else min(rule.block, HARD_BLOCK_MAX_THRESHOLD)
    )
    return CategoryRule(block=block)


def _merge_scores(
    results: Sequence[ClassifierResult], effective: Sequence[dict[str, float]]
) -> tuple[dict[str, float], dict[str, float]]:
    scores: dict[str, float] = {}
    signals: dict[str, float] = {}
    for result, result_scores in zip(results, effective, strict=True):
        if result.error is not None:
            continue
        for label, value in result_scores.items():
            if label not in LABELS:
                continue  # an operator model's unmapped label: not ours to act on
            target = signals if label in _SIGNALS else scores
            target[label] = max(target.get(label, 0.0), float(value))
    for child, parent in PARENT.items():  # "violence/graphic" is also "violence", as in OpenAI's scores
        if child.value in scores:
            scores[parent.value] = max(scores.get(parent.value, 0.0), scores[child.value])
    return scores, signals


def adult_reading_bar(sexual_rule: CategoryRule | None) -> float:
    """Where the adult reading's sexual score starts to count: see MINORS_ADULT_READING_MAX."""
    thresholds = (
        [t for t in (sexual_rule.flag, sexual_rule.blur, sexual_rule.block) if t is not None] if sexual_rule else []
    )
    return min([MINORS_ADULT_READING_MAX, *thresholds])


def _minors_rule(
    scores: dict[str, float],
    signals: dict[str, float],
    ok_results: Sequence[ClassifierResult],
    sexual_rule: CategoryRule | None,
) -> Reason | None:
    """Derive sexual/minors from a minor cue and a sexual score; updates `scores` in place."""
    minors = signals.get(Signal.MINORS, 0.0)
    # The hard-block rule reads sexual topic words whether or not a model confirmed them: the
    # corroboration rule must not make the hard block any easier to pass than it was.
    sexual = max([scores.get(Category.SEXUAL, 0.0)] + [r.weak_scores.get(Category.SEXUAL, 0.0) for r in ok_results])
    derived, message = min(minors, sexual), "sexual content combined with a minor cue"
    as_adult = signals.get(Signal.SEXUAL_IF_ADULT, 0.0)
    if minors >= MINORS_CUE_FLOOR and as_adult >= adult_reading_bar(sexual_rule) and min(minors, as_adult) > derived:
        derived = min(minors, as_adult)
        message = f"names a minor, and read as about adults it scores sexual {as_adult:.2f}"
    if derived <= scores.get(Category.SEXUAL_MINORS, 0.0):
        return None
    scores[Category.SEXUAL_MINORS] = derived
    return Reason(
        code="minors_rule",
        category=Category.SEXUAL_MINORS,
        action=Action.BLOCK,
        score=derived,
        message=message,
    )


def _language_rule(policy: Policy, signals: dict[str, float], ok_results: Sequence[ClassifierResult]) -> Reason | None:
    """The policy's action for a prompt in a language its classifiers do not read, or None."""
    score = signals.get(Signal.OTHER_LANGUAGE, 0.0)
    rule = policy.prompt.languages
    if score < OTHER_LANGUAGE_FLOOR or rule.other == "allow":
        return None
    source = max(ok_results, key=lambda r: r.scores.get(Signal.OTHER_LANGUAGE, 0.0))
    evidence = next((e for e in source.evidence if e.label == Signal.OTHER_LANGUAGE and e.rule), None)
    read_as = evidence.rule.removeprefix("lang:") if evidence and evidence.rule else "another language"
    what = "part of the prompt" if evidence is not None and evidence.span is not None else "the prompt"
    return Reason(
        code="other_language",
        action=Action(rule.other),
        classifier=source.classifier,
        rule=f"languages.other:{rule.other}",
        score=score,
        threshold=OTHER_LANGUAGE_FLOOR,
        matched=evidence.span.text.strip() if evidence is not None and evidence.span is not None else None,
        message=f"{what} reads as {read_as!r}; the prompt classifiers cover {', '.join(rule.supported)} only",
    )


def evaluate(
    policy: Policy,
    stage: Stage,
    results: Sequence[ClassifierResult],
    *,
    prompt_decision: Decision | None = None,
    latency_ms: float = 0.0,
) -> Decision:
    effective = effective_scores(results)
    scores, signals = _merge_scores(results, effective)
    reasons: list[Reason] = []
    actions: list[Action] = [Action.ALLOW]
    triggered: list[str] = []
    ok_results = [r for r in results if r.error is None]

    for result in results:
        if result.error is not None:
            actions.append(Action.BLOCK)
            reasons.append(
                Reason(
                    code="classifier_error",
                    action=Action.BLOCK,
                    classifier=result.classifier,
                    message=f"classifier {result.classifier} failed: {result.error}; failing closed",
                )
            )

    rules = policy.rules(stage)
    derived_minors: Reason | None = None
    if stage is Stage.PROMPT:
        derived_minors = _minors_rule(scores, signals, ok_results, rules.get(Category.SEXUAL))
        language = _language_rule(policy, signals, ok_results)
        if language is not None:
            actions.append(language.action)
            reasons.append(language)

    for category in Category:
        score = scores.get(category)
        rule = _effective_rule(category, rules.get(category))
        if score is None or rule is None:
            continue
        hit = rule.triggered(score)
        if hit is None:
            continue
        action, threshold = hit
        if stage is Stage.PROMPT and action is Action.BLUR:
            action = Action.BLOCK  # a prompt cannot be blurred; policy validation forbids it anyway
        actions.append(action)
        triggered.append(category.value)
        if category is Category.SEXUAL_MINORS and derived_minors is not None:
            reasons.append(derived_minors.model_copy(update={"threshold": threshold}))
            continue
        top, evidence = _best_evidence(results, effective, category.value) if ok_results else (None, None)
        reasons.append(
            Reason(
                code="hard_block" if category in HARD_BLOCK else "threshold",
                category=category.value,
                action=action,
                classifier=top.classifier if top else None,
                rule=evidence.rule if evidence else None,
                score=round(score, 6),
                threshold=threshold,
                matched=evidence.span.text if evidence and evidence.span else None,
                message=f"{category.value} score {score:.2f} >= {action.value} threshold {threshold:.2f}",
            )
        )

    minor_cue = (
        stage is Stage.IMAGE
        and prompt_decision is not None
        and prompt_decision.signals.get(Signal.MINORS, 0.0) >= MINORS_CUE_FLOOR
    )
    if minor_cue and scores.get(Category.SEXUAL, 0.0) >= MINORS_NUDITY_FLOOR:
        actions.append(Action.BLOCK)
        if Category.SEXUAL_MINORS.value not in triggered:
            triggered.append(Category.SEXUAL_MINORS.value)
        reasons.append(
            Reason(
                code="minors_rule",
                category=Category.SEXUAL_MINORS.value,
                action=Action.BLOCK,
                score=scores[Category.SEXUAL],
                threshold=MINORS_NUDITY_FLOOR,
                message="nudity in an image whose prompt mentions a minor",
            )
        )
    elif minor_cue and signals.get(Signal.SUGGESTIVE, 0.0) >= MINORS_SUGGESTIVE_FLOOR:
        actions.append(Action.FLAG)  # covered body parts are not nudity, but a person should look
        reasons.append(
            Reason(
                code="minors_rule",
                category=Category.SEXUAL_MINORS.value,
                action=Action.FLAG,
                score=signals[Signal.SUGGESTIVE],
                threshold=MINORS_SUGGESTIVE_FLOOR,
                message="suggestive image (covered body parts) whose prompt mentions a minor",
            )
        )

    action = most_severe(actions)
    blur_boxes: tuple[tuple[int, int, int, int], ...] = ()
    if action is Action.BLUR and policy.image.blur.mode == "regions":
        blurring = {r.category: r.threshold or 0.0 for r in reasons if r.action is Action.BLUR}
        boxed = [e for r in ok_results for e in r.evidence if e.box is not None and e.label in blurring]
        # Regions suffice only if, per blurring category, a box alone reaches the blur threshold; a blur
        # raised by a whole-image score (open-NSFW) leaves no boxes, and the renderer covers everything.
        if all(any(e.label == c and e.score >= t for e in boxed) for c, t in blurring.items()):
            blur_boxes = tuple(e.box for e in boxed if e.box is not None)
    return Decision(
        stage=stage,
        action=action,
        allowed=action is not Action.BLOCK,
        categories=tuple(triggered),
        category_scores={k: round(v, 6) for k, v in sorted(scores.items())},
        signals={k: round(v, 6) for k, v in sorted(signals.items())},
        reasons=tuple(sorted(reasons, key=lambda r: -r.action.severity)),
        policy_id=policy.id,
        policy_version=policy.version,
        policy_sha256=policy.sha256,
        classifiers=tuple(f"{r.classifier}@{r.version}" for r in results),
        blur_boxes=blur_boxes,
        latency_ms=round(latency_ms, 3),
    )
