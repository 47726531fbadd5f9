"""kiosk.imaging: every bad or odd input either becomes RGB uint8 (H, W, 3) or an ImageError.

Files are made on the fly in ``tmp_path``: real images written with Pillow or OpenCV,
then cut, patched or corrupted. Size limits must be enforced from the header alone;
the tests prove it by making Pillow's pixel decoding fail if it is ever reached.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from kiosk.errors import ImageDecodeError, ImageTooLargeError
from kiosk.imaging import decode_image, load_image
from tests.helpers import write_image

MAX_PIXELS = 10_000_000
MAX_BYTES = 10_000_000


def load(path: Path, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> np.ndarray:
    return load_image(path, max_pixels=max_pixels, max_bytes=max_bytes)


def assert_rgb8(arr: np.ndarray, height: int, width: int) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8
    assert arr.shape == (height, width, 3)
    assert arr.flags["C_CONTIGUOUS"]


def pil_bytes(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def noise_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_with_header_size(width: int, height: int) -> bytes:
    """A real 4x4 PNG whose IHDR claims ``width`` x ``height`` (CRC fixed): tiny on disk."""
    data = pil_bytes(Image.new("RGB", (4, 4), (0, 0, 0)), "PNG")
    assert data[12:16] == b"IHDR"
    chunk = bytearray(data[12:29])  # type + 13 bytes of IHDR data
    chunk[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(chunk)) & 0xFFFFFFFF)
    return data[:12] + bytes(chunk) + crc + data[33:]


class DecodeGuard:
    """Once armed, any pixel decoding by Pillow fails loudly and is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.calls: list[str] = []

    def arm(self) -> None:
        calls = self.calls

        def forbidden(self: Image.Image, *args: object, **kwargs: object) -> None:
            calls.append(type(self).__name__)
            raise AssertionError("pixel data was decoded before the size check")

        self._monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
        self._monkeypatch.setattr(Image.Image, "load", forbidden)


@pytest.fixture
def decode_guard(monkeypatch: pytest.MonkeyPatch) -> DecodeGuard:
    return DecodeGuard(monkeypatch)


# --------------------------------------------------------------------------- round trips


def test_astronaut_jpeg_round_trip(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = write_image(tmp_path / "astronaut.jpg", astronaut)
    out = load(path)
    assert_rgb8(out, 512, 512)
    diff = np.abs(out.astype(np.int16) - astronaut.astype(np.int16))
    assert diff.mean() < 4.0
    # Channel order is RGB, not OpenCV's BGR: swapping R and B would be far off.
    swapped = np.abs(out[..., ::-1].astype(np.int16) - astronaut.astype(np.int16))
    assert swapped.mean() > 4 * diff.mean()


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_round_trip_exactly(tmp_path: Path, suffix: str) -> None:
    rgb = noise_rgb(23, 37)
    path = tmp_path / f"noise{suffix}"
    params = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(rgb).save(path, **params)
    out = load(path)
    assert_rgb8(out, 23, 37)
    np.testing.assert_array_equal(out, rgb)


def test_decode_image_bytes_matches_load_image(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = write_image(tmp_path / "astronaut.png", astronaut)
    from_bytes = decode_image(path.read_bytes(), name="upload", max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(from_bytes, astronaut)
    np.testing.assert_array_equal(load(path), astronaut)


# ------------------------------------------------------------------- unreadable input


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"  # the name must not contain "empty" itself
    path.touch()
    with pytest.raises(ImageDecodeError, match=r"empty \(0 bytes\)") as info:
        load(path)
    assert str(path) in str(info.value)


def test_empty_bytes_to_decode_image() -> None:
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(b"", name="upload", max_pixels=MAX_PIXELS)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageDecodeError, match="cannot read") as info:
        load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    with pytest.raises(ImageDecodeError, match="cannot read") as info:
        load(folder)
    assert isinstance(info.value.__cause__, IsADirectoryError)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Faked, because the suite may run as root, who can read a chmod 000 file.
    path = write_image(tmp_path / "locked.png", noise_rgb(8, 8))

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ImageDecodeError, match="Permission denied") as info:
        load(path)
    assert isinstance(info.value.__cause__, PermissionError)


@pytest.mark.parametrize("name", ["notes.txt", "notes.jpg"])
def test_text_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("This is not a picture of anyone.\n" * 20)
    with pytest.raises(ImageDecodeError, match="not an image") as info:
        load(path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None


def test_random_bytes_with_jpeg_header(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jpg"
    junk = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + junk)
    with pytest.raises(ImageDecodeError) as info:
        load(path)
    assert info.value.__cause__ is not None


def test_png_with_corrupt_pixel_data(tmp_path: Path) -> None:
    data = bytearray(pil_bytes(Image.fromarray(noise_rgb(32, 32)), "PNG"))
    start = data.index(b"IDAT") + 4 + 2  # past the zlib header
    data[start : start + 200] = bytes(200)  # zero out the deflate stream
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageDecodeError):
        load(path)


@pytest.mark.parametrize(
    ("suffix", "save"),
    [
        (".jpg", {"format": "JPEG", "quality": 90}),
        (".png", {"format": "PNG"}),
        (".bmp", {"format": "BMP"}),
        (".gif", {"format": "GIF"}),
        (".tiff", {"format": "TIFF"}),
        (".webp", {"format": "WEBP"}),
    ],
)
def test_truncated_file(tmp_path: Path, suffix: str, save: dict[str, object]) -> None:
    full = tmp_path / f"full{suffix}"
    Image.fromarray(noise_rgb(96, 128)).save(full, **save)
    assert load(full).shape == (96, 128, 3)  # the uncut file is fine
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError) as info:
        load(cut)
    assert str(cut) in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("keep", [10, 40, 100])
