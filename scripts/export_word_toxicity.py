"""Export alt-profanity-check's model to plain arrays: classifiers/assets/word_toxicity.npz.

    .venv/bin/python scripts/export_word_toxicity.py

alt-profanity-check (MIT) ships a scikit-learn TF-IDF vectoriser and a CalibratedClassifierCV of
LinearSVCs as joblib pickles, which tie the reader to one scikit-learn version. fluxwarden applies the
same model with numpy (classifiers/word_toxicity.py); tests/test_word_toxicity.py checks the two agree.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from classifiers.word_toxicity import WORD_MODEL_FILE, WordToxicityModel  # noqa: E402


def from_profanity_check() -> WordToxicityModel:
    from profanity_check import profanity_check as pc

    vectorizer, model = pc.vectorizer, pc.model
    params = vectorizer.get_params()
    expected = {"analyzer": "word", "lowercase": True, "ngram_range": (1, 1), "norm": "l2", "use_idf": True,
                "binary": False, "sublinear_tf": False, "token_pattern": r"(?u)\b\w\w+\b", "strip_accents": None}  # fmt: skip
    drift = {k: params[k] for k in expected if params[k] != expected[k]}
    if drift or model.method != "sigmoid":
        raise SystemExit(
            f"alt-profanity-check's model changed shape ({drift or model.method}); update word_toxicity.py"
        )
    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    folds = model.calibrated_classifiers_
    return WordToxicityModel(
        vocab=tuple(vocab),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coef=np.stack([f.estimator.coef_[0] for f in folds]).astype(np.float64),
        intercept=np.asarray([f.estimator.intercept_[0] for f in folds], dtype=np.float64),
        calib_a=np.asarray([f.calibrators[0].a_ for f in folds], dtype=np.float64),
        calib_b=np.asarray([f.calibrators[0].b_ for f in folds], dtype=np.float64),
    )


def main() -> None:
    out = REPO / "classifiers" / "assets" / WORD_MODEL_FILE
    model = from_profanity_check()
    model.save(out)
    print(
        f"wrote {out} ({out.stat().st_size} bytes) from alt-profanity-check {metadata.version('alt-profanity-check')}"
    )


if __name__ == "__main__":
    main()
