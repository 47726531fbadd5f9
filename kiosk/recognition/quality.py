"""Is this camera frame good enough to enrol someone from? (headless; no Qt, no torch)

Enrolment images become the person's templates for years, so the registration
dialog only lets an admin capture a shot when :class:`QualityGate` says it is
usable, and tells the person in front of the camera the *one* thing to change.
The gate works on a detection the caller already has (the detector runs on the
recognition thread); everything here is cheap numpy/OpenCV on one face crop.

Thresholds were chosen by measuring (numbers in the constants' comments):
``skimage.data.astronaut()``, four studio portraits, real entrance-camera footage
(1920x1080, people walking) and degraded copies of each (darkened, blurred,
JPEG-compressed, downscaled and upscaled again). Sharpness and brightness are
measured on the face box resized to :data:`CROP_SIDE` pixels, so they do not
depend on how far away the person stands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from kiosk.recognition.types import Box, Detection
from kiosk.settings import Settings

Problem = Literal[
    "no_face",
    "several_faces",
    "too_small",
    "too_dark",
    "too_bright",
    "blurry",
    "not_frontal",
    "moving",
]

#: Faces for enrolment must be at least this many pixels (shorter box side) and at
#: least twice ``recognition.min_face_px``: FaceNet sees 160 px crops, and a template
#: upscaled from a tiny face is blurry forever. The astronaut (512x512) is 88 px.
MIN_ENROL_FACE_PX = 80
#: Side of the square grey face crop that sharpness and brightness are measured on.
CROP_SIDE = 112
#: Variance of the Laplacian of that crop. Measured: studio portraits 185-1360, the
#: astronaut 548, real entrance-camera faces (compressed video, walking) 18-53; the same
#: images blurred with a Gaussian of sigma = 3 % of the face size 7-17, 5 % 4-8.
MIN_SHARPNESS = 20.0
#: Mean grey of the face crop (0-255). Measured: portraits and camera faces 101-197;
#: the portraits at 30 % brightness 36-48, at 15 % 18-24.
MIN_BRIGHTNESS = 60.0
MAX_BRIGHTNESS = 210.0
#: Yaw proxy: the nose's offset from the eyes' midpoint along the eye line, divided by
#: the eye distance (0 = frontal). Measured: frontal portraits -0.04..0.20; faces in
#: the entrance footage that are visibly turned 0.32-0.64.
MAX_YAW = 0.30
#: Roll: the eye line's angle from horizontal, degrees. Alignment undoes roll, but a
#: strongly tilted head is also rarely frontal. Measured: portraits -1.3..3.4.
MAX_ROLL_DEG = 20.0
#: Pitch proxy: where the nose sits between the eye line (0) and the mouth line (1).
#: Measured: frontal portraits 0.44-0.80 (looking up lowers it, looking down raises it).
PITCH_RANGE = (0.25, 0.90)
#: "moving": the box centre moved, or its size changed, by more than this fraction of
#: the face size since the previous assessment (MTCNN's own jitter is a few percent).
MAX_MOTION = 0.12

GUIDANCE: Mapping[str, str] = {
    "no_face": "No face found: look at the camera",
    "several_faces": "Only one person in view, please",
    "too_small": "Move closer",
    "too_dark": "Too dark: add light in front of you",
    "too_bright": "Too bright: move away from the light",
    "moving": "Hold still",
    "not_frontal": "Face the camera",
    "blurry": "Blurry: hold still (or clean the lens)",
}
GOOD_GUIDANCE = "Good: hold still"


@dataclass(frozen=True)
class ShotQuality:
    """The gate's verdict on one frame: usable or not, why, and what to tell the person."""

    ok: bool
    problem: Problem | None
    guidance: str
    detection: Detection | None
    metrics: Mapping[str, float] = field(default_factory=dict)


def min_enrol_face_px(settings: Settings) -> int:
    """The smallest face (pixels, shorter box side) the registration dialog accepts."""
    return max(MIN_ENROL_FACE_PX, 2 * settings.recognition.min_face_px)


