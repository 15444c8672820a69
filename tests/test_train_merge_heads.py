"""The training script's head ensemble ships as one wider MLP whose logits are the heads' mean."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.embedding import PromptHead
from scripts.train_prompt_head import blend_shares, merge_heads


def _head(rng: np.random.Generator, n_in: int = 8, hidden: int = 5, n_out: int = 3) -> tuple[list, list]:
    weights = [rng.normal(size=(n_in, hidden)).astype(np.float32), rng.normal(size=(hidden, n_out)).astype(np.float32)]
    return weights, [rng.normal(size=hidden).astype(np.float32), rng.normal(size=n_out).astype(np.float32)]


def _logits(weights: list, biases: list, x: np.ndarray) -> np.ndarray:
    n_out = weights[-1].shape[1]
    head = PromptHead(tuple(f"c{i}" for i in range(n_out)), tuple(weights), tuple(biases),
                      np.ones(n_out), np.zeros(n_out), {"version": "t"})  # fmt: skip
    return head.logits(x)


def test_merged_head_logits_are_the_mean_of_the_heads() -> None:
    rng = np.random.default_rng(0)
    heads = [_head(rng) for _ in range(3)]
    x = rng.normal(size=(10, 8)).astype(np.float32)
    merged_w, merged_b = merge_heads(heads)
    assert merged_w[0].shape == (8, 15) and merged_w[1].shape == (15, 3)
    expected = np.mean([_logits(w, b, x) for w, b in heads], axis=0)
    np.testing.assert_allclose(_logits(merged_w, merged_b, x), expected, rtol=1e-5, atol=1e-5)


def test_one_head_is_returned_as_is_and_deeper_heads_are_refused() -> None:
    rng = np.random.default_rng(1)
    head = _head(rng)
    assert merge_heads([head]) is head
    deep = ([*head[0], head[0][1]], [*head[1], head[1][1]])
    with pytest.raises(ValueError, match="one-hidden-layer"):
        merge_heads([deep, deep])


def test_shares_weight_the_heads_logits() -> None:
    rng = np.random.default_rng(2)
    heads = [_head(rng) for _ in range(2)]
    x = rng.normal(size=(10, 8)).astype(np.float32)
    merged_w, merged_b = merge_heads(heads, [0.25, 0.75])
    expected = 0.25 * _logits(*heads[0], x) + 0.75 * _logits(*heads[1], x)
    np.testing.assert_allclose(_logits(merged_w, merged_b, x), expected, rtol=1e-5, atol=1e-5)
    # A blend of a blend: an ensemble merged first and then blended with another head.
    inner = merge_heads([_head(rng), _head(rng)])
    merged_w, merged_b = merge_heads([heads[0], inner], [0.5, 0.5])
    expected = 0.5 * _logits(*heads[0], x) + 0.5 * _logits(*inner, x)
    np.testing.assert_allclose(_logits(merged_w, merged_b, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shares", [[0.5], [0.7, 0.7], [-0.5, 1.5]])
def test_bad_shares_are_refused(shares: list[float]) -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="shares"):
        merge_heads([_head(rng), _head(rng)], shares)


def test_per_category_shares_keep_one_heads_logits_for_some_categories() -> None:
    rng = np.random.default_rng(4)
    heads = [_head(rng), _head(rng)]
    x = rng.normal(size=(10, 8)).astype(np.float32)
    shares = blend_shares(("c0", "c1", "c2"), 0.5, keep=("c1",))
    np.testing.assert_allclose(shares, [[0.5, 1.0, 0.5], [0.5, 0.0, 0.5]])
    merged = _logits(*merge_heads(heads, shares), x)
    first, second = _logits(*heads[0], x), _logits(*heads[1], x)
    np.testing.assert_allclose(
        merged[:, [0, 2]], 0.5 * first[:, [0, 2]] + 0.5 * second[:, [0, 2]], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(merged[:, 1], first[:, 1], rtol=1e-5, atol=1e-5)


def test_per_category_shares_must_sum_to_one_per_category_and_name_known_categories() -> None:
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="per category"):
        merge_heads([_head(rng), _head(rng)], [[0.5, 1.0, 0.5], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="unknown categories"):
        blend_shares(("c0", "c1"), 0.5, keep=("self harm",))


def test_blend_keep_without_blend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import train_prompt_head

    monkeypatch.setattr("sys.argv", ["train_prompt_head.py", "--blend-keep", "sexual", "--no-write"])
    with pytest.raises(SystemExit):
        train_prompt_head.parse_args()
    monkeypatch.setattr("sys.argv", ["train_prompt_head.py", "--blend", "h.npz", "--blend-keep", "sexual, violence"])
    assert train_prompt_head.parse_args().blend_keep == ("sexual", "violence")
