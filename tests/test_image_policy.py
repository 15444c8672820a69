"""The image stage under policy: thresholds, blur boxes, blocked output and the minors hard rule.

No explicit image exists here or may be stored, so the detectors' outputs are *recorded*
(tests/fixtures/image_detections.json, written by hand in NudeNet's and open-NSFW's own formats)
and replayed through the real label mapping, the real engine and the real renderer. The doubles
below stand in only for the two networks; the benign-photo test at the end runs the real ones.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from classifiers.nudenet import map_detections
from classifiers.open_nsfw import result_from_score
from moderation.blur import padded_boxes
from moderation.images import LoadedImage
from moderation.moderator import InputError, Moderator
from moderation.policy import Policy, load_policy, load_policy_text
from moderation.types import Action, ClassifierResult, Decision, Stage
from tests.tiny_image_model import build_tiny_vit

FIXTURES: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "image_detections.json").read_text())[
    "cases"
]
REPO = Path(__file__).resolve().parents[1]
BENIGN_DIRS = [
    REPO.parent / "shared" / "datasets" / "sample_images_skimage" / "images",
    REPO.parent / "shared" / "datasets" / "sample_images_people" / "images",
]


def case_image(name: str) -> Image.Image:
    """A deterministic noise image of the case's size: the pixels only key the recorded outputs."""
    width, height = FIXTURES[name]["size"]
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


class RecordedNudeNet:
    """Test double for the NudeNet network: replays recorded detections, mapped by the real code."""

    name = "nudenet"
    version = "recorded"
    stage = Stage.IMAGE

    def __init__(self, cases: dict[str, str]) -> None:
        self._cases = cases  # image sha256 -> case name

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        return [map_detections(FIXTURES[self._cases[img.sha256]]["nudenet"]) for img in images]


class RecordedOpenNSFW:
    """Test double for the open-NSFW network: replays recorded P(nsfw) through the real result builder."""

    name = "open_nsfw"
    version = "recorded"
    stage = Stage.IMAGE

    def __init__(self, cases: dict[str, str]) -> None:
        self._cases = cases

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        return [result_from_score(FIXTURES[self._cases[img.sha256]]["open_nsfw"]) for img in images]


class BrokenDetector:
    """Test double for a detector that fails at run time (the engine must fail closed)."""

    name = "nudenet"
    version = "broken"
    stage = Stage.IMAGE

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]:
        raise RuntimeError("onnxruntime session crashed")


@pytest.fixture(scope="module")
def images() -> dict[str, Image.Image]:
    return {name: case_image(name) for name in FIXTURES}


@pytest.fixture(scope="module")
def sha_to_case(images: dict[str, Image.Image]) -> dict[str, str]:
    from moderation.images import load_image

    return {load_image(img).sha256: name for name, img in images.items()}


def _moderator(policy: Policy | str, sha_to_case: dict[str, str], **overrides: Any) -> Moderator:
    policy_obj = load_policy(policy) if isinstance(policy, str) else policy
    replay: dict[str, Any] = {"nudenet": RecordedNudeNet(sha_to_case), "open_nsfw": RecordedOpenNSFW(sha_to_case)}
    replay.update(overrides)
    return Moderator(policy_obj, classifiers=replay)


@pytest.fixture(scope="module")
def default(sha_to_case: dict[str, str]) -> Iterator[Moderator]:
    moderator = _moderator("default", sha_to_case)
    yield moderator
    moderator.close()


def minors_prompt(score: float = 0.9) -> Decision:
    """A prompt decision carrying a minors cue, as the prompt stage would produce it."""
    return Decision(
        stage=Stage.PROMPT,
        action=Action.ALLOW,
        allowed=True,
        signals={"minors": score},
        policy_id="default",
        policy_version="t",
        policy_sha256="0" * 64,
    )


# --- thresholds and actions (default policy: sexual flag 0.3, blur 0.5, block 0.85) ------------


@pytest.mark.parametrize(
    ("case", "action"),
    [
        ("clean_portrait", Action.ALLOW),
        ("swimwear_covered", Action.ALLOW),
        ("male_chest_beach", Action.ALLOW),
        ("faint_nudity", Action.ALLOW),
        ("weak_exposed", Action.FLAG),
        ("exposed_two_regions", Action.BLUR),
        ("nsfw_without_boxes", Action.BLUR),
        ("nsfw_with_weak_box", Action.BLUR),
        ("explicit", Action.BLOCK),
    ],
)
def test_default_policy_actions(default: Moderator, images: dict[str, Image.Image], case: str, action: Action) -> None:
    """Each recorded case gets the action its strongest `sexual` score reaches under the default policy."""
    decision = default.check_image(images[case])
    assert decision.action is action
    assert decision.allowed is (action is not Action.BLOCK)