def test_tiff_cut_inside_its_header(tmp_path: Path, keep: int) -> None:
    # Pillow warns (UserWarning) about such TIFFs while parsing them; the warning must not
    # escape (pytest turns warnings into errors here), only an ImageDecodeError may.
    data = pil_bytes(Image.fromarray(noise_rgb(64, 64)), "TIFF")
    path = tmp_path / "cut.tiff"
    path.write_bytes(data[:keep])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageDecodeError):
            load(path)
    assert [str(w.message) for w in caught] == []


def test_jpeg_with_corrupt_exif_still_loads(tmp_path: Path) -> None:
    rgb = np.zeros((8, 16, 3), np.uint8)
    rgb[:] = (200, 30, 30)
    jpeg = pil_bytes(Image.fromarray(rgb), "JPEG", quality=95)
    # An APP1 Exif segment whose IFD says "5 entries" but stops after one incomplete entry.
    payload = (
        b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06"
    )
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    path = tmp_path / "bad-exif.jpg"
    path.write_bytes(jpeg[:2] + segment + jpeg[2:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = load(path)
    assert [str(w.message) for w in caught] == []
    assert_rgb8(out, 8, 16)
    assert np.abs(out.astype(int) - rgb).max() <= 8


def test_header_with_zero_width(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(png_with_header_size(0, 5))
    with pytest.raises(ImageDecodeError):
        load(path)


# --------------------------------------------------------------------------- size limits


def test_patched_header_is_read_as_the_claimed_size() -> None:
    # The crafted files below are valid PNG headers: Pillow reports the claimed size.
    with Image.open(io.BytesIO(png_with_header_size(5000, 3000))) as img:
        assert img.size == (5000, 3000)


def test_pixel_limit_checked_before_decoding(tmp_path: Path, decode_guard: DecodeGuard) -> None:
    path = tmp_path / "claims-25mp.png"
    path.write_bytes(png_with_header_size(5000, 5000))
    assert path.stat().st_size < 200
    decode_guard.arm()
    with pytest.raises(ImageTooLargeError, match="5000x5000") as info:
        load(path, max_pixels=1_000_000)
    assert "max_pixels" in str(info.value)
    assert decode_guard.calls == []


def test_decompression_bomb_far_over_pillow_limit(
    tmp_path: Path, decode_guard: DecodeGuard
) -> None:
    # 30000x30000 = 900 Mpx: Pillow's own guard refuses it inside Image.open. That is still a
    # too-large image, not a corrupt one.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header_size(30_000, 30_000))
    assert path.stat().st_size < 200
    decode_guard.arm()
    with pytest.raises(ImageTooLargeError, match="max_pixels") as info:
        load(path)
    assert str(path) in str(info.value)
    assert decode_guard.calls == []


def test_image_between_pillow_warning_and_error_limits(
    tmp_path: Path, decode_guard: DecodeGuard
) -> None:
    # 10000x10000 = 100 Mpx: Pillow only warns (DecompressionBombWarning); our limit refuses it
    # and the warning does not leak out.
    path = tmp_path / "big.png"
    path.write_bytes(png_with_header_size(10_000, 10_000))
    decode_guard.arm()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageTooLargeError, match="10000x10000"):
            load(path)
    assert [str(w.message) for w in caught] == []
    assert decode_guard.calls == []


def test_compressible_real_image_over_pixel_limit(
    tmp_path: Path, decode_guard: DecodeGuard
) -> None:
    path = tmp_path / "black.png"
    Image.new("L", (4000, 3000), 0).save(path, optimize=True)
    assert path.stat().st_size < 100_000  # 12 Mpx, tiny on disk
    decode_guard.arm()
    with pytest.raises(ImageTooLargeError, match="4000x3000"):
        load(path, max_pixels=11_999_999)
    assert decode_guard.calls == []


def test_decode_guard_really_catches_decoding(tmp_path: Path, decode_guard: DecodeGuard) -> None:
    # Control: the guard used above fires when an image *is* decoded, so those tests can fail.
    path = write_image(tmp_path / "small.png", noise_rgb(8, 8))
    decode_guard.arm()
    with pytest.raises(AssertionError, match="decoded before the size check"):
        load(path)
    assert decode_guard.calls == ["PngImageFile"]


def test_pixel_limit_is_inclusive(tmp_path: Path) -> None:
    path = write_image(tmp_path / "exact.png", noise_rgb(100, 120))
    assert load(path, max_pixels=12_000).shape == (100, 120, 3)
    with pytest.raises(ImageTooLargeError, match="120x100"):
        load(path, max_pixels=11_999)


def test_byte_limit_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "noise.png", noise_rgb(64, 64))
    size = path.stat().st_size
    assert load(path, max_bytes=size).shape == (64, 64, 3)  # at the limit: accepted

    read: list[Path] = []
    original = Path.read_bytes

    def spy(self: Path) -> bytes:
        read.append(self)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    with pytest.raises(ImageTooLargeError, match="max_bytes") as info:
        load(path, max_bytes=size - 1)
    assert str(path) in str(info.value)
    assert read == []  # refused from stat() alone


# ------------------------------------------------------------------ conversions to RGB8


@pytest.mark.parametrize(("suffix", "tolerance"), [(".png", 0), (".jpg", 6)])
def test_grayscale(tmp_path: Path, suffix: str, tolerance: int) -> None:
    gray = np.zeros((20, 30), np.uint8)
    gray[:, 10:20] = 128
    gray[:, 20:] = 255
    path = tmp_path / f"gray{suffix}"
    Image.fromarray(gray, "L").save(path, **({"quality": 95} if suffix == ".jpg" else {}))
    with Image.open(path) as check:
        assert check.mode == "L"
    out = load(path)
    assert_rgb8(out, 20, 30)
    for channel in range(3):
        assert np.abs(out[..., channel].astype(int) - gray).max() <= tolerance


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # fully transparent black
    rgba[0, 1] = (10, 200, 30, 255)  # opaque
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black
    rgba[1:] = (255, 0, 0, 0)  # fully transparent red
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = load(path)
    assert_rgb8(out, 4, 4)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (10, 200, 30)
    assert np.all(np.abs(out[0, 2].astype(int) - 127) <= 1)
    assert np.all(out[1:] == 255)


def test_la_composited_on_white(tmp_path: Path) -> None:
    la = np.zeros((2, 3, 2), np.uint8)
    la[0, 0] = (0, 0)  # transparent
    la[0, 1] = (60, 255)  # opaque dark gray
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    out = load(path)
    assert_rgb8(out, 2, 3)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (60, 60, 60)


def test_palette_png(tmp_path: Path) -> None:
    img = Image.new("P", (6, 4), 0)
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    pixels = np.array([[0] * 6, [1] * 6, [2] * 6, [0, 1, 2, 0, 1, 2]], np.uint8)
    img.putdata(pixels.ravel().tolist())
    path = tmp_path / "palette.png"
    img.save(path)
    with Image.open(path) as check:
        assert check.mode == "P"
    out = load(path)
    assert_rgb8(out, 4, 6)
    colours = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], np.uint8)
    np.testing.assert_array_equal(out, colours[pixels])


