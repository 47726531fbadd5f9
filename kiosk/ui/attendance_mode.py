"""Fullscreen attendance mode: what a person walking through the door sees.

One calm screen on the chosen monitor, cursor hidden, no window frame:

* the live picture, with a large banner when someone is decided: green
  "Welcome, Ada" with their face and the time; "Ada, you already checked in at
  08:57" inside the cooldown; a neutral "Not recognised, please see reception";
* an idle screen (clock and "look at the camera") after ``ui.idle_after_s``
  without a face;
* a calm message while the camera is lost or recognition restarts; both
  recover by themselves (the camera reconnects, the controller's health check
  restarts recognition).

Leaving (Esc, Alt+F4, closing, switching away) asks for the admin PIN: the
window only emits :attr:`AttendanceWindow.exit_requested`; whoever owns the
admin gate decides and calls :meth:`AttendanceWindow.leave`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeyEvent, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStackedLayout, QVBoxLayout, QWidget

from kiosk.camera.frames import Frame
from kiosk.recognition.types import FrameResult
from kiosk.settings import Settings
from kiosk.ui.frame_image import to_qpixmap
from kiosk.ui.video import VideoView

if TYPE_CHECKING:
    from kiosk.attendance.recorder import AttendanceOutcome
    from kiosk.camera.capture import CameraStatus

BANNER_STYLES = {
    "checked_in": "background:#1e8449; color:white;",
    "already": "background:#2e4053; color:white;",
    "unknown": "background:#5d6d7e; color:white;",
    "notice": "background:#34495e; color:white;",
}
FACE_PHOTO_PX = 220


class AttendanceWindow(QWidget):
    """The fullscreen check-in screen; see the module docstring."""

    exit_requested = Signal()

    def __init__(
        self,
        settings: Settings,
        latest_frame: Callable[[], Frame | None],
        parent: QWidget | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint)
        self.setObjectName("attendance")
        self.setWindowTitle("FaceKiosk attendance")
        self.settings = settings
        self._clock = clock
        self._latest_frame = latest_frame
        self._may_close = False
        self._last_face_at = clock()
        self._banner_until = 0.0
        self.banner_kind: str | None = None  # what the banner shows now (tests, logs)
        self.notice: str | None = None  # camera or recognition problem shown calmly

        self.video = VideoView(latest_frame, self, show_distance=False, clock=clock)
        self.banner = QLabel(self)
        self.banner.setObjectName("banner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setWordWrap(True)
        self.photo = QLabel(self)
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.card = QFrame(self)  # photo and message side by side under the picture
        self.card.setObjectName("card")
        card_layout = QHBoxLayout(self.card)
        card_layout.setContentsMargins(24, 16, 24, 16)
        card_layout.addWidget(self.photo)
        card_layout.addWidget(self.banner, 1)
        live = QWidget(self)
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(24, 24, 24, 24)
        live_layout.setSpacing(16)
        live_layout.addWidget(self.video, 1)
        live_layout.addWidget(self.card)
        # A problem staff must know about (check-ins not saved): visible, not alarming.
        self.problem = QLabel(self)
        self.problem.setObjectName("problem")
        self.problem.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.problem.setWordWrap(True)
        self.problem.hide()
        live_layout.addWidget(self.problem)
        self.idle = QLabel(self)
        self.idle.setObjectName("idle")
        self.idle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedLayout(self)
        self.pages.addWidget(live)
        self.pages.addWidget(self.idle)
        self._hide_banner()
        self.setStyleSheet(
            "#attendance { background:#111418; }"
            "#banner { font-size:44px; font-weight:600; padding:28px; border-radius:14px; }"
            "#idle { color:#d0d3d4; font-size:44px; background:#111418; }"
            "#problem { color:#111418; background:#f5b041; font-size:22px; padding:10px;"
            " border-radius:8px; }"
        )
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(250)

    # -- showing -------------------------------------------------------------------------

    def show_on_screen(self, index: int) -> None:
        """Fullscreen on screen ``index`` (the primary one when there is no such screen)."""
        screens = QGuiApplication.screens()
        screen = screens[index] if 0 <= index < len(screens) else QGuiApplication.primaryScreen()
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, True)
        if screen is not None:
            self.setGeometry(screen.geometry())
        self.showFullScreen()
        self.raise_()
        self.activateWindow()

    def on_result(self, result: FrameResult) -> None:
        self.video.set_result(result)
        if result.faces:
            self._last_face_at = self._clock()
            if self.pages.currentIndex() == 1:
                self.pages.setCurrentIndex(0)

    def on_outcome(self, outcome: AttendanceOutcome) -> None:
        event, record = outcome.event, outcome.record
        name = event.name or (record.name if record else "")
        if outcome.kind == "checked_in" and record is not None:
            text = f"Welcome, {name}\nchecked in at {record.local_hhmm}"
        elif outcome.kind == "already" and record is not None:
            text = f"{name}, you already checked in at {record.local_hhmm}"
        else:
            text = "Not recognised.\nPlease see reception."
        self._show_banner(outcome.kind, text, self._face_photo(event.box))

    def on_camera_status(self, status: CameraStatus) -> None:
        state = status.state.value
        if state == "live":
            self.set_notice(None)
        elif state in ("lost", "reconnecting", "connecting"):
            self.set_notice("The camera is reconnecting. One moment, please.")

    def set_problem(self, detail: str | None) -> None:
        """Check-ins cannot be saved (``detail`` says why, for the log); ``None``: they can."""
        self.problem.setVisible(detail is not None)
        self.problem.setText("Check-ins are not being saved right now. Please tell reception.")
        self.problem.setToolTip(detail or "")

    def set_notice(self, text: str | None) -> None:
        """A calm message over the picture (camera lost, recognition restarting)."""
        self.notice = text
        self.video.set_placeholder(text or "")

    def _face_photo(self, box: tuple[float, float, float, float]) -> QPixmap | None:
        """The person's face from the newest frame (they are still in front of the camera)."""
        # Imported here: quality imports OpenCV, which the window must not wait for at start
        # (the loader thread has imported it long before the first welcome).
        from kiosk.recognition.quality import crop_face

        frame = self._latest_frame()
        if frame is None:
            return None
        crop = crop_face(frame.image, box, margin=0.35)
        if min(crop.shape[:2]) < 8:  # the box left the picture
            return None
        return to_qpixmap(crop, QSize(FACE_PHOTO_PX, FACE_PHOTO_PX))

    def _show_banner(self, kind: str, text: str, photo: QPixmap | None) -> None:
        self.banner_kind = kind
        self.banner.setText(text)
        self.card.setStyleSheet(f"#card {{ {BANNER_STYLES[kind]} border-radius:14px; }}")
        self.banner.setStyleSheet("background:transparent; color:white;")
        self.card.show()
        if photo is not None and kind != "unknown":
            self.photo.setPixmap(photo)
            self.photo.show()
        else:
            self.photo.hide()
        self.pages.setCurrentIndex(0)
        self._last_face_at = self._clock()
        self._banner_until = self._clock() + self.settings.ui.welcome_s

    def _hide_banner(self) -> None:
        self.banner_kind = None
        self.card.hide()

    def _tick(self) -> None:
        now = self._clock()
        if self.banner_kind is not None and now >= self._banner_until:
            self._hide_banner()
        idle = now - self._last_face_at >= self.settings.ui.idle_after_s
        if idle and self.banner_kind is None:
            self.idle.setText(time.strftime("%H:%M") + "\n\nLook at the camera to check in")
            self.pages.setCurrentIndex(1)

    @property
    def idle_shown(self) -> bool:
        return self.pages.currentIndex() == 1

    # -- leaving needs the admin PIN ------------------------------------------------------

    def leave(self) -> None:
        """Close for real (the admin PIN was given)."""
        self._may_close = True
        self.unsetCursor()
        self.close()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.exit_requested.emit()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._may_close:
            self._timer.stop()
            event.accept()
            return
        event.ignore()  # Alt+F4, the window manager's close: ask for the PIN instead
        self.exit_requested.emit()

    def changeEvent(self, event: QEvent) -> None:
        # Switching away (Alt+Tab, another window popping up) brings the kiosk back;
        # a locked-down kiosk session (README) is what really keeps people out.
        if (
            event.type() == QEvent.Type.ActivationChange
            and not self.isActiveWindow()
            and not self._may_close
            and self.isVisible()
            and QGuiApplication.modalWindow() is None
        ):
            QTimer.singleShot(300, self._take_focus_back)
        super().changeEvent(event)

    def _take_focus_back(self) -> None:
        if not self._may_close and self.isVisible() and QGuiApplication.modalWindow() is None:
            self.raise_()
            self.activateWindow()
