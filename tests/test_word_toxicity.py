"""The word toxicity model: numpy port equals alt-profanity-check, and the head stacks it per category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.embedding import HEAD_FILE, PromptHead, assets_dir
from classifiers.word_toxicity import WORD_MODEL_FILE, WordToxicityModel

TEXTS = [
    "a lighthouse at dawn, oil painting",
    "you are a worthless idiot and everyone hates you",
    "shut the f*** up, moron",
    "",
    "!!! ???",
    "Ünïcode façade naïve CAFÉ",
    "kill the python process that hangs",
    "word " * 500,
]


@pytest.fixture(scope="module")
def model() -> WordToxicityModel:
    return WordToxicityModel.load(assets_dir() / WORD_MODEL_FILE)


def test_port_equals_alt_profanity_check(model: WordToxicityModel) -> None:
    """Same probabilities as the scikit-learn original it was exported from (a dev dependency)."""
    pc = pytest.importorskip("profanity_check")
    np.testing.assert_allclose(model.probabilities(TEXTS), pc.predict_prob(TEXTS), atol=1e-6)


def test_insults_score_above_ordinary_text(model: WordToxicityModel) -> None:
    """The model is really running: an insult scores far above a landscape prompt."""
    p = model.probabilities(["you are a worthless idiot", "a lighthouse at dawn"])
    assert p[0] > 0.8
    assert p[1] < 0.2


def test_text_without_known_words_gets_the_intercept_only(model: WordToxicityModel) -> None:
    """Empty or unknown-word text is scored, not an error, and scores the same as nothing."""
    empty, unknown = model.probabilities(["", "zzqxv qqqzz"])
    assert empty == pytest.approx(unknown)
    assert 0.0 < empty < 0.5


def test_logits_are_clipped(model: WordToxicityModel) -> None:
    """One text cannot push the stacked logit without bound."""
    z = model.logits(TEXTS)
    assert np.all(np.abs(z) <= np.log(1e4) + 1e-3)


def test_save_load_round_trip(model: WordToxicityModel, tmp_path: Path) -> None:
    model.save(tmp_path / "w.npz")
    again = WordToxicityModel.load(tmp_path / "w.npz")
    np.testing.assert_allclose(again.probabilities(TEXTS), model.probabilities(TEXTS), atol=1e-6)


def test_shape_mismatch_is_a_load_error(model: WordToxicityModel, tmp_path: Path) -> None:
    from classifiers.base import ClassifierLoadError

    np.savez(
        tmp_path / "bad.npz", vocab=np.asarray(model.vocab[:10]), idf=model.idf, coef=model.coef,
        intercept=model.intercept, calib_a=model.calib_a, calib_b=model.calib_b,
    )  # fmt: skip
    with pytest.raises(ClassifierLoadError, match="shapes"):
        WordToxicityModel.load(tmp_path / "bad.npz")


def test_shipped_head_stacks_the_word_model() -> None:
    """The shipped head names the word model and adds calib_word x its logit to every category."""
    head = PromptHead.load(assets_dir() / HEAD_FILE)
    assert head.has_word_model
    assert head.word_model_file == WORD_MODEL_FILE
    texts = ["you are a worthless idiot", "a lighthouse at dawn"]
    expected = head.word_model.logits(texts)[:, None] * head.calib_word  # type: ignore[union-attr]
    np.testing.assert_allclose(head.word_logits(texts), expected, rtol=1e-6)
    x = np.zeros((2, head.weights[0].shape[0]), dtype=np.float32)
    plain = head.probabilities(x)
    stacked = head.probabilities(x, head.word_logits(texts))
    harassment = head.categories.index("harassment")
    assert stacked[0, harassment] > plain[0, harassment]  # an insult raises harassment
