"""Base64 and data-URL images in, base64 images out; every malformed input is a specific 400."""

from __future__ import annotations

import base64
import binascii
import re

from service.errors import APIError

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)
_WHITESPACE = re.compile(r"\s+")


def decode_image_data(value: str, *, param: str) -> bytes:
    """Bytes of a `data:image/...;base64,` URL or of bare base64; remote URLs are refused (no egress)."""
    text = value.strip()
    if text.lower().startswith(("http://", "https://")):
        raise APIError(
            400,
            f"{param}: remote image URLs are not fetched (the sidecar makes no outbound requests); "
            "send a data URL such as data:image/png;base64,...",
            param=param,
            code="invalid_image_url",
        )
    if text.lower().startswith("data:"):
        match = _DATA_URL.match(text)
        if match is None:
            raise APIError(400, f"{param}: malformed data URL", param=param, code="invalid_image_url")
        if not match.group("b64"):
            raise APIError(
                400, f"{param}: data URL must be base64-encoded (;base64,)", param=param, code="invalid_image_url"
            )
        mime = (match.group("mime") or "").lower()
        if mime and not mime.startswith("image/"):
            raise APIError(
                400, f"{param}: data URL has type {mime}, not an image", param=param, code="invalid_image_url"
            )
        text = text[match.end() :]
    payload = _WHITESPACE.sub("", text)
    if not payload:
        raise APIError(400, f"{param}: no image data", param=param, code="invalid_base64")
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(400, f"{param}: not valid base64 ({exc})", param=param, code="invalid_base64") from None


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
