"""Rendering decisions: regions obscured beyond recognition, everything else untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
from PIL import Image

from moderation.blur import obscure, padded_boxes, render
from moderation.types import Action, Decision, Stage


@dataclass(frozen=True)
class Blur:
    mode: Literal["regions", "full"] = "regions"
    method: Literal["pixelate", "gaussian"] = "pixelate"
    padding: float = 0.15


def _decision(action: Action, boxes: tuple[tuple[int, int, int, int], ...] = ()) -> Decision:
    return Decision(
        stage=Stage.IMAGE,
        action=action,
        allowed=action is not Action.BLOCK,
        policy_id="t",
        policy_version="1",
        policy_sha256="0" * 64,
        blur_boxes=boxes,
    )


def _texture(width: int = 320, height: int = 240, seed: int = 1) -> Image.Image:
    """High-frequency content (noise plus a fine checkerboard): any real obscuring destroys it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    checker = (((xx // 3) + (yy // 3)) % 2 * 160).astype(np.int16)
    noise = rng.integers(0, 96, (height, width), dtype=np.int16)
    grey = np.clip(checker + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey, np.roll(grey, 7, axis=1), 255 - grey], axis=-1))


def _region(img: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return np.asarray(img, dtype=np.float64)[y : y + h, x : x + w]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom else 0.0


def _outside_mask(size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    width, height = size
    mask = np.ones((height, width), dtype=bool)
    for x, y, w, h in boxes:
        mask[y : y + h, x : x + w] = False
    return mask


BOX = (100, 60, 80, 100)
BLUR_METHODS = ["pixelate", "gaussian"]


@pytest.mark.parametrize("method", BLUR_METHODS)
def test_regions_are_changed_beyond_recognition(method: Literal["pixelate", "gaussian"]) -> None:
    """Inside a blurred box the original texture is gone: correlation with the original is near zero."""
    img = _texture()
    out = render(img, _decision(Action.BLUR, (BOX,)), blur=Blur(method=method), blocked_output="black")
    assert out is not None
    inner = _region(img, BOX)
    assert _correlation(inner, _region(out, BOX)) < 0.2
    assert np.abs(_region(out, BOX) - inner).mean() > 40


@pytest.mark.parametrize("method", BLUR_METHODS)
def test_pixels_outside_the_padded_boxes_are_unchanged(method: Literal["pixelate", "gaussian"]) -> None:
    """Every pixel outside the padded boxes is bit-identical to the input."""
    img = _texture()
    boxes = ((20, 20, 40, 30), BOX)
    out = render(img, _decision(Action.BLUR, boxes), blur=Blur(method=method), blocked_output="black")
    assert out is not None
    mask = _outside_mask(img.size, padded_boxes(boxes, img.size, 0.15))
    assert np.array_equal(np.asarray(out)[mask], np.asarray(img)[mask])
    assert not np.array_equal(np.asarray(out)[~mask], np.asarray(img)[~mask])


def test_padding_grows_each_box_by_a_fraction_of_its_size() -> None:
    """A 100×50 box with padding 0.2 grows 20 px left/right and 10 px top/bottom."""
    assert padded_boxes([(100, 100, 100, 50)], (1000, 1000), 0.2) == [(80, 90, 140, 70)]


def test_padding_is_clipped_to_the_image() -> None:
    """Padded boxes never leave the image."""
    assert padded_boxes([(0, 0, 50, 50), (90, 90, 20, 20)], (100, 100), 0.5) == [(0, 0, 75, 75), (80, 80, 20, 20)]


def test_degenerate_and_outside_boxes_are_dropped() -> None:
    """Zero-size boxes and boxes entirely outside the image yield no region."""
    assert padded_boxes([(10, 10, 0, 5), (500, 500, 10, 10)], (100, 100), 0.1) == []


def test_padded_margin_is_obscured_too() -> None:
    """The padding band around a tight box is obscured, not just the box itself."""
    img = _texture()
    out = render(img, _decision(Action.BLUR, (BOX,)), blur=Blur(padding=0.25), blocked_output="black")
    assert out is not None
    x, y, _w, h = BOX
    band = (x - 15, y, 10, h)  # left margin inside the 20 px padding
    assert _correlation(_region(img, band), _region(out, band)) < 0.3


def test_pixelation_leaves_a_coarse_mosaic() -> None:
    """A pixelated region has at most 8 mosaic cells along its longer side: flat blocks, no detail."""
    img = _texture()
    region = (0, 0, 160, 160)
    out = obscure(img, [region], method="pixelate")
    arr = np.asarray(out)[:160, :160, 0]
    assert len(np.unique(arr[0])) <= 8
    assert len(np.unique(arr[:, 0])) <= 8
    assert (arr[:20, :20] == arr[0, 0]).all()


@pytest.mark.parametrize("method", BLUR_METHODS)
def test_full_mode_obscures_the_whole_image(method: Literal["pixelate", "gaussian"]) -> None:
    """mode: full obscures every part of the image, whatever boxes the decision carries."""
    img = _texture()
    out = render(
        img, _decision(Action.BLUR, ((0, 0, 10, 10),)), blur=Blur(mode="full", method=method), blocked_output="black"
    )
    assert out is not None
    for quadrant in ((0, 0, 160, 120), (160, 120, 160, 120)):
        assert _correlation(_region(img, quadrant), _region(out, quadrant)) < 0.2


def test_regions_mode_without_boxes_obscures_everything() -> None:
    """A blur with no usable box (e.g. from a whole-image score) covers the whole image: fail closed."""
    img = _texture()
    out = render(img, _decision(Action.BLUR), blur=Blur(), blocked_output="black")
    assert out is not None
    assert _correlation(np.asarray(img, dtype=float), np.asarray(out, dtype=float)) < 0.2


def test_blocked_image_becomes_black_of_the_same_size() -> None:
    """blocked_output: black returns an all-black image the size of the input (like diffusers)."""
    out = render(_texture(), _decision(Action.BLOCK), blur=Blur(), blocked_output="black")
    assert out is not None
    assert out.size == (320, 240)
    assert not np.asarray(out).any()


def test_blocked_image_is_dropped() -> None:
    """blocked_output: drop returns None."""
    assert render(_texture(), _decision(Action.BLOCK), blur=Blur(), blocked_output="drop") is None


@pytest.mark.parametrize("action", [Action.ALLOW, Action.FLAG])
def test_allowed_and_flagged_images_are_unchanged(action: Action) -> None:
    """Allow and flag deliver the pixels as they are."""
    img = _texture()
    out = render(img, _decision(action, (BOX,)), blur=Blur(), blocked_output="black")
    assert out is not None
    assert np.array_equal(np.asarray(out), np.asarray(img))


@pytest.mark.parametrize("action", [Action.ALLOW, Action.BLUR])
def test_rendered_image_is_a_new_object_without_metadata(action: Action) -> None:
    """Output never shares the input object or its metadata."""
    img = _texture()
    img.info = {"exif": b"Exif\0\0x", "Comment": "secret"}
    out = render(img, _decision(action, (BOX,)), blur=Blur(), blocked_output="black")
    assert out is not img
    assert out is not None
    assert out.info == {}


def test_render_does_not_modify_the_input() -> None:
    """The caller's image is untouched by blurring."""
    img = _texture()
    before = np.asarray(img).copy()
    render(img, _decision(Action.BLUR, (BOX,)), blur=Blur(), blocked_output="black")
    assert np.array_equal(np.asarray(img), before)


def test_non_rgb_input_is_rendered_as_rgb() -> None:
    """An RGBA image renders to RGB (the checked pixels, without alpha)."""
    out = render(_texture().convert("RGBA"), _decision(Action.ALLOW), blur=Blur(), blocked_output="black")
    assert out is not None
    assert out.mode == "RGB"


def test_tiny_regions_still_become_flat() -> None:
    """A small box (smaller than one mosaic cell) becomes flat cells, not a sharp patch."""
    img = _texture()
    out = obscure(img, [(10, 10, 6, 6)], method="pixelate")
    assert len(np.unique(np.asarray(out)[10:16, 10:16].reshape(-1, 3), axis=0)) == 1
    assert isinstance(out, Image.Image)
