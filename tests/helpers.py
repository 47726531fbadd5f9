"""Small helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from kiosk.settings import Settings


def with_recognition(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(
        settings, recognition=dataclasses.replace(settings.recognition, **changes)
    )


def with_gallery(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, gallery=dataclasses.replace(settings.gallery, **changes))


def write_image(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB array with OpenCV (format from the suffix)."""
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), path
    return path


def two_faces(rgb: np.ndarray) -> np.ndarray:
    """The image twice, side by side: a picture with two faces."""
    return np.ascontiguousarray(np.concatenate([rgb, rgb], axis=1))


def no_face(shape: tuple[int, int] = (480, 640)) -> np.ndarray:
    """A smooth gradient: an image without any face."""
    h, w = shape
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, axis=0)
    return np.ascontiguousarray(
        np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], -1).astype(np.uint8)
    )


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll ``condition`` every 20 ms until it is true or ``timeout`` s passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())