def face_box(image: np.ndarray, box: Box, margin: float = 0.0) -> tuple[int, ...]:
    """A face box grown by ``margin`` of its size on each side, clipped to the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    return (
        max(0, math.floor(x1 - mx)),
        max(0, math.floor(y1 - my)),
        min(w, math.ceil(x2 + mx)),
        min(h, math.ceil(y2 + my)),
    )


def crop_face(image: np.ndarray, box: Box, margin: float = 0.3) -> np.ndarray:
    """A copy of the face in ``box`` with ``margin`` context on each side (thumbnails, the
    attendance screen's photo)."""
    x1, y1, x2, y2 = face_box(image, box, margin)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((1, 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def pose(detection: Detection) -> tuple[float, float, float]:
    """(yaw proxy, roll in degrees, pitch proxy) from the five landmarks; see the constants."""
    left_eye, right_eye, nose, left_mouth, right_mouth = np.asarray(
        detection.landmarks, dtype=np.float64
    ).reshape(5, 2)
    eye_mid = (left_eye + right_eye) / 2
    eye_vec = right_eye - left_eye
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return math.inf, 0.0, 0.5
    along = eye_vec / eye_dist
    across = np.array([-along[1], along[0]])  # points down the face when the eyes are level
    yaw = float(np.dot(nose - eye_mid, along) / eye_dist)
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    mouth_depth = float(np.dot((left_mouth + right_mouth) / 2 - eye_mid, across))
    pitch = float(np.dot(nose - eye_mid, across) / mouth_depth) if mouth_depth > 1e-6 else 0.0
    return yaw, roll, pitch


def motion(detection: Detection, previous: Detection | None) -> float:
    """How far the face moved since ``previous``, as a fraction of its size (0 without one)."""
    if previous is None:
        return 0.0
    size = max(1.0, detection.size)
    x1, y1, x2, y2 = detection.box
    p1, q1, p2, q2 = previous.box
    shift = math.hypot((x1 + x2 - p1 - p2) / 2, (y1 + y2 - q1 - q2) / 2) / size
    scale = abs(math.log(max(1.0, detection.size) / max(1.0, previous.size)))
    return max(shift, scale)


def _grey_crop(image: np.ndarray, detection: Detection) -> np.ndarray:
    x1, y1, x2, y2 = face_box(image, detection.box)
    crop = image[y1:y2, x1:x2]
    if crop.size == 0:
        return np.zeros((CROP_SIDE, CROP_SIDE), dtype=np.float32)
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    resized = cv2.resize(grey, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
    return resized.astype(np.float32)


class QualityGate:
    """Decides whether a frame is fit for enrolment; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.min_face_px = min_enrol_face_px(settings)

    def assess(
        self,
        image: np.ndarray,
        detections: Sequence[Detection],
        previous: Detection | None = None,
    ) -> ShotQuality:
        """The verdict for ``image`` given the detector's faces in it.

        ``previous`` is the face of the previous assessment (live capture); without
        it the motion check is skipped (imported files). Checks run in the order
        whose advice helps most: who is in view, distance, light, stillness, pose,
        and sharpness last, because darkness, motion and a turned head all make a
        face look blurry too.
        """
        if not detections:
            return _verdict("no_face", None, {})
        if len(detections) > 1:
            # Even a much smaller second face is refused: it may be the person enrolled
            # by mistake, and the gallery stores the whole frame.
            return _verdict("several_faces", None, {"faces": float(len(detections))})
        det = detections[0]
        grey = _grey_crop(image, det)
        lap = cv2.Laplacian(grey, cv2.CV_32F)
        yaw, roll, pitch = pose(det)
        metrics = {
            "face_px": float(det.size),
            "sharpness": float(lap.var()),
            "brightness": float(grey.mean()),
            "yaw": yaw,
            "roll": roll,
            "pitch": pitch,
            "motion": motion(det, previous),
        }
        problem: Problem | None = None
        advice: str | None = None
        if metrics["face_px"] < self.min_face_px:
            problem = "too_small"
        elif metrics["brightness"] < MIN_BRIGHTNESS:
            problem = "too_dark"
        elif metrics["brightness"] > MAX_BRIGHTNESS:
            problem = "too_bright"
        elif metrics["motion"] > MAX_MOTION:
            problem = "moving"
        elif abs(yaw) > MAX_YAW:
            problem = "not_frontal"
        elif abs(roll) > MAX_ROLL_DEG:
            problem, advice = "not_frontal", "Keep your head straight"
        elif not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
            problem, advice = "not_frontal", "Look straight into the camera"
        elif metrics["sharpness"] < MIN_SHARPNESS:
            problem = "blurry"
        return _verdict(problem, det, metrics, advice)


def _verdict(
    problem: Problem | None,
    detection: Detection | None,
    metrics: Mapping[str, float],
    advice: str | None = None,
) -> ShotQuality:
    if problem is None:
        return ShotQuality(True, None, GOOD_GUIDANCE, detection, dict(metrics))
    return ShotQuality(False, problem, advice or GUIDANCE[problem], detection, dict(metrics))
