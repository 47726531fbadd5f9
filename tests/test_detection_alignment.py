"""MTCNN detection on a real face, downscaled detection, and eye-levelling alignment."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from kiosk.recognition import Detection, DetectorConfig, FaceDetector, align_face
from kiosk.recognition.align import alignment_matrix, eye_angle, transform_points
from tests.helpers import no_face, two_faces

# Where the face of skimage's astronaut (Eileen Collins) is, by eye: x 180-270, y 60-175.
ASTRONAUT_FACE = (180.0, 60.0, 270.0, 175.0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@pytest.fixture
def detector(shared_models) -> FaceDetector:
    det: FaceDetector = shared_models[0]
    det.config = DetectorConfig()
    return det


def test_finds_the_astronauts_face_where_it_is(detector: FaceDetector, astronaut) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.6
    assert face.probability > 0.99
    assert face.landmarks.shape == (5, 2)
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    assert lx < rx  # image-left eye first
    nose = face.landmarks[2]
    assert lx < nose[0] < rx and min(ly, ry) < nose[1]  # nose between and below the eyes
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)


def test_large_frames_are_detected_downscaled_with_boxes_in_original_pixels(
    detector: FaceDetector, astronaut
) -> None:
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    detector.config = DetectorConfig(detection_width=512)
    assert detector.scale_for(big.shape[1]) == pytest.approx(0.25)
    faces = detector.detect(big)
    assert len(faces) == 1
    expected = tuple(v * 4 for v in ASTRONAUT_FACE)
    assert iou(faces[0].box, expected) > 0.6
    assert faces[0].landmarks[:, 0].max() > 700  # landmarks scaled back too


def test_faces_under_the_size_or_confidence_limit_are_dropped(
    detector: FaceDetector, astronaut
) -> None:
    detector.config = DetectorConfig(min_face_px=150)  # the face is ~100 px
    assert detector.detect(astronaut) == []
    detector.config = DetectorConfig(min_confidence=1.01 - 1e-9)
    assert detector.detect(astronaut) == []


def test_no_face_and_two_faces(detector: FaceDetector, astronaut) -> None:
    assert detector.detect(no_face()) == []
    faces = detector.detect(two_faces(astronaut))
    assert len(faces) == 2
    assert sorted(round(f.box[0] / 512) for f in faces) == [0, 1]


@pytest.mark.parametrize("shape", [(24, 24, 3), (30, 200, 3), (200, 30, 3), (1, 1, 3)])
def test_images_too_small_for_a_face_give_no_face(detector: FaceDetector, shape) -> None:
    assert detector.detect(np.full(shape, 128, np.uint8)) == []


def test_rejects_non_rgb_input(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("degrees", [-20.0, 15.0])
def test_alignment_levels_the_eyes(detector: FaceDetector, astronaut, degrees: float) -> None:
    tilted = rotate(astronaut, degrees)
    (face,) = detector.detect(tilted)
    assert abs(math.degrees(eye_angle(face.landmarks))) > abs(degrees) / 2  # really tilted

    aligned = align_face(tilted, face, margin_ratio=0.2, use_alignment=True)
    assert aligned.shape == (160, 160, 3) and aligned.dtype == np.uint8
    # Detect again on the aligned crop (a fresh measurement, not our own transform).
    detector.config = DetectorConfig(min_face_px=20, detection_width=0)
    again = detector.detect(aligned)
    assert len(again) == 1
    assert abs(math.degrees(eye_angle(again[0].landmarks))) < 4.0

    unaligned = align_face(tilted, face, margin_ratio=0.2, use_alignment=False)
    (kept,) = detector.detect(unaligned)
    assert abs(math.degrees(eye_angle(kept.landmarks))) > abs(degrees) / 2


def test_margin_ratio_sets_the_crop_size() -> None:
    det = Detection(
        (100.0, 100.0, 200.0, 200.0),
        0.99,
        np.array([[130, 140], [170, 140], [150, 160], [135, 180], [165, 180]], np.float32),
    )
    for margin in (0.0, 0.2, 0.5):
        m = alignment_matrix(det, margin_ratio=margin, use_alignment=True)
        corners = transform_points(m, np.array([[100.0, 150.0], [200.0, 150.0]]))
        # the box's width maps to 160 / (1 + margin) pixels, centred
        assert corners[1, 0] - corners[0, 0] == pytest.approx(160 / (1 + margin))
        assert (corners[0, 0] + corners[1, 0]) / 2 == pytest.approx(80.0)


def test_alignment_of_a_huge_face_is_smooth(astronaut) -> None:
    """A face much larger than 160 px is low-pass filtered before sampling (no aliasing)."""
    stripes = np.zeros((1600, 1600, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-pixel stripes alias badly under plain bilinear sampling
    det = Detection(
        (200.0, 200.0, 1400.0, 1400.0),
        0.99,
        np.array([[500, 600], [1100, 600], [800, 800], [550, 1100], [1050, 1100]], np.float32),
    )
    out = align_face(stripes, det, margin_ratio=0.2, use_alignment=True)
    assert out.std() < 10  # averages to grey instead of a moiré of black and white
    assert abs(float(out.mean()) - 127.5) < 10