def test_category_score_is_the_max_over_both_detectors(default: Moderator, images: dict[str, Image.Image]) -> None:
    """open-NSFW's 0.97 and NudeNet's 0.93 combine to a sexual score of 0.97."""
    decision = default.check_image(images["explicit"])
    assert decision.category_scores["sexual"] == pytest.approx(0.97)
    assert decision.categories == ("sexual",)


def test_covered_parts_reach_decisions_only_as_signals(default: Moderator, images: dict[str, Image.Image]) -> None:
    """Swimwear: `suggestive` and `face` are reported as signals; `sexual` stays at open-NSFW's 0.08."""
    decision = default.check_image(images["swimwear_covered"])
    assert decision.signals == {"face": 0.77, "suggestive": 0.72}
    assert decision.category_scores["sexual"] == pytest.approx(0.08)


def test_blur_decision_carries_the_exposed_boxes_only(default: Moderator, images: dict[str, Image.Image]) -> None:
    """Regions-mode blur lists exactly the exposed-part boxes (not the face) for the renderer."""
    decision = default.check_image(images["exposed_two_regions"])
    assert sorted(decision.blur_boxes) == [(240, 200, 60, 55), (320, 205, 58, 52)]


def test_block_reason_names_the_classifier_and_rule(default: Moderator, images: dict[str, Image.Image]) -> None:
    """A block says which classifier and which detector label decided."""
    (reason,) = [r for r in default.check_image(images["explicit"]).reasons if r.action is Action.BLOCK]
    assert (reason.classifier, reason.category, reason.threshold) == ("open_nsfw", "sexual", 0.85)


def test_check_images_returns_one_decision_per_image_in_order(
    default: Moderator, images: dict[str, Image.Image]
) -> None:
    """A batch of images yields one decision each, in input order."""
    order = ["explicit", "clean_portrait", "weak_exposed"]
    actions = [d.action for d in default.check_images([images[c] for c in order])]
    assert actions == [Action.BLOCK, Action.ALLOW, Action.FLAG]


@pytest.mark.parametrize("kind", ["pil", "bytes", "path"])
def test_check_image_accepts_pil_bytes_and_paths(
    kind: str, images: dict[str, Image.Image], tmp_path: Path, sha_to_case: dict[str, str]
) -> None:
    """PIL images, encoded bytes and file paths all get a decision."""
    import io

    img = images["weak_exposed"]
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = buf.getvalue()
    path = tmp_path / "x.png"
    path.write_bytes(data)
    # Encoded inputs are keyed by their bytes' hash, PIL input by its pixels.
    cases = {**sha_to_case, hashlib.sha256(data).hexdigest(): "weak_exposed"}
    moderator = _moderator("default", cases)
    subject = {"pil": img, "bytes": data, "path": path}[kind]
    assert moderator.check_image(subject).action is Action.FLAG


def test_unreadable_image_raises_input_error(default: Moderator) -> None:
    """Bytes that are not an image raise InputError (the CLI turns it into exit 2), never a decision."""
    with pytest.raises(InputError, match="not a recognised image"):
        default.check_image(b"hello")


def test_failing_detector_blocks(sha_to_case: dict[str, str], images: dict[str, Image.Image]) -> None:
    """A detector that raises blocks the image (fail closed), even a clean one."""
    moderator = _moderator("default", sha_to_case, nudenet=BrokenDetector())
    decision = moderator.check_image(images["clean_portrait"])
    assert decision.action is Action.BLOCK
    assert decision.reasons[0].code == "classifier_error"


# --- rendering what the policy decided -------------------------------------------------------------


def test_rendered_blur_obscures_boxes_and_keeps_the_rest(default: Moderator, images: dict[str, Image.Image]) -> None:
    """End to end: pixels inside the padded exposed boxes change, every other pixel is identical."""
    img = images["exposed_two_regions"]
    decision = default.check_image(img)
    out = default.render(img, decision)
    assert out is not None
    regions = padded_boxes(decision.blur_boxes, img.size, default.policy.image.blur.padding)
    mask = np.zeros((img.height, img.width), dtype=bool)
    for x, y, w, h in regions:
        mask[y : y + h, x : x + w] = True
    before, after = np.asarray(img, dtype=np.int16), np.asarray(out, dtype=np.int16)
    assert np.array_equal(before[~mask], after[~mask])
    assert np.abs(before[mask] - after[mask]).mean() > 40


