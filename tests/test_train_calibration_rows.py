"""With --calibrate-on-real the head's calibration is fitted on real validation rows only, like its
thresholds: synthetic tagged copies would calibrate scores for a population no operator serves."""

from __future__ import annotations

import argparse

import numpy as np

from classifiers.embedding import PromptHead
from scripts.prompt_data import DERIVED_SOURCES, HEAD_CATEGORIES, Row
from scripts.train_prompt_head import fit_calibration, label_matrix


def _rows(rng: np.random.Generator, n: int, source: str) -> list[Row]:
    words = ["calm", "lake", "knife", "blood", "nude", "party", "idiot", "pills", "sunset", "hate"]
    rows = []
    for i in range(n):
        labels = {c: int(rng.random() < 0.3) for c in HEAD_CATEGORIES}
        rows.append(Row(f"{' '.join(rng.choice(words, 5))} {i}", source, labels, "val"))
    return rows


def test_tagged_copies_do_not_move_the_calibration() -> None:
    rng = np.random.default_rng(0)
    real = _rows(rng, 120, "written")
    tagged = _rows(rng, 200, DERIVED_SOURCES[0])
    n = len(HEAD_CATEGORIES)
    head = PromptHead(HEAD_CATEGORIES, (rng.normal(size=(8, n)).astype(np.float32),),
                      (np.zeros(n, dtype=np.float32),), np.ones(n), np.zeros(n), {"version": "t"})  # fmt: skip
    x_real = rng.normal(size=(len(real), 8)).astype(np.float32)
    x_tagged = rng.normal(size=(len(tagged), 8)).astype(np.float32) + 3.0  # a different population

    def fit(rows: list[Row], x: np.ndarray, on_real: bool) -> np.ndarray:
        args = argparse.Namespace(lexical=False, no_word_model=False, calibrate_on_real=on_real)
        stack = fit_calibration(args, head, {"val": rows}, x_val=x, ys={"val": label_matrix(rows)}, w=np.ones(1))[1]
        return np.asarray([(a, b) for a, b, _ in stack])

    alone = fit(real, x_real, on_real=True)
    np.testing.assert_allclose(fit(real + tagged, np.vstack([x_real, x_tagged]), on_real=True), alone, rtol=1e-6)
    # Without the option (the shipped head's recipe) the tagged copies take part and move it.
    assert not np.allclose(fit(real + tagged, np.vstack([x_real, x_tagged]), on_real=False), alone, rtol=1e-3)
