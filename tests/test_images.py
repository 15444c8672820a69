"""Safe decoding: formats, orientation, modes, limits and metadata (all images generated here)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from moderation.images import ImageInputError, LoadedImage, encode_image, load_image


def _noise(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    """PNG, JPEG and WebP bytes decode to an RGB image of the encoded size."""
    loaded = load_image(_encode(_noise(), fmt))
    assert (loaded.image.mode, loaded.width, loaded.height, loaded.format) == ("RGB", 48, 32, fmt)


def test_png_pixels_survive_decoding_exactly() -> None:
    """Lossless input decodes to exactly the encoded pixels."""
    img = _noise()
    assert np.array_equal(load_image(_encode(img, "PNG")).rgb, np.asarray(img))


def test_sha256_is_of_the_input_bytes() -> None:
    """Encoded input is identified by the SHA-256 of its bytes (what the audit log records)."""
    data = _encode(_noise(), "PNG")
    assert load_image(data).sha256 == hashlib.sha256(data).hexdigest()


def test_path_input_reads_the_file_and_names_it(tmp_path: Path) -> None:
    """A path is read and used as the source label."""
    path = tmp_path / "x.jpg"
    path.write_bytes(_encode(_noise(), "JPEG"))
    loaded = load_image(path)
    assert loaded.source == str(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pil_input_hash_depends_on_pixels_only() -> None:
    """Two PIL images with the same pixels hash alike; one changed pixel changes the hash."""
    a, b = _noise(), _noise()
    b_changed = _noise()
    b_changed.putpixel((0, 0), (1, 2, 3))
    assert load_image(a).sha256 == load_image(b).sha256 != load_image(b_changed).sha256


def test_pil_input_is_not_modified() -> None:
    """Loading converts a copy; the caller's image keeps its mode and pixels."""
    img = _noise().convert("RGBA")
    before = np.asarray(img).copy()
    load_image(img)
    assert img.mode == "RGBA"
    assert np.array_equal(np.asarray(img), before)