def test_palette_png_with_transparent_index(tmp_path: Path) -> None:
    img = Image.new("P", (2, 1), 0)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    img.putdata([0, 1])
    path = tmp_path / "palette-transparent.png"
    img.save(path, transparency=0)  # index 0 (black) is transparent
    out = load(path)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (0, 0, 255)


def test_16bit_grayscale_png(tmp_path: Path) -> None:
    values = np.array([[65535, 32768, 0], [1000, 16384, 65280]], np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    out = load(path)
    assert_rgb8(out, 2, 3)
    expected = np.array([[255, 128, 0], [4, 64, 254]])
    for channel in range(3):
        assert np.abs(out[..., channel].astype(int) - expected).max() <= 1


def test_16bit_grayscale_png_that_is_dark(tmp_path: Path) -> None:
    # A 16-bit image whose values all fit in 8 bits is a very dark image, not an 8-bit one.
    values = np.array([[255, 200], [100, 0]], np.uint16)
    path = tmp_path / "dark16.png"
    assert cv2.imwrite(str(path), values)
    out = load(path)
    assert_rgb8(out, 2, 2)
    assert out.max() <= 1


def test_16bit_rgb_png_from_opencv(tmp_path: Path) -> None:
    rgb16 = np.zeros((3, 4, 3), np.uint16)
    rgb16[0, 0] = (65535, 0, 0)
    rgb16[0, 1] = (0, 32768, 0)
    rgb16[0, 2] = (0, 0, 65535)
    rgb16[1, :] = (65535, 65535, 65535)
    rgb16[2, :] = (16384, 49152, 1000)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = load(path)
    assert_rgb8(out, 3, 4)
    expected = np.round(rgb16.astype(np.float64) / 65535 * 255)
    assert np.abs(out.astype(np.float64) - expected).max() <= 1.5
    assert tuple(out[0, 0]) == (255, 0, 0)  # red stays red: channel order is RGB
    assert tuple(out[0, 2]) == (0, 0, 255)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :8] = (255, 0, 0)
    rgb[:, 8:16] = (0, 255, 0)
    rgb[:, 16:] = (255, 255, 255)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = load(path)
    assert_rgb8(out, 16, 24)
    for column, colour in ((4, (255, 0, 0)), (12, (0, 255, 0)), (20, (255, 255, 255))):
        assert np.abs(out[8, column].astype(int) - colour).max() <= 10, (column, out[8, column])


