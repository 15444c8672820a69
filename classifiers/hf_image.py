"""Operator-trusted image models: any local `transformers` image-classification directory.

An operator who trusts, say, a gore detector names its folder and maps its labels onto the
taxonomy in the policy; unmapped labels are ignored. Loading is offline and safetensors-only
(no pickles), never with remote code, and the weights' SHA-256 goes into `version` so the audit
log records exactly which model decided.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifiers.base import ClassifierLoadError
from moderation.taxonomy import LABELS
from moderation.types import ClassifierResult, Evidence, Stage

if TYPE_CHECKING:
    from moderation.images import LoadedImage

DEFAULT_BATCH_SIZE = 8


class HFImageClassifier:
    """Scores each mapped category as the model's highest probability among the labels mapped to it."""

    name = "hf_image"
    stage = Stage.IMAGE

    def __init__(
        self,
        *,
        path: str | Path,
        label_map: Mapping[str, str],
        batch_size: int = DEFAULT_BATCH_SIZE,
        name: str | None = None,
    ) -> None:
        model_dir = Path(path).expanduser()
        if not model_dir.is_dir():
            raise ClassifierLoadError(f"hf_image: model directory {str(model_dir)!r} does not exist")
        if not label_map:
            raise ClassifierLoadError("hf_image: label_map is empty; map at least one model label to a category")
        bad_targets = {k: v for k, v in label_map.items() if v not in LABELS}
        if bad_targets:
            raise ClassifierLoadError(
                f"hf_image: label_map targets {sorted(set(bad_targets.values()))} are not categories or signals"
            )
        if batch_size < 1:
            raise ClassifierLoadError(f"hf_image: batch_size must be >= 1, got {batch_size}")
        weights = sorted(model_dir.glob("*.safetensors"))
        if not weights:
            raise ClassifierLoadError(f"hf_image: no *.safetensors weights in {str(model_dir)!r} (pickles are refused)")

        import torch
        import transformers
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        processor_kwargs: dict[str, Any] = {"local_files_only": True}
        if int(transformers.__version__.split(".")[0]) >= 5:
            processor_kwargs["backend"] = "pil"  # torchvision is not a dependency
        self._processor = AutoImageProcessor.from_pretrained(model_dir, **processor_kwargs)
        self._model = AutoModelForImageClassification.from_pretrained(
            model_dir, local_files_only=True, use_safetensors=True, trust_remote_code=False
        ).eval()
        id2label = {int(i): str(label) for i, label in self._model.config.id2label.items()}
        missing = set(label_map) - set(id2label.values())
        if missing:
            raise ClassifierLoadError(
                f"hf_image: labels {sorted(missing)} are not in the model; it has {sorted(id2label.values())}"
            )
        self._columns = [(i, id2label[i], label_map[id2label[i]]) for i in sorted(id2label) if id2label[i] in label_map]
        self._multi_label = self._model.config.problem_type == "multi_label_classification"
        self._torch = torch
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self.name = name or self.name
        digest = hashlib.sha256()
        for file in weights:
            with file.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
        self.version = f"{model_dir.name}@{digest.hexdigest()[:12]}"

    @classmethod
    def from_options(cls, *, options: Mapping[str, Any] | None = None, **context: Any) -> HFImageClassifier:
        opts = dict(options or {})
        allowed = {"path", "label_map", "batch_size", "name"}
        extra = set(opts) - allowed
        if extra:
            raise ClassifierLoadError(f"hf_image: unknown options {sorted(extra)}; allowed: {sorted(allowed)}")
        if "path" not in opts or "label_map" not in opts:
            raise ClassifierLoadError("hf_image: options 'path' (a local model directory) and 'label_map' are required")
        path = Path(str(opts["path"])).expanduser()
        base_dir = _policy_dir(context.get("policy"))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        label_map = opts["label_map"]
        if not isinstance(label_map, Mapping):
            raise ClassifierLoadError("hf_image: label_map must map model labels to categories")
        return cls(
            path=path,
            label_map={str(k): str(v) for k, v in label_map.items()},
            batch_size=int(opts.get("batch_size", DEFAULT_BATCH_SIZE)),
            name=str(opts["name"]) if opts.get("name") else None,
        )

    def probabilities(self, images: Sequence[LoadedImage]) -> list[dict[str, float]]:
        """Per image, every model label's probability (softmax, or sigmoid for multi-label models)."""
        torch = self._torch
        out: list[dict[str, float]] = []
        for start in range(0, len(images), self._batch_size):
            chunk = [img.image for img in images[start : start + self._batch_size]]
            inputs = self._processor(images=chunk, return_tensors="pt")
            with self._lock, torch.inference_mode():
                logits = self._model(**inputs).logits.float()
            probs = torch.sigmoid(logits) if self._multi_label else torch.softmax(logits, dim=-1)
            labels = self._model.config.id2label
            out.extend({str(labels[j]): float(row[j]) for j in range(row.shape[0])} for row in probs)
        return out

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        if not images:
            return []
        start = time.perf_counter()
        all_probs = self.probabilities(images)
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        results = []
        for probs in all_probs:
            scores: dict[str, float] = {}
            evidence: list[Evidence] = []
            for _, label, category in self._columns:
                p = probs[label]
                scores[category] = round(max(scores.get(category, 0.0), p), 6)
                evidence.append(Evidence(label=category, score=round(p, 6), rule=f"{self.name}:{label}"))
            evidence.sort(key=lambda e: (-e.score, e.rule))
            results.append(
                ClassifierResult(
                    classifier=self.name,
                    version=self.version,
                    scores=scores,
                    evidence=tuple(evidence),
                    latency_ms=round(per_image_ms, 3),
                )
            )
        return results


def _policy_dir(policy: Any) -> Path | None:
    """Relative model paths resolve against the policy file's folder, like list files do."""
    base = getattr(policy, "_base_dir", None) if policy is not None else None
    return Path(base) if base is not None else None
