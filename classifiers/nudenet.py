"""NudeNet's bundled detector (320n ONNX) as a batch-first `sexual` classifier with boxes.

Exposed genitalia, anus, female breasts and buttocks score `sexual`, and every such box is kept as
evidence, because regions-mode blur obscures exactly those boxes. Covered intimate parts are the
`suggestive` signal and faces the `face` signal: evidence policies may combine (the minors rule),
not sexual hits. Other labels (belly, armpits, feet, male chest) are ignored: beach and sports
photos are full of them.

Pre- and post-processing follow `nudenet.NudeDetector.detect` step for step (a test checks the
boxes are identical) but run batched and vectorised: NudeNet's per-row Python loop over 2,100
candidate boxes costs more than the network itself. LICENCE: NudeNet ships AGPL-3.0 licence files
(its metadata says MIT); see NOTICE and `policies/no-agpl.yaml`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifiers.base import ClassifierLoadError
from classifiers.onnx_backend import OnnxModel
from moderation.taxonomy import Category, Signal
from moderation.types import ClassifierResult, Evidence, Stage

if TYPE_CHECKING:
    import numpy as np

    from moderation.images import LoadedImage

# NudeNet 3.4's class order (index = model output channel - 4).
LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
SEXUAL_LABELS: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)
SUGGESTIVE_LABELS: frozenset[str] = frozenset(
    {"FEMALE_GENITALIA_COVERED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED"}
)
FACE_LABELS: frozenset[str] = frozenset({"FACE_FEMALE", "FACE_MALE"})

INPUT_SIZE = 320
CANDIDATE_FLOOR = 0.2  # NudeNet keeps candidates at or above this ...
NMS_SCORE_FLOOR = 0.25  # ... and cv2.dnn.NMSBoxes then drops those below this
NMS_IOU = 0.45
DEFAULT_BATCH_SIZE = 8
# One inference thread: the Moderator runs NudeNet and open-NSFW concurrently, one core each. Two
# threads per model on a 2-core host oversubscribe it and onnxruntime's spinning threads burn
# ~45 % more CPU for a slower result (bench/image_latency.py --threads). Raise it on bigger hosts.
DEFAULT_THREADS = 1
OPTIONS = frozenset(
    {"min_score", "sexual_labels", "suggestive_labels", "batch_size", "threads", "backend", "precision"}
)


class NudeNetClassifier:
    """Detects exposed and covered body parts; `sexual` = the strongest exposed-part detection."""

    name = "nudenet"
    stage = Stage.IMAGE

    def __init__(
        self,
        *,
        min_score: float = NMS_SCORE_FLOOR,
        sexual_labels: frozenset[str] = SEXUAL_LABELS,
        suggestive_labels: frozenset[str] = SUGGESTIVE_LABELS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = DEFAULT_THREADS,
        backend: str = "auto",
        precision: str = "auto",
    ) -> None:
        if not 0.0 < min_score <= 1.0:
            raise ClassifierLoadError(f"nudenet: min_score must be in (0, 1], got {min_score}")
        if batch_size < 1:
            raise ClassifierLoadError(f"nudenet: batch_size must be >= 1, got {batch_size}")
        self._label_to_key = label_keys(frozenset(sexual_labels), frozenset(suggestive_labels))
        self._model = OnnxModel(
            _bundled_model(),
            owner=self.name,
            backend=backend,
            precision=precision,
            threads=threads,
            sample_shape=(
                3,
                INPUT_SIZE,
                INPUT_SIZE,
            ),  # the preprocessing's fixed size: static shapes compile faster kernels
        )
        self._min_score = min_score
        self._candidate_floor = min(CANDIDATE_FLOOR, min_score)
        self._batch_size = batch_size
        self.version = f"{metadata.version('nudenet')}+320n+{self._model.tag}"

    @classmethod
    def from_options(cls, *, options: Mapping[str, Any] | None = None, **_context: Any) -> NudeNetClassifier:
        opts = dict(options or {})
        extra = set(opts) - OPTIONS
        if extra:
            raise ClassifierLoadError(f"nudenet: unknown options {sorted(extra)}; allowed: {sorted(OPTIONS)}")
        kwargs: dict[str, Any] = {}
        if "min_score" in opts:
            kwargs["min_score"] = float(opts["min_score"])
        if "batch_size" in opts:
            kwargs["batch_size"] = int(opts["batch_size"])
        if opts.get("threads") is not None:
            kwargs["threads"] = int(opts["threads"])
        for key in ("backend", "precision"):
            if key in opts:
                kwargs[key] = str(opts[key])
        for key in ("sexual_labels", "suggestive_labels"):
            if key in opts:
                kwargs[key] = frozenset(str(v).upper() for v in opts[key])
        return cls(**kwargs)

    def detect(self, images: Sequence[LoadedImage]) -> list[list[dict[str, Any]]]:
        """Raw detections per image, in NudeNet's own format: [{"class", "score", "box": [x, y, w, h]}]."""
        import numpy as np

        out: list[list[dict[str, Any]]] = []
        for start in range(0, len(images), self._batch_size):
            chunk = images[start : start + self._batch_size]
            blobs = [_preprocess(img.rgb) for img in chunk]
            batch = np.concatenate([b for b, _ in blobs], axis=0)
            raw = self._model.run(batch)
            out.extend(
                _postprocess(raw[j], size, self._candidate_floor, self._min_score) for j, (_, size) in enumerate(blobs)
            )
        return out

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        if not images:
            return []
        start = time.perf_counter()
        detections = self.detect(images)
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        return [self.result_from_detections(d, latency_ms=per_image_ms) for d in detections]

    def result_from_detections(
        self, detections: Sequence[Mapping[str, Any]], *, latency_ms: float = 0.0
    ) -> ClassifierResult:
        return map_detections(
            detections,
            label_to_key=self._label_to_key,
            min_score=self._min_score,
            version=self.version,
            latency_ms=latency_ms,
        )