def test_one_bit_image(tmp_path: Path) -> None:
    bits = np.zeros((5, 7), bool)
    bits[1:4, 2:5] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    with Image.open(path) as check:
        assert check.mode == "1"
    out = load(path)
    assert_rgb8(out, 5, 7)
    np.testing.assert_array_equal(out, np.where(bits, 255, 0)[..., None].repeat(3, axis=2))


def test_float_tiff(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.5, 1.0]], np.float32)
    path = tmp_path / "float.tiff"
    Image.fromarray(values, "F").save(path)
    out = load(path)
    assert_rgb8(out, 1, 3)
    np.testing.assert_array_equal(out[..., 0], [[0, 128, 255]])


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    first = Image.new("RGB", (6, 4), (255, 0, 0))
    second = Image.new("RGB", (6, 4), (0, 0, 255))
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2
    out = load(path)
    assert_rgb8(out, 4, 6)
    assert np.all(out == np.array([255, 0, 0], np.uint8))


# ------------------------------------------------------------------------ EXIF orientation


ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored
    3: lambda a: np.rot90(a, 2),
    6: lambda a: np.rot90(a, -1),  # stored sideways: rotate 90° clockwise to view
    8: lambda a: np.rot90(a, 1),  # rotate 90° counter-clockwise to view
}


def marked_picture(height: int = 40, width: int = 64) -> np.ndarray:
    """Gray, with a red block top-left and a blue block bottom-left (blocks survive JPEG)."""
    rgb = np.full((height, width, 3), 128, np.uint8)
    rgb[:16, :16] = (255, 0, 0)
    rgb[-16:, :16] = (0, 0, 255)
    return rgb


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_applied(tmp_path: Path, orientation: int) -> None:
    stored = marked_picture()
    path = tmp_path / f"orientation-{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    with Image.open(path) as check:
        assert check.getexif()[0x0112] == orientation
    out = load(path)
    expected = ORIENTATIONS[orientation](stored)
    assert_rgb8(out, *expected.shape[:2])
    assert np.abs(out.astype(int) - expected).mean() < 3


def test_exif_orientation_6_turns_portrait_upright(tmp_path: Path) -> None:
    # A phone holding a portrait sideways stores 64 wide x 40 high with Orientation=6.
    stored = marked_picture(40, 64)
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    out = load(path)
    assert_rgb8(out, 64, 40)  # height and width swapped
    # Rotating 90° clockwise: top-left goes to top-right, bottom-left goes to top-left.
    assert np.abs(out[:8, -8:].astype(int) - (255, 0, 0)).max() <= 12
    assert np.abs(out[:8, :8].astype(int) - (0, 0, 255)).max() <= 12
    assert np.abs(out[-8:, :8].astype(int) - 128).max() <= 12
