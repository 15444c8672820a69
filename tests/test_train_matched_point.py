"""A successor head's operating point can be set to keep the incumbent's recall (training script)."""

from __future__ import annotations

import numpy as np

from scripts.prompt_data import HEAD_CATEGORIES
from scripts.train_prompt_head import matched_point


def _rows(*scores: dict[str, float]) -> np.ndarray:
    out = np.zeros((len(scores), len(HEAD_CATEGORIES)), dtype=np.float32)
    for i, row in enumerate(scores):
        for cat, value in row.items():
            out[i, HEAD_CATEGORIES.index(cat)] = value
    return out


STACK = _rows(
    {"sexual": 0.6},  # unsafe T2I prompt
    {"violence": 0.5},  # unsafe text
    {"sexual": 0.405},  # benign rows the head over-reads
    {"violence": 0.455},
    {"hate": 0.9},  # a benign row no sexual/violence threshold can clear
)
UNSAFE = np.array([True, True, False, False, False])
T2I = np.array([True, False, False, False, False])
AT = np.full(len(HEAD_CATEGORIES), 0.3)


def test_the_lowest_thresholds_that_clear_the_most_negatives_at_the_incumbents_recall() -> None:
    needs = [(T2I, 1), (UNSAFE, 2)]
    assert matched_point(STACK, AT, unsafe=UNSAFE, needs=needs) == (1, 0.41, 0.46)


def test_recall_the_incumbent_had_is_never_given_up() -> None:
    # Only the unsafe T2I prompt must stay caught: violence may rise past the unsafe text's 0.5.
    assert matched_point(STACK, AT, unsafe=UNSAFE, needs=[(T2I, 1), (UNSAFE, 1)]) == (1, 0.41, 0.46)
    # More recall than any threshold gives: no point, so the caller keeps the budget thresholds.
    assert matched_point(STACK, AT, unsafe=UNSAFE, needs=[(T2I, 1), (UNSAFE, 3)]) is None


def test_a_per_source_need_keeps_each_sources_recall_not_only_the_total() -> None:
    stack = _rows({"sexual": 0.6}, {"violence": 0.6}, {"violence": 0.35}, {"sexual": 0.5}, {"violence": 0.5})
    unsafe = np.array([True, True, True, False, False])
    source_x = np.array([True, False, False, False, False])
    source_y = np.array([False, True, True, False, False])
    # In total, losing the weak violence prompt is fine: both benign rows are cleared.
    assert matched_point(stack, AT, unsafe=unsafe, needs=[(unsafe, 2)]) == (0, 0.51, 0.51)
    # Per source, source y keeps both of its prompts, so violence stays low.
    needs = [(unsafe, 2), (source_x, 1), (source_y, 2)]
    assert matched_point(stack, AT, unsafe=unsafe, needs=needs) == (1, 0.51, 0.3)
