"""The moderator runs classifiers under a deadline and fails closed."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from moderation.moderator import InputError, Moderator
from moderation.normalise import NormalisedText
from moderation.policy import Policy, load_policy_text
from moderation.types import Action, ClassifierResult, Stage

STANDIN_POLICY = """
id: standin
prompt:
  timeout_s: 0.3
  classifiers: [{name: lexicon}]
  categories:
    sexual: {block: 0.5}
    sexual/minors: {block: 0.3}
max_prompt_chars: 50
"""


class RaisingClassifier:
    """Test stand-in for a classifier whose model crashed."""

    name, version, stage = "lexicon", "standin", Stage.PROMPT

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        raise RuntimeError("model exploded")


class HangingClassifier:
    """Test stand-in for a classifier that never answers."""

    name, version, stage = "lexicon", "standin", Stage.PROMPT

    def __init__(self) -> None:
        self.release = threading.Event()

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        self.release.wait(5)
        return [ClassifierResult(classifier=self.name) for _ in texts]


class ShortClassifier:
    """Test stand-in for a classifier that returns fewer results than inputs."""

    name, version, stage = "lexicon", "standin", Stage.PROMPT

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        return []


class InlineClassifier:
    """Test stand-in for a cheap pure-Python classifier (`inline = True`) that records its thread."""

    name, version, stage, inline = "lexicon", "standin", Stage.PROMPT, True

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.threads: list[threading.Thread] = []

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        self.threads.append(threading.current_thread())
        if self.fail:
            raise RuntimeError("rule table corrupt")
        return [ClassifierResult(classifier=self.name, scores={"sexual": 0.9}) for _ in texts]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(STANDIN_POLICY)


def test_raising_classifier_blocks(policy: Policy) -> None:
    """An exception inside a classifier is a block with reason classifier_error."""
    d = Moderator(policy, classifiers={"lexicon": RaisingClassifier()}).check_prompt("a cat")
    assert d.action is Action.BLOCK and d.reasons[0].code == "classifier_error"
    assert "model exploded" in d.reasons[0].message


def test_inline_classifiers_run_in_the_callers_thread(policy: Policy) -> None:
    """An `inline` classifier skips the pool: it runs in the request's thread and its scores count."""
    inline = InlineClassifier()
    d = Moderator(policy, classifiers={"lexicon": inline}).check_prompt("a cat")
    assert inline.threads == [threading.current_thread()]
    assert d.action is Action.BLOCK and d.reasons[0].category == "sexual"


def test_raising_inline_classifier_blocks(policy: Policy) -> None:
    """An exception in an inline classifier fails closed like one in the pool."""
    d = Moderator(policy, classifiers={"lexicon": InlineClassifier(fail=True)}).check_prompt("a cat")
    assert d.action is Action.BLOCK and d.reasons[0].code == "classifier_error"
    assert "rule table corrupt" in d.reasons[0].message


def test_hanging_classifier_times_out_and_blocks(policy: Policy) -> None:
    """A classifier past its time limit blocks instead of holding the request."""
    hanging = HangingClassifier()
    try:
        d = Moderator(policy, classifiers={"lexicon": hanging}).check_prompt("a cat")
    finally:
        hanging.release.set()
    assert d.action is Action.BLOCK and "timed out" in d.reasons[0].message


def test_wrong_result_count_blocks(policy: Policy) -> None:
    """A classifier that loses inputs is treated as failed."""
    d = Moderator(policy, classifiers={"lexicon": ShortClassifier()}).check_prompt("a cat")
    assert d.action is Action.BLOCK


def test_unloadable_classifier_blocks() -> None:
    """A classifier that cannot be built (missing model dir) blocks every request."""
    policy = load_policy_text(
        STANDIN_POLICY.replace("[{name: lexicon}]", "[{name: hf_sequence, options: {path: /nonexistent}}]")
    )
    d = Moderator(policy).check_prompt("a cat")
    assert d.action is Action.BLOCK and d.reasons[0].code == "classifier_error"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "empty"), ("   ", "empty"), ("x" * 51, "at most 50"), ("a\x00b", r"U\+0000"), (None, "must be a string")],
)
def test_invalid_prompts_raise(policy: Policy, prompt: object, message: str) -> None:
    """Empty, over-long, control-character and non-string prompts are refused with a reason."""
    with pytest.raises(InputError, match=message):
        Moderator(policy).check_prompt(prompt)  # type: ignore[arg-type]


def test_batch_error_names_index(policy: Policy) -> None:
    """In a batch, the error says which prompt was bad."""
    with pytest.raises(InputError, match="prompt 1"):
        Moderator(policy).check_prompts(["a cat", ""])


def test_batch_returns_one_decision_per_prompt_in_order(rules_policy: Policy) -> None:
    """Decisions come back aligned with the prompts."""
    decisions = Moderator(rules_policy).check_prompts(["a watercolor lighthouse", "a nude woman", "a red apple"])
    assert [d.action for d in decisions] == [Action.ALLOW, Action.BLOCK, Action.ALLOW]


def test_required_audit_is_enforced() -> None:
    """A policy that requires an audit log refuses to run without one."""
    policy = load_policy_text(STANDIN_POLICY + "audit: {required: true}\n")
    with pytest.raises(ValueError, match="requires an audit log"):
        Moderator(policy)


def test_timeout_scales_with_batch_size(policy: Policy) -> None:
    """The policy's time limit covers 64 prompts; a bigger batch gets proportionally longer."""
    slow = SlowClassifier(per_item_s=0.002)
    decisions = Moderator(policy, classifiers={"lexicon": slow}).check_prompts(["a cat"] * 256)
    assert all(d.action is Action.ALLOW for d in decisions)


class SlowClassifier:
    """Test stand-in for a classifier whose cost grows with the batch (0.5 s for 256 items > 0.3 s limit)."""

    name, version, stage = "lexicon", "standin", Stage.PROMPT

    def __init__(self, per_item_s: float) -> None:
        self.per_item_s = per_item_s

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        import time

        time.sleep(self.per_item_s * len(texts))
        return [ClassifierResult(classifier=self.name) for _ in texts]
