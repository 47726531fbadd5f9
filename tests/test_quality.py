"""The enrolment quality gate on real MTCNN detections of real (and degraded) faces."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from kiosk.recognition.detector import FaceDetector
from kiosk.recognition.quality import (
    GOOD_GUIDANCE,
    MAX_MOTION,
    QualityGate,
    ShotQuality,
    crop_face,
    min_enrol_face_px,
)
from kiosk.recognition.types import Detection
from kiosk.settings import Settings
from tests.helpers import no_face, two_faces, with_recognition

pytestmark = pytest.mark.slow


@pytest.fixture
def detector(settings: Settings, make_recognizer) -> FaceDetector:
    detector: FaceDetector = make_recognizer(settings, reload=False).detector
    return detector


@pytest.fixture
def gate(settings: Settings) -> QualityGate:
    return QualityGate(settings)


def assess(gate: QualityGate, detector: FaceDetector, image: np.ndarray) -> ShotQuality:
    return gate.assess(image, detector.detect(image))


def test_the_astronaut_is_good_enough_to_enrol(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    q = assess(gate, detector, astronaut)
    assert q.ok and q.problem is None, q
    assert q.guidance == GOOD_GUIDANCE
    assert q.detection is not None
    assert set(q.metrics) >= {"face_px", "sharpness", "brightness", "yaw", "roll", "motion"}
    assert q.metrics["face_px"] >= min_enrol_face_px(Settings())
    assert abs(q.metrics["yaw"]) < 0.1 and abs(q.metrics["roll"]) < 10


def test_no_face_and_two_faces_are_refused(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    q = assess(gate, detector, no_face())
    assert (q.ok, q.problem, q.detection) == (False, "no_face", None)
    assert "look at the camera" in q.guidance
    q = assess(gate, detector, two_faces(astronaut))
    assert (q.ok, q.problem) == (False, "several_faces")
    assert "one person" in q.guidance


def test_a_much_smaller_second_face_is_still_a_second_person(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    small = cv2.resize(astronaut, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.concatenate([astronaut, np.full_like(astronaut, 120)], axis=1)
    canvas[:256, 512:768] = small
    detections = detector.detect(np.ascontiguousarray(canvas))
    assert len(detections) == 2
    assert gate.assess(canvas, detections).problem == "several_faces"


def test_a_face_far_away_is_too_small(
    settings: Settings, make_recognizer, astronaut: np.ndarray
) -> None:
    settings = with_recognition(settings, min_face_px=20)  # so the detector still keeps it
    detector = make_recognizer(settings, reload=False).detector
    small = cv2.resize(astronaut, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    q = assess(QualityGate(settings), detector, small)
    assert (q.ok, q.problem, q.guidance) == (False, "too_small", "Move closer")
    assert q.metrics["face_px"] < 80


def test_the_enrolment_minimum_follows_min_face_px(settings: Settings) -> None:
    assert min_enrol_face_px(settings) == 80
    assert min_enrol_face_px(with_recognition(settings, min_face_px=60)) == 120


def test_dark_and_overexposed_faces_are_refused(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    dark = (astronaut * 0.15).astype(np.uint8)
    q = assess(gate, detector, dark)
    assert (q.ok, q.problem) == (False, "too_dark")
    assert "light" in q.guidance
    bright = np.clip(astronaut.astype(np.float32) * 0.6 + 150, 0, 255).astype(np.uint8)
    q = assess(gate, detector, bright)
    assert (q.ok, q.problem) == (False, "too_bright"), q.metrics


def test_a_blurred_face_is_refused(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 3.0)
    q = assess(gate, detector, blurred)
    assert (q.ok, q.problem) == (False, "blurry"), q.metrics
    assert q.metrics["sharpness"] < assess(gate, detector, astronaut).metrics["sharpness"] / 10


def test_dark_comes_before_blurry_because_it_is_the_cause(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    dark_blurred = (cv2.GaussianBlur(astronaut, (0, 0), 3.0) * 0.15).astype(np.uint8)
    assert assess(gate, detector, dark_blurred).problem == "too_dark"


def test_a_tilted_head_is_not_frontal(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    h, w = astronaut.shape[:2]
    turn = cv2.getRotationMatrix2D((220, 150), 35, 1.0)
    tilted = cv2.warpAffine(astronaut, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
    q = assess(gate, detector, tilted)
    assert (q.ok, q.problem) == (False, "not_frontal"), q.metrics
    assert abs(q.metrics["roll"]) > 25


def test_a_turned_head_is_not_frontal(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    # A head turned sideways shows the nose well off the line between the eyes.
    (real,) = detector.detect(astronaut)
    marks = real.landmarks.copy()
    eye_distance = float(np.hypot(*(marks[1] - marks[0])))
    marks[2, 0] += 0.45 * eye_distance
    turned = dataclasses.replace(real, landmarks=marks)
    q = gate.assess(astronaut, [turned])
    assert (q.ok, q.problem, q.guidance) == (False, "not_frontal", "Face the camera")
    assert q.metrics["yaw"] > 0.4


def test_a_face_that_moved_since_the_last_look_must_hold_still(
    gate: QualityGate, detector: FaceDetector, astronaut: np.ndarray
) -> None:
    (det,) = detector.detect(astronaut)

    def shifted(fraction: float) -> Detection:
        dx = fraction * det.size
        x1, y1, x2, y2 = det.box
        return dataclasses.replace(det, box=(x1 - dx, y1, x2 - dx, y2))

    q = gate.assess(astronaut, [det], previous=shifted(MAX_MOTION * 2.5))
    assert (q.ok, q.problem, q.guidance) == (False, "moving", "Hold still")
    still = gate.assess(astronaut, [det], previous=shifted(0.02))
    assert still.ok, still.metrics
    assert 0.0 < still.metrics["motion"] < MAX_MOTION


def test_crop_face_keeps_a_margin_and_stays_inside_the_image(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    (det,) = detector.detect(astronaut)
    crop = crop_face(astronaut, det.box, margin=0.3)
    assert crop.dtype == np.uint8 and crop.ndim == 3 and crop.flags["C_CONTIGUOUS"]
    assert crop.shape[0] > det.height * 1.4 and crop.shape[1] > det.width * 1.4
    edge = dataclasses.replace(det, box=(-50.0, -50.0, 40.0, 40.0))
    assert crop_face(astronaut, edge.box).shape[:2] == (67, 67)  # clipped at the corner
