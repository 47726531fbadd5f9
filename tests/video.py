"""Synthetic scenes and videos for the live-pipeline tests: real faces, moving.

Frames are RGB. The faces are crops of ``skimage.data.astronaut()``; the second
"person" is the same crop with its colour channels reversed (with the suite's
random FaceNet weights that is about 0.2 away, a different identity at threshold 0.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

FACE_CROP = (slice(20, 240), slice(130, 320))  # the astronaut's head, with some margin


def face_patch(astronaut: np.ndarray, height: int, swapped: bool = False) -> np.ndarray:
    crop = astronaut[FACE_CROP]
    if swapped:
        crop = crop[:, :, ::-1]
    width = round(crop.shape[1] * height / crop.shape[0])
    return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))


def scene(size: tuple[int, int], patches: Sequence[tuple[np.ndarray, int, int]]) -> np.ndarray:
    """A (width, height) frame with each patch pasted at its (x, y) top-left corner."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[..., 0] = 90 + (xx * 40 // w)  # a gentle gradient, not a flat wall
    frame[..., 1] = 100 + (yy * 30 // h)
    frame[..., 2] = 110
    for patch, x, y in patches:
        ph, pw = patch.shape[:2]
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(w, x + pw), min(h, y + ph)
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    return frame


def two_people_walking(astronaut: np.ndarray, count: int, step: int = 4) -> list[np.ndarray]:
    """Two faces crossing a 640x480 frame in opposite directions, at different heights."""
    a = face_patch(astronaut, 150)
    b = face_patch(astronaut, 130, swapped=True)
    return [
        scene((640, 480), [(a, 40 + step * i, 30), (b, 460 - step * i, 300)]) for i in range(count)
    ]


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write RGB frames with OpenCV (Motion-JPEG in AVI: decodable everywhere)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def ada_video(path: Path, astronaut: np.ndarray, frames: int = 40, height: int = 170) -> Path:
    """Ada drifting slowly across a 640x480 frame (a looping file source)."""
    patch = face_patch(astronaut, height)
    y = (480 - height) // 2
    return write_video(
        path, [scene((640, 480), [(patch, 200 + 2 * i, y)]) for i in range(frames)], fps=15
    )
