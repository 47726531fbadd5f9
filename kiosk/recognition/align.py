"""Face alignment: level the eyes, crop with a margin, resize to FaceNet's 160x160.

Rotation, crop and resize are one affine transform, applied with a single
``cv2.warpAffine`` per face: cheap, and the source image is never copied.
The crop is square (the box's longer side times ``1 + margin_ratio``), centred
on the box, so faces are never stretched; parts outside the image repeat the
edge pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from kiosk.recognition.types import Detection

FACE_SIZE = 160


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle of the line from the image-left eye to the image-right eye, in radians."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return math.atan2(float(ry - ly), float(rx - lx))


def alignment_matrix(
    detection: Detection, *, margin_ratio: float, use_alignment: bool, size: int = FACE_SIZE
) -> np.ndarray:
    """The 2x3 affine matrix that maps image pixels to the aligned ``size``x``size`` crop."""
    x1, y1, x2, y2 = detection.box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + margin_ratio)
    scale = size / side
    theta = eye_angle(detection.landmarks) if use_alignment else 0.0
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    # dest = S * R(-theta) * (src - c) + size/2
    return np.array(
        [
            [cos, sin, size / 2.0 - (cos * cx + sin * cy)],
            [-sin, cos, size / 2.0 - (-sin * cx + cos * cy)],
        ],
        dtype=np.float64,
    )


def align_face(
    image: np.ndarray,
    detection: Detection,
    *,
    margin_ratio: float,
    use_alignment: bool,
    size: int = FACE_SIZE,
) -> np.ndarray:
    """Return the aligned face as a ``size``x``size``x3 uint8 RGB array."""
    matrix = alignment_matrix(
        detection, margin_ratio=margin_ratio, use_alignment=use_alignment, size=size
    )
    side_in_image = size / math.hypot(matrix[0, 0], matrix[0, 1])
    src = image
    if side_in_image > 2 * size:
        # Strong downscaling with bilinear sampling aliases; blur first, like INTER_AREA would.
        sigma = 0.5 * side_in_image / size
        x1, y1, x2, y2 = detection.box
        pad = int(side_in_image)
        ox, oy = max(0, int(x1) - pad), max(0, int(y1) - pad)
        crop = image[oy : int(y2) + pad, ox : int(x2) + pad]
        src = cv2.GaussianBlur(crop, (0, 0), sigma)
        matrix = matrix.copy()
        matrix[:, 2] += matrix[:, 0] * ox + matrix[:, 1] * oy
    aligned: np.ndarray = cv2.warpAffine(
        src, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return aligned


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    moved: np.ndarray = pts @ matrix[:, :2].T + matrix[:, 2]
    return moved
