"""A word-level toxicity model (TF-IDF + calibrated linear SVMs) applied with plain numpy.

Sentence vectors blur a single decisive insult and cannot see vocabulary they were never trained on;
a bag-of-words model trained on some 200k toxic and clean comments sees exactly that. The weights
are alt-profanity-check's (MIT; Jigsaw toxic comments and Davidson tweets), exported once by
`scripts/export_word_toxicity.py`, so scikit-learn is not needed at run time. The embedding head
stacks this model's logit beside its own, with per-category weights fitted on validation data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifiers.base import ClassifierLoadError

WORD_MODEL_FILE = "word_toxicity.npz"
# scikit-learn's default token_pattern: two or more word characters.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class WordToxicityModel:
    """P(toxic) = mean over folds of sigmoid(-(a_k * (x . w_k + c_k) + b_k)), x = l2-normalised TF-IDF."""

    vocab: tuple[str, ...]
    idf: np.ndarray  # [V]
    coef: np.ndarray  # [folds, V]
    intercept: np.ndarray  # [folds]
    calib_a: np.ndarray  # [folds]
    calib_b: np.ndarray  # [folds]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.vocab)})

    @classmethod
    def load(cls, path: Path) -> WordToxicityModel:
        if not path.is_file():
            raise ClassifierLoadError(f"word toxicity model not found: {path}")
        with np.load(path, allow_pickle=False) as data:
            model = cls(
                vocab=tuple(str(t) for t in data["vocab"]),
                idf=data["idf"].astype(np.float64),
                coef=data["coef"].astype(np.float64),
                intercept=data["intercept"].astype(np.float64),
                calib_a=data["calib_a"].astype(np.float64),
                calib_b=data["calib_b"].astype(np.float64),
            )
        if model.coef.shape != (len(model.calib_a), len(model.vocab)) or model.idf.shape != (len(model.vocab),):
            raise ClassifierLoadError(f"word toxicity model {path.name}: array shapes do not match")
        return model

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            vocab=np.asarray(self.vocab),
            idf=self.idf.astype(np.float32),
            coef=self.coef.astype(np.float32),
            intercept=self.intercept,
            calib_a=self.calib_a,
            calib_b=self.calib_b,
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty(len(texts), dtype=np.float64)
        for row, text in enumerate(texts):
            counts = Counter(i for tok in _TOKEN.findall(text.lower()) if (i := self._index.get(tok)) is not None)
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tfidf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) * self.idf[idx]
                tfidf /= np.linalg.norm(tfidf)
                decision = self.coef[:, idx] @ tfidf + self.intercept
            else:
                decision = self.intercept.copy()
            out[row] = float(np.mean(1.0 / (1.0 + np.exp(self.calib_a * decision + self.calib_b))))
        return out

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """log-odds of `probabilities`, clipped so one word cannot dominate the stack without bound."""
        p = np.clip(self.probabilities(texts), 1e-4, 1 - 1e-4)
        return (np.log(p) - np.log1p(-p)).astype(np.float32)
