"""Safe image decoding: every image the kiosk accepts from a file goes through here.

The rest of the kiosk works on RGB ``uint8`` arrays of shape (H, W, 3). This module
turns whatever a user hands us into that, or refuses with a clear reason:

* size limits are checked on the file and on the header's dimensions *before*
  pixels are decoded, so a decompression bomb costs nothing;
* corrupt, truncated, empty and non-image files raise :class:`ImageDecodeError`;
* EXIF orientation is applied (phones store portraits sideways);
* grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images are
  converted to 8-bit RGB.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kiosk.errors import ImageDecodeError, ImageTooLargeError

RGBImage = np.ndarray  # (H, W, 3) uint8, RGB order


def load_image(path: Path, *, max_pixels: int, max_bytes: int) -> RGBImage:
    """Read ``path`` and return it as an RGB uint8 array, or raise an :class:`ImageError`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise ImageDecodeError(f"{path} is empty (0 bytes)")
    if size > max_bytes:
        raise ImageTooLargeError(
            f"{path} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit "
            "(images.max_bytes)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def decode_image(data: bytes, *, name: str, max_pixels: int) -> RGBImage:
    """Decode encoded image bytes (JPEG, PNG, WebP, BMP, TIFF...) to RGB uint8."""
    try:
        # Pillow's own bomb guard warns, or raises, with its own limit; ours comes first.
        with _quiet_pillow():
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size  # from the header: nothing decoded yet
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{name} is not an image file FaceKiosk can read") from exc
    except Image.DecompressionBombError as exc:
        # Raised by Image.open itself when the header claims over twice Pillow's
        # MAX_IMAGE_PIXELS: that is a too-large image, not a corrupt one.
        raise ImageTooLargeError(
            f"{name} is too large to decode ({exc}); the limit is "
            f"{max_pixels / 1e6:.1f} megapixels (images.max_pixels)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"{name} cannot be decoded: {exc}") from exc
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the "
            f"{max_pixels / 1e6:.1f} megapixel limit (images.max_pixels)"
        )
    if width == 0 or height == 0:
        raise ImageDecodeError(f"{name} has no pixels ({width}x{height})")
    try:
        with _quiet_pillow():
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb8(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow reports truncated data as OSError("image file is truncated ...").
        raise ImageDecodeError(f"{name} is corrupt or truncated: {exc}") from exc


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Silence Pillow's notices about the file; its outcome is our return value or error.

    Pillow warns (``UserWarning``) about corrupt EXIF or truncated TIFF headers while
    it parses them, and warns about its own decompression-bomb limit, which ours
    replaces. Left alone, those would be printed for every odd upload, or escape as
    exceptions where warnings are errors, instead of an :class:`ImageError`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _to_rgb8(img: Image.Image) -> RGBImage:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    rgb = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