def label_keys(
    sexual_labels: frozenset[str] = SEXUAL_LABELS, suggestive_labels: frozenset[str] = SUGGESTIVE_LABELS
) -> dict[str, str]:
    """NudeNet label → the category or signal it is evidence for; labels not listed are ignored."""
    unknown = (set(sexual_labels) | set(suggestive_labels)) - set(LABELS)
    if unknown:
        raise ClassifierLoadError(f"nudenet: unknown labels {sorted(unknown)}; known: {', '.join(LABELS)}")
    keys: dict[str, str] = {}
    for label in LABELS:
        if label in sexual_labels:
            keys[label] = Category.SEXUAL.value
        elif label in suggestive_labels:
            keys[label] = Signal.SUGGESTIVE.value
        elif label in FACE_LABELS:
            keys[label] = Signal.FACE.value
    return keys


def map_detections(
    detections: Sequence[Mapping[str, Any]],
    *,
    label_to_key: Mapping[str, str] | None = None,
    min_score: float = NMS_SCORE_FLOOR,
    version: str = "recorded",
    latency_ms: float = 0.0,
) -> ClassifierResult:
    """NudeNet detections → scores (strongest detection per key) and one evidence item per box.

    Pure, so that policy tests can replay recorded detector outputs through the real mapping.
    """
    keys = label_keys() if label_to_key is None else label_to_key
    scores = {Category.SEXUAL.value: 0.0, Signal.SUGGESTIVE.value: 0.0, Signal.FACE.value: 0.0}
    evidence: list[Evidence] = []
    for det in detections:
        key = keys.get(str(det["class"]))
        score = float(det["score"])
        if key is None or score < min_score:
            continue
        scores[key] = max(scores[key], score)
        x, y, w, h = (int(v) for v in det["box"])
        evidence.append(Evidence(label=key, score=round(score, 6), rule=f"nudenet:{det['class']}", box=(x, y, w, h)))
    evidence.sort(key=lambda e: (-e.score, e.rule))
    return ClassifierResult(
        classifier=NudeNetClassifier.name,
        version=version,
        scores={k: round(v, 6) for k, v in scores.items()},
        evidence=tuple(evidence),
        latency_ms=round(latency_ms, 3),
    )


def _bundled_model() -> Path:
    """The 320n.onnx that `nudenet.NudeDetector()` loads (shipped in the wheel)."""
    import nudenet

    return Path(nudenet.__file__).with_name("320n.onnx")


def _preprocess(rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """NudeNet's `_read_image`: pad to a square (bottom/right), resize to 320, NCHW float in [0, 1].

    NudeNet reads BGR (cv2.imread), swaps to RGB with COLOR_RGBA2BGR (a swap on 3 channels) and
    swaps back with swapRB=True, so the network sees BGR. Starting from RGB, one swap gives the
    same blob without two full-size copies.
    """
    import cv2

    height, width = rgb.shape[:2]
    side = max(height, width)
    padded = cv2.copyMakeBorder(rgb, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
    blob = cv2.dnn.blobFromImage(padded, 1 / 255.0, (INPUT_SIZE, INPUT_SIZE), (0, 0, 0), swapRB=True, crop=False)
    return blob, (width, height)


def _postprocess(
    raw: np.ndarray, size: tuple[int, int], candidate_floor: float, min_score: float
) -> list[dict[str, Any]]:
    """NudeNet's `_postprocess`, vectorised: candidates, centre→corner boxes scaled back, clip, NMS."""
    import cv2
    import numpy as np

    width, height = size
    rows = raw.T  # (candidates, 4 + classes)
    class_scores = rows[:, 4:]
    best = class_scores.max(axis=1)
    keep = best >= candidate_floor
    if not keep.any():
        return []
    rows, best = rows[keep], best[keep]
    class_ids = class_scores[keep].argmax(axis=1)
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    side = max(width, height)
    x = (cx - w / 2) * side / INPUT_SIZE
    y = (cy - h / 2) * side / INPUT_SIZE
    w = w * side / INPUT_SIZE
    h = h * side / INPUT_SIZE
    x = np.maximum(0, np.minimum(x, width))
    y = np.maximum(0, np.minimum(y, height))
    w = np.minimum(w, width - x)
    h = np.minimum(h, height - y)
    boxes = np.stack([x, y, w, h], axis=1)
    indices = cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), min_score, NMS_IOU)
    return [
        {
            "class": LABELS[int(class_ids[i])],
            "score": float(best[i]),
            "box": [int(boxes[i, 0]), int(boxes[i, 1]), int(boxes[i, 2]), int(boxes[i, 3])],
        }
        for i in np.asarray(indices, dtype=np.int64).reshape(-1)
    ]
