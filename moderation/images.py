"""Safe image decoding: every image is checked as the RGB pixels fluxwarden would deliver.

Input arrives from pipelines (PIL), HTTP bodies (bytes) and the CLI (paths), and some of it is
hostile. So: the byte limit is checked before reading, the pixel limit before decoding (a
100,000 × 100,000 PNG header costs nothing to refuse), the format is sniffed from magic bytes so
only the PNG, JPEG and WebP parsers ever see the data, and truncated files are errors, not grey
images. Animated images are refused (decision recorded in docs: a still-image checker that looked
at frame 0 would let frame 1 through). EXIF orientation is applied, every mode is converted to
8-bit RGB, and alpha is *discarded*, not composited, so pixels hidden by transparency are still
checked. The result carries no metadata (EXIF, ICC, text chunks): what was checked is what leaves.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")

# Magic bytes → format. Known-but-refused formats get a precise message instead of "not an image".
_ACCEPTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
)
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
)
_EXIF_ORIENTATION = 0x0112
_HIGH_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class ImageInputError(ValueError):
    """The input cannot be checked as an image; the message says exactly why (safe to show users)."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded, size-checked, metadata-free RGB image plus what the audit log needs to know about it."""

    image: Image.Image = field(repr=False, compare=False)
    sha256: str
    width: int
    height: int
    source: str
    format: str | None = None  # the container format of encoded input; None for in-memory PIL input

    @cached_property
    def rgb(self) -> np.ndarray:
        """H × W × 3 uint8, RGB order (read-only view over the PIL buffer's copy)."""
        import numpy as np

        return np.asarray(self.image, dtype=np.uint8)

    @cached_property
    def bgr(self) -> np.ndarray:
        """H × W × 3 uint8, BGR order, C-contiguous: what OpenCV-based detectors (NudeNet) expect."""
        import numpy as np

        return np.ascontiguousarray(self.rgb[:, :, ::-1])

    @property
    def pixels(self) -> int:
        return self.width * self.height


ImageLike = Image.Image | bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO | LoadedImage


def load_image(
    obj: ImageLike | Any,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    source: str | None = None,
) -> LoadedImage:
    """Decode `obj` (PIL image, encoded bytes, a path or a binary file) into a `LoadedImage`.

    Raises `ImageInputError` with a specific, user-presentable reason for anything that is not a
    single still PNG/JPEG/WebP image within the limits.
    """
    if isinstance(obj, LoadedImage):
        _check_pixels(obj.width, obj.height, max_pixels, obj.source)
        return obj
    if isinstance(obj, Image.Image):
        return _from_pil(obj, max_pixels=max_pixels, source=source or "<PIL.Image>")
    if isinstance(obj, bytes | bytearray | memoryview):
        data = bytes(obj)
        label = source or "<bytes>"
        _check_byte_count(len(data), max_bytes, label)
        return _from_bytes(data, max_pixels=max_pixels, source=label)
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        data = _read_path(path, max_bytes)
        return _from_bytes(data, max_pixels=max_pixels, source=source or str(path))
    if hasattr(obj, "read"):
        label = source or str(getattr(obj, "name", "<stream>"))
        data = obj.read(max_bytes + 1)
        if not isinstance(data, bytes | bytearray):
            raise ImageInputError(f"{label}: stream is not opened in binary mode")
        _check_byte_count(len(data), max_bytes, label, at_least=len(data) > max_bytes)
        return _from_bytes(bytes(data), max_pixels=max_pixels, source=label)
    raise ImageInputError(
        f"unsupported image input type {type(obj).__name__}; expected a PIL image, bytes or a file path"
    )


def _check_byte_count(count: int, max_bytes: int, label: str, *, at_least: bool = False) -> None:
    if count == 0:
        raise ImageInputError(f"{label}: empty input (0 bytes)")
    if count > max_bytes:
        size = f"more than {max_bytes}" if at_least else str(count)
        raise ImageInputError(f"{label}: {size} bytes exceeds the limit of {max_bytes} bytes")