def test_blur_from_a_whole_image_score_covers_the_whole_image(
    default: Moderator, images: dict[str, Image.Image]
) -> None:
    """open-NSFW alone triggered the blur: there is no box, so nothing is left sharp."""
    img = images["nsfw_without_boxes"]
    decision = default.check_image(img)
    assert decision.blur_boxes == ()
    out = default.render(img, decision)
    assert out is not None
    changed = np.any(np.asarray(out) != np.asarray(img), axis=-1)
    assert changed.mean() > 0.95


def test_whole_image_score_with_a_weak_box_still_blurs_everything(
    default: Moderator, images: dict[str, Image.Image]
) -> None:
    """open-NSFW (0.66) triggered the blur and NudeNet's only box is weak (0.27): the whole image is covered,
    not just that box."""
    img = images["nsfw_with_weak_box"]
    decision = default.check_image(img)
    assert decision.action is Action.BLUR
    assert decision.blur_boxes == ()
    out = default.render(img, decision)
    assert out is not None
    assert np.any(np.asarray(out) != np.asarray(img), axis=-1).mean() > 0.95


def test_default_blocked_image_is_black(default: Moderator, images: dict[str, Image.Image]) -> None:
    """The default policy returns a black image for a blocked one (like diffusers)."""
    img = images["explicit"]
    out = default.render(img, default.check_image(img))
    assert out is not None
    assert out.size == img.size
    assert not np.asarray(out).any()


def test_strict_policy_drops_blocked_images(sha_to_case: dict[str, str], images: dict[str, Image.Image]) -> None:
    """The strict preset drops blocked images and blocks at a lower score."""
    strict = _moderator("strict", sha_to_case)
    decision = strict.check_image(images["exposed_two_regions"])  # 0.71 >= strict block 0.6
    assert decision.action is Action.BLOCK
    assert strict.render(images["exposed_two_regions"], decision) is None


def test_strict_policy_blurs_the_full_image(sha_to_case: dict[str, str], images: dict[str, Image.Image]) -> None:
    """Strict uses full-image Gaussian blur: a blurred image keeps no sharp region."""
    strict = _moderator("strict", sha_to_case)
    img = images["weak_exposed"]  # 0.34 >= strict blur 0.3
    decision = strict.check_image(img)
    assert decision.action is Action.BLUR
    out = strict.render(img, decision)
    assert out is not None
    assert np.any(np.asarray(out) != np.asarray(img), axis=-1).mean() > 0.95


def test_permissive_policy_only_flags_explicit_images(
    sha_to_case: dict[str, str], images: dict[str, Image.Image]
) -> None:
    """The permissive preset flags adult content instead of blocking it (no minors cue)."""
    decision = _moderator("permissive", sha_to_case).check_image(images["explicit"])
    assert decision.action is Action.FLAG


# --- the minors hard rule ---------------------------------------------------------------------------


def test_minors_cue_blocks_faint_nudity(default: Moderator, images: dict[str, Image.Image]) -> None:
    """Nudity the policy would allow (0.27) is blocked when the prompt carried a minors cue."""
    decision = default.check_image(images["faint_nudity"], prompt_decision=minors_prompt())
    assert decision.action is Action.BLOCK
    assert any(r.code == "minors_rule" and r.category == "sexual/minors" for r in decision.reasons)


def test_minors_cue_turns_blur_into_block(default: Moderator, images: dict[str, Image.Image]) -> None:
    """What would be blurred for an adult is blocked when the prompt mentions a minor."""
    decision = default.check_image(images["exposed_two_regions"], prompt_decision=minors_prompt())
    assert decision.action is Action.BLOCK


def test_minors_rule_cannot_be_lifted_by_policy(sha_to_case: dict[str, str], images: dict[str, Image.Image]) -> None:
    """Even a policy that allows all adult content blocks nudity after a minors cue."""
    lax = load_policy_text(
        """
id: lax
prompt:
  categories:
    sexual/minors: {block: 0.5}
image:
  classifiers: [{name: nudenet}, {name: open_nsfw}]
  categories: {}
"""
    )
    moderator = _moderator(lax, sha_to_case)
    assert moderator.check_image(images["explicit"]).action is Action.ALLOW
    decision = moderator.check_image(images["faint_nudity"], prompt_decision=minors_prompt())
    assert decision.action is Action.BLOCK


