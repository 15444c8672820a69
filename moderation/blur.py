"""Turn an image decision into the image that may leave: unchanged, obscured, black, or nothing.

Obscuring must survive a curious user: pixelation averages each cell away (a mosaic of at most
`MOSAIC_CELLS` cells along the region's long side) and the Gaussian radius scales with the region,
so neither can be undone by sharpening. Regions are padded because detector boxes are tight and
the edge of a body part is still the body part. A blur with no usable box obscures the whole image:
when in doubt, cover more. Every result is a new RGB image with no metadata.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, Protocol

from PIL import Image, ImageFilter

from moderation.types import Action, Decision

Box = tuple[int, int, int, int]  # x, y, w, h

# Pixelate: at most this many mosaic cells along a region's longer side; cells are never smaller
# than MIN_CELL_PX, so tiny regions become one or two flat cells.
MOSAIC_CELLS = 8
MIN_CELL_PX = 8
# Gaussian: radius as a fraction of the region's longer side (PIL's radius is the std. deviation).
GAUSSIAN_RADIUS_FRACTION = 0.15
MIN_GAUSSIAN_RADIUS = 8.0


class BlurParams(Protocol):
    """What `render` needs from a policy's `image.blur` section (`moderation.policy.BlurSettings`)."""

    mode: Literal["regions", "full"]
    method: Literal["pixelate", "gaussian"]
    padding: float


def render(
    image: Image.Image,
    decision: Decision,
    *,
    blur: BlurParams,
    blocked_output: Literal["black", "drop"],
) -> Image.Image | None:
    """The image as `decision` leaves it under the policy's blur and blocked-output settings."""
    base = _clean_rgb(image)
    if decision.action is Action.BLOCK:
        return None if blocked_output == "drop" else Image.new("RGB", base.size, (0, 0, 0))
    if decision.action is not Action.BLUR:
        return base
    if blur.mode == "full":
        return obscure(base, [(0, 0, base.width, base.height)], method=blur.method, padding=0.0)
    regions = padded_boxes(decision.blur_boxes, base.size, blur.padding)
    if not regions:  # blur triggered by a whole-image score, or boxes outside the image: cover it all
        regions = [(0, 0, base.width, base.height)]
    return obscure(base, regions, method=blur.method, padding=0.0)


def padded_boxes(boxes: Iterable[Box], size: tuple[int, int], padding: float) -> list[Box]:
    """Grow each (x, y, w, h) box by `padding` × its size on every side, clipped to the image."""
    width, height = size
    out: list[Box] = []
    for x, y, w, h in boxes:
        if w <= 0 or h <= 0:
            continue
        pad_x, pad_y = math.ceil(w * padding), math.ceil(h * padding)
        left, top = max(0, x - pad_x), max(0, y - pad_y)
        right, bottom = min(width, x + w + pad_x), min(height, y + h + pad_y)
        if right > left and bottom > top:
            out.append((left, top, right - left, bottom - top))
    return out


def obscure(
    image: Image.Image, boxes: Iterable[Box], *, method: Literal["pixelate", "gaussian"], padding: float = 0.0
) -> Image.Image:
    """A copy of `image` with every box pixelated or heavily blurred; pixels outside are untouched."""
    out = _clean_rgb(image)
    for x, y, w, h in padded_boxes(boxes, out.size, padding):
        region = out.crop((x, y, x + w, y + h))
        out.paste(_pixelate(region) if method == "pixelate" else _gaussian(region), (x, y))
    return out


def _pixelate(region: Image.Image) -> Image.Image:
    w, h = region.size
    cell = max(MIN_CELL_PX, math.ceil(max(w, h) / MOSAIC_CELLS))
    small = region.resize((max(1, math.ceil(w / cell)), max(1, math.ceil(h / cell))), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.NEAREST)


def _gaussian(region: Image.Image) -> Image.Image:
    radius = max(MIN_GAUSSIAN_RADIUS, GAUSSIAN_RADIUS_FRACTION * max(region.size))
    return region.filter(ImageFilter.GaussianBlur(radius))


def _clean_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image with no metadata (EXIF, ICC, text chunks), never the caller's object."""
    if hasattr(image, "image") and not isinstance(image, Image.Image):  # a LoadedImage
        image = image.image
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    out.info = {}
    return out
