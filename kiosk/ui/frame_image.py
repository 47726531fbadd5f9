"""numpy RGB frames -> Qt images, without sharing memory with numpy.

``QImage(data, w, h, stride, fmt)`` does not copy: it keeps a pointer into the
array, and painting after the array is freed (the camera reuses or drops frames
all the time) reads freed memory. Every conversion here therefore ends in
``QImage.copy()``, which owns its pixels, and passes the stride explicitly so
non-contiguous views (crops, mirrored frames) come out right.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap


def to_qimage(rgb: np.ndarray) -> QImage:
    """An owned copy of an RGB (H, W, 3) or grey (H, W) uint8 image as a QImage."""
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
    if rgb.ndim == 2:
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif rgb.ndim == 3 and rgb.shape[2] == 3:
        fmt, channels = QImage.Format.Format_RGB888, 3
    else:
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got {rgb.shape}")
    array = np.ascontiguousarray(rgb)  # a crop or a flipped view has foreign strides
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        return QImage()
    image = QImage(array.data, width, height, width * channels, fmt)
    return image.copy()  # owns its pixels; ``array`` may go away now


def to_qpixmap(rgb: np.ndarray, fit: QSize | None = None) -> QPixmap:
    """The image as a pixmap, scaled smoothly to fit inside ``fit`` (aspect kept) if given."""
    pixmap = QPixmap.fromImage(to_qimage(rgb))
    if fit is not None and not pixmap.isNull() and fit.width() > 0 and fit.height() > 0:
        pixmap = pixmap.scaled(
            fit, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return pixmap
