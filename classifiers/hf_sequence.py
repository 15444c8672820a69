"""Operator-supplied text classifier: any local `transformers` sequence-classification folder.

Operators who already trust a model (a fine-tuned toxicity or NSFW-prompt classifier) name its
folder in the policy and map its labels to fluxwarden categories; fluxwarden never downloads it.

    - name: hf_sequence
      options:
        path: /models/my-prompt-guard
        labels: {toxic: harassment, nsfw: sexual}   # model label -> category; unmapped labels ignored
        # multi_label: true    # sigmoid per label; default follows the model config's problem_type
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifiers.base import ClassifierLoadError
from moderation.normalise import FORMS_VERSION
from moderation.taxonomy import UnknownCategoryError, parse_category
from moderation.types import ClassifierResult, Stage

if TYPE_CHECKING:
    from moderation.normalise import NormalisedText

_OPTIONS = {"path", "labels", "multi_label", "max_length", "batch_size", "threads"}


class HFSequenceClassifier:
    """Scores = the model's per-label probabilities, mapped to categories, max over prompt forms."""

    name = "hf_sequence"
    stage = Stage.PROMPT

    def __init__(
        self,
        *,
        path: Path,
        labels: Mapping[str, str],
        multi_label: bool | None = None,
        max_length: int = 256,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        if not path.is_dir():
            raise ClassifierLoadError(f"hf_sequence: model folder not found: {path}")
        if not labels:
            raise ClassifierLoadError("hf_sequence: 'labels' must map at least one model label to a category")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise ClassifierLoadError(f"hf_sequence: cannot load {path}: {exc}") from exc
        id2label = {int(i): str(name) for i, name in self._model.config.id2label.items()}
        by_name = {name: i for i, name in id2label.items()}
        unknown = sorted(set(labels) - set(by_name))
        if unknown:
            raise ClassifierLoadError(f"hf_sequence: labels {unknown} not in the model's labels {sorted(by_name)}")
        try:
            self._columns = [(by_name[lbl], parse_category(cat).value) for lbl, cat in labels.items()]
        except UnknownCategoryError as exc:
            raise ClassifierLoadError(f"hf_sequence: {exc}") from exc
        if multi_label is None:
            multi_label = self._model.config.problem_type == "multi_label_classification"
        self._multi_label = multi_label
        self._max_length = max_length
        self._batch_size = batch_size
        self.version = (
            f"{path.name}@{getattr(self._model.config, '_commit_hash', None) or 'local'}+forms{FORMS_VERSION}"
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, **_context: Any) -> HFSequenceClassifier:
        opts = dict(options or {})
        unknown = set(opts) - _OPTIONS
        if unknown:
            raise ClassifierLoadError(f"hf_sequence: unknown options {sorted(unknown)}; known: {sorted(_OPTIONS)}")
        if "path" not in opts:
            raise ClassifierLoadError("hf_sequence: option 'path' (a local model folder) is required")
        labels = opts.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise ClassifierLoadError("hf_sequence: 'labels' must be a mapping of model label -> category")
        return cls(
            path=Path(str(opts["path"])).expanduser(),
            labels={str(k): str(v) for k, v in labels.items()},
            multi_label=opts.get("multi_label"),
            max_length=int(opts.get("max_length", 256)),
            batch_size=int(opts.get("batch_size", 16)),
            threads=opts.get("threads"),
        )

    def _probabilities(self, texts: list[str]) -> Any:
        torch = self._torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self._batch_size):
                enc = self._tokenizer(
                    texts[start : start + self._batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                )
                logits = self._model(**enc).logits.float()
                out.append(torch.sigmoid(logits) if self._multi_label else torch.softmax(logits, dim=-1))
        return torch.cat(out).numpy()

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        start = time.perf_counter()
        forms: list[str] = []
        owners: list[list[int]] = []
        for item in texts:
            owners.append([len(forms) + i for i, _ in enumerate(item.unique_forms())])
            forms.extend(text for _, text in item.unique_forms())
        probs = self._probabilities(forms) if forms else None
        per_item_ms = (time.perf_counter() - start) * 1000 / max(1, len(texts))
        results = []
        for idx in owners:
            scores: dict[str, float] = {}
            for column, category in self._columns:
                value = float(probs[idx, column].max()) if probs is not None and idx else 0.0
                scores[category] = max(scores.get(category, 0.0), value)
            results.append(
                ClassifierResult(classifier=self.name, version=self.version, scores=scores, latency_ms=per_item_ms)
            )
        return results