def _check_pixels(width: int, height: int, max_pixels: int, label: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageInputError(f"{label}: image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageInputError(
            f"{label}: {width}×{height} = {width * height} pixels exceeds the limit of {max_pixels} pixels"
        )


def _read_path(path: Path, max_bytes: int) -> bytes:
    """Read a regular file, refusing directories, FIFOs and devices (which could block or never end)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageInputError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL byte in the path
        raise ImageInputError(f"{path!s}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageInputError(f"{path}: is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageInputError(f"{path}: not a regular file")
    _check_byte_count(st.st_size, max_bytes, str(path))
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise ImageInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    _check_byte_count(len(data), max_bytes, str(path), at_least=len(data) > max_bytes)
    return data


def sniff_format(head: bytes) -> str | None:
    """The accepted format named by the magic bytes, or None if they name no accepted format."""
    for magic, name in _ACCEPTED_MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _refused_format(head: bytes) -> str | None:
    stripped = head.lstrip()
    for magic, name in _REFUSED_MAGIC:
        if stripped.startswith(magic):
            return name
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "HEIF/AVIF"
    return None


def _from_bytes(data: bytes, *, max_pixels: int, source: str) -> LoadedImage:
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ImageInputError(_unaccepted_message(data[:16], source))
    try:
        with warnings.catch_warnings():
            # Our own pixel limit is authoritative; PIL's warning below its hard limit is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise ImageInputError(
            f"{source}: image header declares more than {Image.MAX_IMAGE_PIXELS * 2} pixels "
            f"(limit {max_pixels}); refused before decoding"
        ) from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{source}: starts like {fmt} but its header is unreadable") from None
    except Exception as exc:  # any parser failure on hostile bytes is an input error, never a crash
        raise ImageInputError(f"{source}: truncated or corrupt {fmt} header ({_short(exc)})") from None
    _check_pixels(img.width, img.height, max_pixels, source)
    _refuse_animation(img, source)
    try:
        img.load()
    except Exception as exc:
        raise ImageInputError(f"{source}: truncated or corrupt {fmt} data ({_short(exc)})") from None
    rgb = _to_rgb(_oriented(img, source, in_place=True))
    _check_pixels(rgb.width, rgb.height, max_pixels, source)
    return LoadedImage(
        image=rgb,
        sha256=hashlib.sha256(data).hexdigest(),
        width=rgb.width,
        height=rgb.height,
        source=source,
        format=fmt,
    )


def _unaccepted_message(head: bytes, source: str) -> str:
    refused = _refused_format(head)
    accepted = "PNG, JPEG or WebP"
    if refused == "GIF":
        return f"{source}: GIF is not accepted (animated images are refused); send {accepted}"
    if refused is not None:
        return f"{source}: {refused} is not accepted; send {accepted}"
    return f"{source}: not a recognised image (expected {accepted})"


def _from_pil(img: Image.Image, *, max_pixels: int, source: str) -> LoadedImage:
    _check_pixels(img.width, img.height, max_pixels, source)
    _refuse_animation(img, source)
    try:
        img.load()
    except Exception as exc:
        raise ImageInputError(f"{source}: truncated or corrupt image data ({_short(exc)})") from None
    rgb = _to_rgb(_oriented(img, source, in_place=False))
    digest = hashlib.sha256(f"RGB:{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return LoadedImage(image=rgb, sha256=digest.hexdigest(), width=rgb.width, height=rgb.height, source=source)


def _refuse_animation(img: Image.Image, source: str) -> None:
    frames = getattr(img, "n_frames", 1)
    if getattr(img, "is_animated", False) or frames > 1:
        raise ImageInputError(
            f"{source}: animated or multi-frame image ({frames} frames) refused; send a single still image"
        )


def _oriented(img: Image.Image, source: str, *, in_place: bool) -> Image.Image:
    """Apply the EXIF orientation so the detectors' boxes match what a viewer shows."""
    try:
        if img.getexif().get(_EXIF_ORIENTATION, 1) in (1, None):
            return img
        if in_place:
            ImageOps.exif_transpose(img, in_place=True)
            return img
        return ImageOps.exif_transpose(img)
    except Exception as exc:
        raise ImageInputError(f"{source}: corrupt EXIF data ({_short(exc)})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """A new 8-bit RGB image with an empty `info`; alpha is dropped (not composited) so hidden pixels count."""
    mode = img.mode
    if mode in _HIGH_BIT_MODES:
        import numpy as np

        arr = np.asarray(img)
        if mode == "F":  # float data: 0..1 or 0..255 by convention
            scale = 255.0 if float(arr.max(initial=0.0)) <= 1.0 else 1.0
            eight = np.clip(arr * scale, 0, 255).astype(np.uint8)
        else:  # 16-bit data: keep the top 8 bits (a linear rescale, not PIL's clip at 255)
            eight = (np.clip(arr.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
        out = Image.fromarray(eight).convert("RGB")
    elif mode == "RGB":
        out = img.copy()
    elif mode in {"LA", "La"}:
        out = img.convert("L").convert("RGB")
    elif mode == "PA":
        out = img.convert("RGBA").convert("RGB")
    else:  # RGBA, RGBa, RGBX, P (palette transparency ignored on purpose), L, 1, CMYK, YCbCr, LAB, HSV
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "palette images with transparency ..."
            out = img.convert("RGB")
    out.info = {}
    return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


OUTPUT_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def encode_image(image: Image.Image, fmt: str = "PNG") -> bytes:
    """Encode with no metadata at all: no EXIF, ICC profile, text chunks or DPI from any input."""
    fmt = fmt.upper()
    if fmt not in ACCEPTED_FORMATS:
        raise ValueError(f"cannot write {fmt}; formats: {', '.join(ACCEPTED_FORMATS)}")
    clean = image.convert("RGB") if image.mode != "RGB" else image.copy()
    clean.info = {}
    buf = io.BytesIO()
    options: dict[str, Any] = {"quality": 95} if fmt in {"JPEG", "WEBP"} else {}
    clean.save(buf, format=fmt, **options)
    return buf.getvalue()
