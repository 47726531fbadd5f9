"""Face detection with facenet-pytorch's MTCNN (its weights ship inside the package)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kiosk.errors import ModelLoadError
from kiosk.recognition.device import resolve_device
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

    def scale_for(self, width: int) -> float:
        """Factor applied to an image of this width before detection (<= 1)."""
        target = self.config.detection_width
        return target / width if 0 < target < width else 1.0

    def detect(self, image: np.ndarray) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.shape}")
        scale = self.scale_for(image.shape[1])
        small = image
        if scale < 1.0:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        # MTCNN's pyramid starts at its min_face_size (in the pixels it sees); ask for a bit
        # less than our limit so faces right at the limit are not lost to its scale steps.
        min_size = max(12, int(self.config.min_face_px * scale * 0.8))
        if min(small.shape[:2]) < min_size:
            return []  # no face of the minimum size fits (and MTCNN would build no pyramid)
        self._mtcnn.min_face_size = min_size
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / scale
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) / scale
        h, w = image.shape[:2]
        found = []
        for box, prob, pts in zip(boxes, probs, points, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
            det = Detection((x1, y1, x2, y2), float(prob), pts)
            if prob >= self.config.min_confidence and det.size >= self.config.min_face_px:
                found.append(det)
        found.sort(key=lambda d: d.width * d.height, reverse=True)
        return found