def test_exif_orientation_is_applied() -> None:
    """A JPEG tagged 'rotate 90° CW' (orientation 6) is turned upright: width and height swap."""
    img = Image.new("RGB", (60, 20), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the stored image's left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = load_image(_encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert (loaded.width, loaded.height) == (20, 60)
    top_red = loaded.rgb[:5, :, 0].mean()  # the stored left edge is now the top
    assert top_red > 200
    assert loaded.rgb[-5:, :, 1].mean() > 200  # bottom is white (green channel high)


def test_alpha_is_discarded_so_hidden_pixels_are_checked() -> None:
    """Fully transparent pixels keep their colour: transparency cannot hide content from the checkers."""
    arr = np.zeros((16, 16, 4), dtype=np.uint8)
    arr[..., 0] = 200  # red, but alpha 0 everywhere
    loaded = load_image(_encode(Image.fromarray(arr, "RGBA"), "PNG"))
    assert loaded.rgb[..., 0].min() == 200


@pytest.mark.parametrize("mode", ["P", "LA", "L", "1", "RGBA"])
def test_other_modes_become_rgb(mode: str) -> None:
    """Palette, grey, grey+alpha, bilevel and RGBA PNGs are converted to RGB."""
    loaded = load_image(_encode(_noise().convert(mode), "PNG"))
    assert loaded.image.mode == "RGB"
    assert loaded.rgb.shape == (32, 48, 3)


def test_cmyk_jpeg_becomes_rgb_with_similar_colours() -> None:
    """A CMYK JPEG decodes to RGB close to the original colours."""
    img = Image.new("RGB", (32, 32), (200, 40, 40))
    loaded = load_image(_encode(img.convert("CMYK"), "JPEG", quality=95))
    assert np.abs(loaded.rgb.astype(int) - np.array([200, 40, 40])).max() < 20


def test_16_bit_grey_is_rescaled_not_clipped() -> None:
    """16-bit grey keeps its tones (top 8 bits), instead of PIL's clip that turns most of it white."""
    arr = np.array([[0, 32768, 65535, 4096]], dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    loaded = load_image(_encode(img, "PNG"))
    assert loaded.rgb[0, :, 0].tolist() == [0, 128, 255, 16]


def test_decoded_image_has_no_metadata() -> None:
    """EXIF, ICC profile and PNG text chunks from the input are gone from the decoded image."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret prompt")
    exif = Image.Exif()
    exif[0x010E] = "description"
    data = _encode(_noise(), "PNG", pnginfo=info, exif=exif.tobytes(), icc_profile=b"\0" * 128)
    assert Image.open(io.BytesIO(data)).info  # the input does carry metadata
    assert load_image(data).image.info == {}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_encode_image_writes_no_metadata(fmt: str) -> None:
    """Re-encoded output carries no EXIF, ICC or text even if the image object had some."""
    img = _noise()
    img.info = {"exif": b"Exif\0\0junk", "icc_profile": b"\0" * 128, "Comment": "secret"}
    reread = Image.open(io.BytesIO(encode_image(img, fmt)))
    assert not {"exif", "icc_profile", "Comment"} & set(reread.info)
    assert not reread.getexif()


def test_bgr_is_rgb_reversed_and_contiguous() -> None:
    """The BGR accessor (for NudeNet) is the RGB array with channels reversed, C-contiguous."""
    loaded = load_image(_noise())
    assert loaded.bgr.flags["C_CONTIGUOUS"]
    assert np.array_equal(loaded.bgr, loaded.rgb[:, :, ::-1])


def test_loaded_image_is_passed_through() -> None:
    """A LoadedImage is accepted as is (the pipeline decodes once)."""
    loaded = load_image(_noise())
    assert load_image(loaded) is loaded


def test_loaded_image_is_frozen() -> None:
    """LoadedImage fields cannot be reassigned."""
    loaded = load_image(_noise())
    with pytest.raises(AttributeError):
        loaded.sha256 = "x"  # type: ignore[misc]
    assert isinstance(loaded, LoadedImage)


def test_byte_limit_refuses_large_bytes() -> None:
    """Encoded input over max_bytes is refused with both numbers in the message."""
    data = _encode(_noise(), "PNG")
    with pytest.raises(ImageInputError, match=rf"{len(data)} bytes exceeds the limit of 100 bytes"):
        load_image(data, max_bytes=100)


def test_byte_limit_refuses_large_files_before_reading(tmp_path: Path) -> None:
    """A file over max_bytes is refused from its size (a sparse 10 GB file is never read)."""
    path = tmp_path / "huge.png"
    with path.open("wb") as fh:
        fh.truncate(10 * 1024**3)
    with pytest.raises(ImageInputError, match="exceeds the limit"):
        load_image(path)


def test_pixel_limit_refuses_large_images() -> None:
    """An image over max_pixels is refused, naming its size and the limit."""
    with pytest.raises(ImageInputError, match=r"48×32 = 1536 pixels exceeds the limit of 1000"):
        load_image(_encode(_noise(), "PNG"), max_pixels=1000)


def test_pixel_limit_applies_to_pil_input() -> None:
    """In-memory images obey the pixel limit too."""
    with pytest.raises(ImageInputError, match="exceeds the limit"):
        load_image(_noise(), max_pixels=10)


def test_missing_file_is_named(tmp_path: Path) -> None:
    """A missing path fails with 'no such file' and the path."""
    path = tmp_path / "nope.png"
    with pytest.raises(ImageInputError, match=rf"{path}: no such file"):
        load_image(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory is not an image file."""
    with pytest.raises(ImageInputError, match="is a directory"):
        load_image(tmp_path)


@pytest.mark.timeout(10)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A named pipe is refused from its type instead of blocking on open."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageInputError, match="not a regular file"):
        load_image(fifo)


def test_binary_stream_is_read() -> None:
    """A binary file object is read (up to the byte limit) and decoded."""
    loaded = load_image(io.BytesIO(_encode(_noise(), "PNG")))
    assert loaded.width == 48


def test_unsupported_python_type_is_refused() -> None:
    """Anything that is not an image, bytes, path or stream gets a type error message."""
    with pytest.raises(ImageInputError, match="unsupported image input type int"):
        load_image(42)


@pytest.mark.parametrize(("fmt", "label"), [("BMP", "BMP"), ("TIFF", "TIFF")])
def test_other_real_formats_are_named_and_refused(fmt: str, label: str) -> None:
    """Formats PIL could parse but fluxwarden does not accept are refused by name (smaller attack surface)."""
    with pytest.raises(ImageInputError, match=rf"{label} is not accepted"):
        load_image(_encode(_noise(), fmt))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_png_and_webp_are_refused(fmt: str) -> None:
    """Multi-frame PNG (APNG) and WebP are refused: a later frame would go unchecked."""
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "green", "blue")]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageInputError, match=r"animated or multi-frame image \(3 frames\) refused"):
        load_image(data)


def test_animated_pil_image_is_refused() -> None:
    """An opened animated image passed as a PIL object is refused too."""
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "green")]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageInputError, match="animated"):
        load_image(Image.open(io.BytesIO(data)))


def test_multi_picture_jpeg_is_refused() -> None:
    """A JPEG carrying a second picture (MPO, as some cameras write) is refused like any multi-frame image."""
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    data = _encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert data[:3] == b"\xff\xd8\xff"
    with pytest.raises(ImageInputError, match=r"\(2 frames\) refused"):
        load_image(data)


def test_path_with_a_nul_byte_is_an_input_error() -> None:
    """A path string with an embedded NUL is refused cleanly, not with a ValueError from the OS layer."""
    with pytest.raises(ImageInputError, match="cannot read"):
        load_image("photo\0.png")