def test_minors_rule_applies_per_image_in_a_batch(default: Moderator, images: dict[str, Image.Image]) -> None:
    """Per-image prompt decisions: only the image whose prompt had the cue is blocked."""
    decisions = default.check_images(
        [images["faint_nudity"], images["faint_nudity"]], prompt_decisions=[minors_prompt(), None]
    )
    assert [d.action for d in decisions] == [Action.BLOCK, Action.ALLOW]


def test_minors_cue_without_nudity_allows(default: Moderator, images: dict[str, Image.Image]) -> None:
    """A clean portrait is still allowed after a minors cue (the rule needs nudity)."""
    assert default.check_image(images["clean_portrait"], prompt_decision=minors_prompt()).action is Action.ALLOW


def test_weak_minors_cue_does_not_trigger_the_rule(default: Moderator, images: dict[str, Image.Image]) -> None:
    """A prompt minors signal under the cue floor leaves the policy's own decision in place."""
    decision = default.check_image(images["faint_nudity"], prompt_decision=minors_prompt(0.2))
    assert decision.action is Action.ALLOW


# --- operator models named in the policy ------------------------------------------------------------


def test_policy_runs_an_operator_image_model_from_a_relative_path(tmp_path: Path) -> None:
    """A policy names a local model folder (relative to the policy file) and maps its labels to categories."""
    build_tiny_vit(tmp_path / "models" / "gore-vit")
    policy_file = tmp_path / "ops.yaml"
    policy_file.write_text(
        """
id: ops
extends: default
image:
  classifiers:
    - name: hf_image
      options:
        path: models/gore-vit
        label_map: {gore: violence/graphic, weapon: violence}
  categories:
    violence/graphic: {flag: 0.0}
""",
        encoding="utf-8",
    )
    moderator = Moderator.from_policy(policy_file)
    try:
        decision = moderator.check_image(Image.new("RGB", (40, 40), (10, 200, 30)))
    finally:
        moderator.close()
    assert decision.classifiers[0].startswith("hf_image@gore-vit@")
    assert 0.0 < decision.category_scores["violence/graphic"] < 1.0
    assert decision.action is Action.FLAG  # flag at 0.0: the operator model's score reached the engine


# --- no-agpl preset ---------------------------------------------------------------------------------


def test_no_agpl_preset_runs_open_nsfw_only() -> None:
    """no-agpl extends default, keeps its thresholds, and names only open_nsfw for images."""
    policy = load_policy("no-agpl")
    default = load_policy("default")
    assert [c.name for c in policy.image.classifiers] == ["open_nsfw"]
    assert policy.image.categories == default.image.categories
    assert policy.prompt == default.prompt


def test_no_agpl_preset_never_imports_nudenet(tmp_path: Path) -> None:
    """With nudenet made unimportable, the no-agpl preset still checks a real image with open-NSFW."""
    image = tmp_path / "grey.png"
    Image.new("RGB", (256, 256), (120, 130, 140)).save(image)
    script = f"""
import sys
sys.modules["nudenet"] = None  # any import of nudenet now raises ImportError
from moderation.moderator import Moderator
d = Moderator.from_policy("no-agpl").check_image({str(image)!r})
assert d.classifiers and all(c.startswith("open_nsfw@") for c in d.classifiers), d.classifiers
assert "nudenet" not in sys.modules or sys.modules["nudenet"] is None
print(d.action.value)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "allow"


# --- the real models on benign photos ---------------------------------------------------------------


@pytest.mark.skipif(not all(d.is_dir() for d in BENIGN_DIRS), reason="benign sample photos not present")
def test_benign_photos_are_all_allowed_by_the_default_policy() -> None:
    """All 44 benign photos (14 scenes, 30 with clothed people) are allowed by the real models."""
    paths = sorted(p for d in BENIGN_DIRS for p in d.iterdir() if p.suffix in {".png", ".jpg"})
    assert len(paths) == 44
    moderator = Moderator.from_policy("default")
    try:
        # Batches of 8 keep each call well inside the policy's image timeout on a slow CI host.
        decisions = [d for i in range(0, len(paths), 8) for d in moderator.check_images(paths[i : i + 8])]
    finally:
        moderator.close()
    not_allowed = {
        p.name: d.action.value for p, d in zip(paths, decisions, strict=True) if d.action is not Action.ALLOW
    }
    assert not_allowed == {}
    assert max(d.category_scores.get("sexual", 0.0) for d in decisions) < 0.3
