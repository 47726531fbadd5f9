"""Face detection with facenet-pytorch's MTCNN (its weights ship inside the package)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kiosk.errors import ModelLoadError
from kiosk.recognition.device import resolve_device
from kiosk.recognition.tracking import iou
from kiosk.recognition.types import Detection
from kiosk.settings import RecognitionSection


@dataclass(frozen=True)
class DetectorConfig:
    min_confidence: float = 0.90
    min_face_px: int = 40
    detection_width: int = 1280  # 0 = always detect at full size

    @classmethod
    def from_settings(cls, rec: RecognitionSection) -> DetectorConfig:
        return cls(rec.min_confidence, rec.min_face_px, rec.detection_width)


class FaceDetector:
    """``detect(rgb) -> list[Detection]`` on one image, largest faces first.

    Large images are detected on a copy downscaled to ``detection_width`` and the
    boxes and landmarks are mapped back, so callers always see original pixels.
    Not thread-safe: use one detector per thread.
    """

    def __init__(self, config: DetectorConfig, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = resolve_device(device) if isinstance(device, str) else device
        try:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(keep_all=True, device=self.device, post_process=False)
        except (OSError, RuntimeError, ImportError) as exc:
            raise ModelLoadError(
                f"cannot load the MTCNN face detector from facenet-pytorch ({exc}); "
                "reinstall it with: pip install --force-reinstall facenet-pytorch==2.5.3"
            ) from exc
        self._mtcnn.eval()
        if self.device.type == "cpu":
            # NHWC convolutions: about 0.6x the time of NCHW for MTCNN's small nets on CPU.
            for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
                net.to(memory_format=torch.channels_last)

    def scale_for(self, width: int, detection_width: int | None = None) -> float:
        """Factor applied to an image of this width before detection (<= 1)."""
        target = self.config.detection_width if detection_width is None else detection_width
        return target / width if 0 < target < width else 1.0

    def detect(
        self,
        image: np.ndarray,
        detection_width: int | None = None,
        min_face_px: float | None = None,
    ) -> list[Detection]:
        """Faces in ``image``; the arguments override the configured values for this call."""
        _check_rgb(image)
        scale = self.scale_for(image.shape[1], detection_width)
        small = image
        if scale < 1.0:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        # MTCNN's pyramid starts at its min_face_size (in the pixels it sees); ask for a bit
        # less than our limit so faces right at the limit are not lost to its scale steps.
        min_face = self.config.min_face_px if min_face_px is None else min_face_px
        min_size = max(12, int(min_face * scale * 0.8))
        if min(small.shape[:2]) < min_size:
            return []  # no face of the minimum size fits (and MTCNN would build no pyramid)
        self._mtcnn.min_face_size = min_size
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
        found = self._detections(
            boxes, probs, points, 1.0 / scale, (0.0, 0.0), image.shape, min_face_px
        )
        found.sort(key=lambda d: d.width * d.height, reverse=True)
        return found

    def detect_regions(
        self,
        image: np.ndarray,
        boxes: Sequence[tuple[float, float, float, float]],
        min_face_px: float | None = None,
    ) -> list[Detection | None]:
        """Re-find one known face near each box, all in one batched MTCNN pass.

        For each box, a square region twice its size around its centre is cut out and
        scaled to ``REGION_PX``, so the face is seen at about half that size whatever
        its size in the frame: cheap, and sharper than a downscaled whole frame. Returns,
        per box, the detection closest to it (in ``image`` pixels) or None.
        ``min_face_px`` (default: the configured one) lets a known face that is
        shrinking a little keep being followed.
        """
        _check_rgb(image)
        if not boxes:
            return []
        crops, origins, factors = [], [], []
        h, w = image.shape[:2]
        for x1, y1, x2, y2 in boxes:
            side = max(x2 - x1, y2 - y1) * REGION_FACTOR
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ox, oy = cx - side / 2, cy - side / 2
            f = REGION_PX / side
            # One affine warp crops, pads (black) and scales; no intermediate copies.
            matrix = np.array([[f, 0.0, -ox * f], [0.0, f, -oy * f]], dtype=np.float64)
            interp = cv2.INTER_AREA if f < 1.0 else cv2.INTER_LINEAR
            crops.append(cv2.warpAffine(image, matrix, (REGION_PX, REGION_PX), flags=interp))
            origins.append((ox, oy))
            factors.append(1.0 / f)
        self._mtcnn.min_face_size = REGION_MIN_FACE
        with torch.inference_mode():
            all_boxes, all_probs, all_points = self._mtcnn.detect(crops, landmarks=True)
        results: list[Detection | None] = []
        for box, b, p, pts, origin, inv in zip(
            boxes, all_boxes, all_probs, all_points, origins, factors, strict=True
        ):
            found = self._detections(b, p, pts, inv, origin, (h, w), min_face_px)
            best = max(found, key=lambda d: iou(d.box, box), default=None)
            results.append(best if best is not None and iou(best.box, box) > 0.1 else None)
        return results

    def _detections(
        self,
        boxes: object,
        probs: object,
        points: object,
        inv_scale: float,
        origin: tuple[float, float],
        shape: tuple[int, ...],
        min_face_px: float | None = None,
    ) -> list[Detection]:
        """MTCNN's raw output mapped to image pixels and filtered by confidence and size."""
        if boxes is None:
            return []
        offset = np.array(origin, dtype=np.float32)
        boxes_a = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * inv_scale
        boxes_a += np.tile(offset, 2)
        probs_a = np.asarray(probs, dtype=np.float32).reshape(-1)
        points_a = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) * inv_scale + offset
        h, w = shape[:2]
        min_size = self.config.min_face_px if min_face_px is None else min_face_px
        found = []
        for box, prob, pts in zip(boxes_a, probs_a, points_a, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
            det = Detection((x1, y1, x2, y2), float(prob), pts)
            if prob >= self.config.min_confidence and det.size >= min_size:
                found.append(det)
        return found


REGION_PX = 96  # side of the square a tracked face's region is scaled to
REGION_FACTOR = 2.0  # region side / face box side: room for the face to move between frames
REGION_MIN_FACE = 20  # MTCNN min_face_size inside a region (the face is about REGION_PX / 2)


def _check_rgb(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.shape}")
