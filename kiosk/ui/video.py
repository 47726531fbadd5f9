"""The live picture: newest camera frame plus the recognition overlays.

:class:`VideoView` polls the camera's newest frame at display rate (a
``QTimer``, never a signal per frame, so a fast camera cannot flood the event
loop) and converts only frames it has not shown yet. Recognition results arrive
separately, whenever the worker has one, and are drawn over whatever frame is
newest: painting never waits for recognition.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from kiosk.camera.frames import Frame
from kiosk.recognition.types import FaceState, FrameResult, TrackedFace
from kiosk.ui.frame_image import to_qimage

#: Overlays older than this are not drawn: the faces they describe may have left.
OVERLAY_MAX_AGE_S = 1.0
DISPLAY_INTERVAL_MS = 16  # ~60 Hz polling; a frame is converted only when it is new

STATE_COLOURS: dict[FaceState, QColor] = {
    "known": QColor(46, 204, 113),
    "unknown": QColor(243, 156, 18),
    "pending": QColor(236, 240, 241),
    "detection-only": QColor(52, 152, 219),
}


def face_label(face: TrackedFace, show_distance: bool) -> str:
    if face.state == "known" and face.name:
        text = face.name
    elif face.state == "unknown":
        text = "unknown"
    elif face.state == "detection-only":
        text = f"face {face.confidence:.2f}"
    else:
        text = "…"
    known_distance = face.distance is not None and math.isfinite(face.distance)
    if show_distance and known_distance and face.state in ("known", "unknown"):
        text += f"  {face.distance:.2f}"
    return text


class VideoView(QWidget):
    """Paints the newest frame, scaled to fit, with boxes and names over the faces."""

    def __init__(
        self,
        latest_frame: Callable[[], Frame | None],
        parent: QWidget | None = None,
        *,
        show_distance: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._latest_frame = latest_frame
        self._show_distance = show_distance
        self._clock = clock
        self._image: QImage | None = None
        self._frame_id: int | None = None
        self._result: FrameResult | None = None
        self._result_at = 0.0
        self.placeholder = ""
        self.painted_frames = 0  # distinct frames converted for display
        self.overlays_drawn = 0  # faces drawn over a frame, in total
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._poll)
        self._timer.start(DISPLAY_INTERVAL_MS)

    def set_frame_provider(self, latest_frame: Callable[[], Frame | None]) -> None:
        self._latest_frame = latest_frame

    def set_placeholder(self, text: str) -> None:
        """A message shown instead of (or over, when stale) the picture."""
        self.placeholder = text
        self.update()

    def clear(self) -> None:
        self._image, self._frame_id, self._result = None, None, None
        self.update()

    def set_result(self, result: FrameResult) -> None:
        self._result = result
        self._result_at = self._clock()
        self.update()

    def current_image(self) -> QImage | None:
        return self._image

    @property
    def result(self) -> FrameResult | None:
        """The recognition result drawn over the picture now."""
        return self._result

    def _poll(self) -> None:
        frame = self._latest_frame()
        if frame is None or frame.frame_id == self._frame_id:
            return
        self._frame_id = frame.frame_id
        self._image = to_qimage(frame.image)
        self.painted_frames += 1
        self.update()

    def _target(self) -> QRectF:
        assert self._image is not None
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 22, 26))
        if self._image is not None:
            target = self._target()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self._image)
            self._draw_overlays(painter, target)
        if self.placeholder:
            self._draw_message(painter, self.placeholder)
        painter.end()

    def _draw_overlays(self, painter: QPainter, target: QRectF) -> None:
        result = self._result
        if result is None or self._clock() - self._result_at > OVERLAY_MAX_AGE_S:
            return
        fw, fh = result.size
        sx, sy = target.width() / fw, target.height() / fh
        font = QFont(self.font())
        font.setPointSizeF(max(10.0, self.height() / 40))
        font.setBold(True)
        painter.setFont(font)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for face in result.faces:
            x1, y1, x2, y2 = face.box
            rect = QRectF(
                target.x() + x1 * sx, target.y() + y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy
            )
            colour = STATE_COLOURS[face.state]
            painter.setPen(QPen(colour, 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect, 6, 6)
            label = face_label(face, self._show_distance)
            metrics = painter.fontMetrics()
            tw, th = metrics.horizontalAdvance(label) + 12, metrics.height() + 6
            tag = QRectF(rect.x(), max(target.y(), rect.y() - th), tw, th)
            painter.fillRect(tag, colour)
            painter.setPen(QColor(15, 15, 15))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)
            self.overlays_drawn += 1

    def _draw_message(self, painter: QPainter, text: str) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(11.0, self.height() / 30))
        painter.setFont(font)
        box = self.rect().adjusted(40, 0, -40, 0)
        bounds = painter.boundingRect(
            box, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter, text
        )
        bounds = bounds.adjusted(-20, -14, 20, 14)
        painter.fillRect(bounds, QColor(0, 0, 0, 170))
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(box, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter, text)
