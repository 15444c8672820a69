"""How inputs appear in the log, per the policy's `audit.store_inputs` / `audit.store_images`.

Text: `none` (length only), `hash` (HMAC-SHA256 keyed with the directory's salt — the default),
`redacted` (matched terms and personal identifiers masked, plus the hash), `full` (verbatim).
Images: SHA-256 of the file (or of the pixels when only a decoded image is at hand), optionally a
perceptual hash (`phash`); pixels are stored only with `full`, as a file beside the log.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from audit.events import InputRecord

if TYPE_CHECKING:
    from PIL import Image

_PII = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("url", re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)),
    ("phone", re.compile(r"\+?\d[\d\s().-]{6,}\d")),
    ("number", re.compile(r"\b\d{5,}\b")),
)


def redact(text: str, terms: Iterable[tuple[str, str]]) -> str:
    """Mask each (matched text, category) pair and common personal identifiers."""
    for matched, category in sorted(set(terms), key=lambda t: -len(t[0])):
        if matched.strip():
            text = re.sub(re.escape(matched), f"[{category or 'match'}]", text, flags=re.IGNORECASE)
    for label, pattern in _PII:
        text = pattern.sub(f"[{label}]", text)
    return text


def text_record(
    text: str,
    mode: str,
    *,
    digest: Callable[[bytes], str],
    redact_terms: Iterable[tuple[str, str]] = (),
) -> InputRecord:
    if mode not in ("none", "hash", "redacted", "full"):
        raise ValueError(f"store_inputs must be none, hash, redacted or full, got {mode!r}")
    if mode == "none":
        return InputRecord(kind="text", mode=mode, chars=len(text))
    salted = digest(text.encode("utf-8"))
    if mode == "hash":
        return InputRecord(kind="text", mode=mode, chars=len(text), salted_sha256=salted)
    shown = redact(text, redact_terms) if mode == "redacted" else text
    return InputRecord(kind="text", mode=mode, chars=len(text), salted_sha256=salted, text=shown)


def image_record(
    mode: str,
    *,
    image_bytes: bytes | None = None,
    image_sha256: str | None = None,
    image: Image.Image | None = None,
    store_file: Callable[[bytes, str, str], str] | None = None,
) -> InputRecord:
    """Digest (and, only for `full`, a stored copy) of an image; raises if nothing identifies it."""
    if mode not in ("hash", "phash", "full"):
        raise ValueError(f"store_images must be hash, phash or full, got {mode!r}")
    sha = image_sha256
    if image_bytes is not None:
        sha = hashlib.sha256(image_bytes).hexdigest()
    elif sha is None and image is not None:
        sha = hashlib.sha256(image.tobytes()).hexdigest()
    if sha is None:
        raise ValueError("an image audit record needs image_bytes, image_sha256 or image")
    if image is None and image_bytes is None:
        mode = "hash"  # only a digest was handed to us: record honestly what could be kept
    fields: dict[str, Any] = {"kind": "image", "mode": mode, "sha256": sha}
    if image_bytes is not None:
        fields["bytes"] = len(image_bytes)
    if mode in ("phash", "full"):
        fields["phash"] = _try_dhash(image, image_bytes)
    if mode == "full":
        if store_file is None:
            raise ValueError("this audit sink cannot store image files; use store_images: hash")
        data = image_bytes if image_bytes is not None else _encode_png(image)
        fields["path"] = store_file(data, sha, ".png" if image_bytes is None else ".img")
    return InputRecord(**fields)


def dhash(image: Image.Image, size: int = 8) -> str:
    """64-bit difference hash: near-identical images (re-encoded, resized) get near-equal hashes."""
    from PIL import Image as PILImage

    gray = image.convert("L").resize((size + 1, size), PILImage.Resampling.LANCZOS)
    px = gray.tobytes()
    bits = 0
    for row in range(size):
        for col in range(size):
            left, right = px[row * (size + 1) + col], px[row * (size + 1) + col + 1]
            bits = (bits << 1) | (left > right)
    return f"{bits:0{size * size // 4}x}"


def _try_dhash(image: Image.Image | None, data: bytes | None) -> str | None:
    """A perceptual hash is a convenience: an undecodable file still gets its event, without one."""
    from PIL import UnidentifiedImageError

    try:
        return dhash(image if image is not None else _decode(data))
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _decode(data: bytes | None) -> Image.Image:
    from PIL import Image as PILImage

    assert data is not None
    return PILImage.open(io.BytesIO(data))


def _encode_png(image: Image.Image | None) -> bytes:
    assert image is not None
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
