"""The preset policies carry the thresholds the shipped head's training chose on validation data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.apply_thresholds import METRICS, PRESETS, lexicon_options, rewrite

POLICIES = Path(__file__).resolve().parents[1] / "policies"


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_is_in_step_with_the_shipped_head(preset: str) -> None:
    """`scripts/apply_thresholds.py` would change nothing: retraining without re-applying fails here."""
    metrics = json.loads(METRICS.read_text())
    text = (POLICIES / f"{preset}.yaml").read_text()
    assert (
        rewrite(text, metrics["thresholds_from_val"][preset], metrics["meta"]["version"], lexicon_options(metrics))
        == text
    )


def test_rewrite_touches_only_the_prompt_section() -> None:
    """The image stage's `sexual` line and the actions a preset omits stay as they are."""
    text = (
        "prompt:\n  categories:\n    # ... for head old-head:\n    sexual: {flag: 0.7}\n"
        "    hate: {flag: 0.4, block: 0.6}  # note\nimage:\n  categories:\n    sexual: {flag: 0.5}\n"
    )
    new = rewrite(text, {"sexual": {"flag": 0.55, "block": 0.8}, "hate": {"flag": 0.3, "block": 0.5}}, "v2")
    assert "    sexual: {flag: 0.55}\n" in new  # block not added: the preset only flags
    assert "    hate: {flag: 0.3, block: 0.5}  # note\n" in new
    assert new.endswith("image:\n  categories:\n    sexual: {flag: 0.5}\n")


def test_rewrite_sets_the_lexicon_options_in_place() -> None:
    text = "prompt:\n  classifiers:\n    - {name: lexicon, options: {cap: 1}}  # why\n    - name: names\n"
    assert rewrite(text, {}, "v2", {"cap": 0.95}) == text.replace("cap: 1}", "cap: 0.95}")
    both = rewrite(text, {}, "v2", {"cap": 0.95, "corroborate_below": 0.8, "corroborate_at": 0.05})
    assert both == text.replace("cap: 1}", "cap: 0.95, corroborate_below: 0.8, corroborate_at: 0.05}")
    assert rewrite(both, {}, "v2", {"corroborate_at": 0.1}) == both.replace("at: 0.05", "at: 0.1")
    assert rewrite(text, {}, "v2", None) == text
    assert rewrite(text, {}, "v2", {}) == text
