"""Hostile and odd image inputs, generated here (never stored): each gets a clear error or a
correct decision, through the Moderator with the real models and through `fluxwarden check image`.
None may crash, hang, or be allowed by mistake."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from moderation.cli import app
from moderation.moderator import InputError, Moderator
from moderation.types import Action


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _photo(width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose IHDR claims width × height RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + _png_chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "green", "blue")]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def corrupt_png_data() -> bytes:
    """A PNG whose compressed pixel data is garbage (valid header, valid CRC on a junk IDAT)."""
    good = _encode(_photo(), "PNG")
    ihdr_end = 8 + 25
    return good[:ihdr_end] + _png_chunk(b"IDAT", b"\x78\x9c" + bytes(range(256)) * 4) + _png_chunk(b"IEND", b"")


# name -> (file name, bytes factory, expected error fragment)
REFUSED: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "zero_bytes": ("empty.png", lambda: b"", "empty input (0 bytes)"),
    "truncated_png": ("cut.png", lambda: _half(_encode(_photo(), "PNG")), "truncated or corrupt PNG data"),
    "truncated_jpeg": ("cut.jpg", lambda: _half(_encode(_photo(), "JPEG")), "truncated or corrupt JPEG data"),
    "jpeg_header_only": ("head.jpg", lambda: _encode(_photo(), "JPEG")[:300], "truncated or corrupt JPEG header"),
    "corrupt_png_data": ("junk.png", corrupt_png_data, "corrupt PNG"),
    "bomb_100k_by_100k": ("bomb.png", lambda: png_claiming(100_000, 100_000), "refused before decoding"),
    "over_pixel_limit": ("big.png", lambda: png_claiming(8000, 8000), "64000000 pixels exceeds the limit"),
    "text_named_png": ("notes.png", lambda: b"this is a shopping list, not an image\n", "not a recognised image"),
    "animated_gif": ("anim.gif", animated_gif, "GIF is not accepted (animated images are refused)"),
    "html_named_jpg": ("page.jpg", lambda: b"<html><body>hi</body></html>", "not a recognised image"),
}

# name -> (file name, bytes factory): odd but valid images that must get a correct (allow) decision.
ACCEPTED: dict[str, tuple[str, Callable[[], bytes]]] = {
    "one_by_one": ("dot.png", lambda: _encode(Image.new("RGB", (1, 1), (90, 120, 200)), "PNG")),
    "grey_16_bit": (
        "grey16.png",
        lambda: _encode(Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16), "PNG"),
    ),
    "cmyk_jpeg": ("cmyk.jpg", lambda: _encode(_photo().convert("CMYK"), "JPEG", quality=90)),
    "palette_with_transparency": (
        "pal.png",
        lambda: _encode(_photo().convert("P"), "PNG", transparency=0),
    ),
    "webp": ("photo.webp", lambda: _encode(_photo(), "WEBP")),
}


@pytest.fixture(scope="module")
def moderator() -> Iterator[Moderator]:
    m = Moderator.from_policy("default")
    yield m
    m.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_input_gets_a_clear_error(moderator: Moderator, tmp_path: Path, case: str) -> None:
    """Bad files raise InputError naming the file and the problem; no decision is produced."""
    name, make, fragment = REFUSED[case]
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(InputError) as info:
        moderator.check_image(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_bytes_get_the_same_error(moderator: Moderator, case: str) -> None:
    """The same inputs as in-memory bytes (the HTTP path) are refused the same way."""
    _, make, fragment = REFUSED[case]
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        moderator.check_image(make())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_odd_but_valid_images_get_a_correct_decision(moderator: Moderator, tmp_path: Path, case: str) -> None:
    """1×1, 16-bit grey, CMYK, palette+transparency and WebP images are checked by both models and allowed."""
    name, make = ACCEPTED[case]
    path = tmp_path / name
    path.write_bytes(make())
    decision = moderator.check_image(path)
    assert decision.action is Action.ALLOW
    assert {c.split("@")[0] for c in decision.classifiers} == {"nudenet", "open_nsfw"}
    assert all(r.code != "classifier_error" for r in decision.reasons)


@pytest.mark.timeout(30)
def test_one_bad_image_in_a_batch_names_its_index(moderator: Moderator) -> None:
    """A batch with one unreadable image fails with the index of that image, checking none."""
    good = _encode(_photo(), "PNG")
    with pytest.raises(InputError, match=r"^image 1: "):
        moderator.check_images([good, b"", good])


# --- the CLI: one line naming the file, exit 2 -----------------------------------------------------

runner = CliRunner()


def _check(*args: str) -> Result:
    """Run `fluxwarden check image ARGS...` in process."""
    return runner.invoke(app, ["check", "image", *args])


def _policy_file(tmp_path: Path, image_categories: str, extra: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"id: cli-test\nextends: default\nimage:\n  categories:\n    {image_categories}\n{extra}", encoding="utf-8"
    )
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["zero_bytes", "truncated_png", "bomb_100k_by_100k", "text_named_png", "animated_gif"])
def test_cli_unreadable_input_exits_2_with_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    """`check image BAD` exits 2 and prints one error line that names the file."""
    name, make, fragment = REFUSED[case]
    path = tmp_path / name
    path.write_bytes(make())
    result = _check(str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert fragment in lines[0]


@pytest.mark.timeout(60)
def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    """A path that does not exist is an input error naming it."""
    result = _check(str(tmp_path / "absent.png"))
    assert result.exit_code == 2
    assert f"{tmp_path / 'absent.png'}: no such file" in result.stderr


@pytest.mark.timeout(60)
def test_cli_input_error_wins_over_allowed_images(tmp_path: Path) -> None:
    """Good and bad files together: the good one is still reported, and the exit code is 2."""
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(_encode(_photo(), "PNG"))
    bad.write_bytes(b"")
    result = _check(str(good), str(bad))
    assert result.exit_code == 2
    assert result.stdout.startswith(f"{good}: allow")


@pytest.mark.timeout(60)
def test_cli_benign_image_exits_0(tmp_path: Path) -> None:
    """An allowed image prints allow and exits 0."""
    path = tmp_path / "ok.jpg"
    path.write_bytes(_encode(_photo(), "JPEG"))
    result = _check(str(path))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{path}: allow")


@pytest.mark.timeout(60)
def test_cli_blocked_image_exits_1_and_writes_black(tmp_path: Path) -> None:
    """With a policy that blocks at any score, the image is blocked (exit 1) and --out gets a black copy."""
    path = tmp_path / "photo.png"
    path.write_bytes(_encode(_photo(), "PNG"))
    policy = _policy_file(tmp_path, "sexual: {block: 0.0}")
    out = tmp_path / "out"
    result = _check(str(path), "--policy", str(policy), "--out", str(out))
    assert result.exit_code == 1
    written = Image.open(out / "photo.png")
    assert written.size == (96, 64)
    assert not np.asarray(written).any()


@pytest.mark.timeout(60)
def test_cli_out_writes_the_blurred_image_without_metadata(tmp_path: Path) -> None:
    """--out writes the image as the policy leaves it: blurred everywhere, no EXIF; JSON says where."""
    import json

    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x010E] = "a description that must not leak"
    path.write_bytes(_encode(_photo(), "JPEG", exif=exif.tobytes(), quality=95))
    policy = _policy_file(tmp_path, "sexual: {blur: 0.0}", "  blur: {mode: full}\n")
    out = tmp_path / "out"
    result = _check(str(path), "-p", str(policy), "--out", str(out), "--json")
    assert result.exit_code == 0
    record = json.loads(result.stdout.strip())
    assert record["decision"]["action"] == "blur"
    assert record["output"] == str(out / "photo.jpg")
    written = Image.open(out / "photo.jpg")
    assert not written.getexif()
    assert np.abs(np.asarray(written, dtype=int) - np.asarray(Image.open(path), dtype=int)).mean() > 5


@pytest.mark.timeout(60)
def test_cli_dropped_image_is_not_written(tmp_path: Path) -> None:
    """blocked_output: drop writes nothing for a blocked image and says so."""
    path = tmp_path / "photo.png"
    path.write_bytes(_encode(_photo(), "PNG"))
    policy = _policy_file(tmp_path, "sexual: {block: 0.0}", "  blocked_output: drop\n")
    out = tmp_path / "out"
    result = _check(str(path), "-p", str(policy), "--out", str(out))
    assert result.exit_code == 1
    assert "dropped" in result.stdout
    assert list(out.iterdir()) == []


@pytest.mark.timeout(60)
def test_cli_out_never_overwrites_the_input(tmp_path: Path) -> None:
    """--out pointing at the input's own folder writes a new file beside it."""
    path = tmp_path / "photo.png"
    original = _encode(_photo(), "PNG")
    path.write_bytes(original)
    result = _check(str(path), "--out", str(tmp_path))
    assert result.exit_code == 0
    assert path.read_bytes() == original
    assert (tmp_path / "photo.moderated.png").is_file()
