"""The main window: live picture, recent verifications, status bar, admin menus.

It shows at once, before torch, MLflow and DVC are imported: the
:class:`~kiosk.controller.KioskController` loads them on ``kiosk-loader`` and
the window shows what it is doing until the models are ready. Everything from
the worker threads arrives through :class:`~kiosk.ui.bridge.ControllerBridge`
signals; the window never waits on a worker.

Admin actions (registration, the attendance log's export, settings, changing
the PIN, leaving attendance mode) go through the :class:`AdminGate`, which asks
for the PIN and writes the audit log.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from kiosk.admin import AdminAuth, AuditLog
from kiosk.controller import KioskController
from kiosk.errors import KioskError
from kiosk.settings import Settings, default_config_path
from kiosk.ui.admin_dialogs import AdminGate
from kiosk.ui.attendance_mode import AttendanceWindow
from kiosk.ui.bridge import ControllerBridge
from kiosk.ui.video import VideoView

if TYPE_CHECKING:
    from kiosk.attendance.recorder import AttendanceOutcome
    from kiosk.camera.capture import CameraStatus
    from kiosk.camera.source import FrameSource
    from kiosk.recognition.recognizer import Recognizer
    from kiosk.recognition.types import FrameResult, VerificationEvent

log = logging.getLogger(__name__)

ATTENDANCE_OFF = "Attendance: not recording (window mode)"
RECENT_MAX = 50  # verifications kept in the side list
STATUS_INTERVAL_MS = 1000
HEALTH_INTERVAL_MS = 1000
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.mjpg);;All files (*)"


class MainWindow(QMainWindow):
    """See the module docstring. ``recognizer``/``frame_source``/``gate`` are for tests."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: str | None = None,
        recognizer: Recognizer | None = None,
        frame_source: FrameSource | None = None,
        gate: AdminGate | None = None,
        config_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.config_path = config_path or settings.config_file or default_config_path()
        self.setWindowTitle("FaceKiosk")
        self.resize(1280, 800)
        self.bridge = ControllerBridge(self)
        self.controller = KioskController(
            settings,
            self.bridge.callbacks(),
            source=source,
            recognizer=recognizer,
            frame_source=frame_source,
        )
        self.audit = AuditLog(settings.audit_log, settings.kiosk.id)
        self.gate = gate or AdminGate(
            AdminAuth(settings.admin_file, settings.admin), self.audit, settings
        )
        self.recognizer: Recognizer | None = None
        self.attendance_window: AttendanceWindow | None = None
        self.camera_state = "starting"
        self._publish_thread: threading.Thread | None = None
        self._closed = False

        self.video = VideoView(
            self.controller.latest_frame, self, show_distance=settings.ui.show_distance
        )
        self.video.set_placeholder("Starting FaceKiosk…")
        self.recent = QListWidget(self)
        self.recent.setMinimumWidth(260)
        self.source_panel = self._build_source_panel()
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.video, 1)
        left_layout.addWidget(self.source_panel)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 0, 0, 0)
        right_layout.addWidget(QLabel("<b>Recent verifications</b>", right))
        right_layout.addWidget(self.recent, 1)
        splitter = QSplitter(self)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)

        self.status_labels: dict[str, QLabel] = {}
        for key in ("camera", "recognition", "gallery", "telemetry", "attendance", "mode"):
            label = QLabel(self)
            label.setObjectName(f"status-{key}")
            self.status_labels[key] = label
            self.statusBar().addPermanentWidget(label, 1 if key == "mode" else 0)
        self._set_status("camera", f"Camera: starting ({self.controller.source_spec})")
        self._set_status("recognition", "Recognition: loading…")
        self._set_status("attendance", ATTENDANCE_OFF)
        self._build_actions()
        self._connect_bridge()

        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self.refresh_status)
        self._status_timer.start(STATUS_INTERVAL_MS)
        self._health_timer = QTimer(self)
        self._health_timer.timeout.connect(self._check_health)
        self._health_timer.start(HEALTH_INTERVAL_MS)

    # -- construction ----------------------------------------------------------------------

    def _build_source_panel(self) -> QWidget:
        panel = QWidget(self)
        layout = QHBoxLayout(panel)
        self.source_message = QLabel(panel)
        self.source_message.setWordWrap(True)
        layout.addWidget(self.source_message, 1)
        for text, slot in (
            ("Open video file…", self.choose_file),
            ("Open stream URL…", self.choose_url),
            ("Choose camera…", self.choose_camera),
        ):
            button = QPushButton(text, panel)
            button.clicked.connect(slot)
            layout.addWidget(button)
        panel.hide()
        return panel

    def _action(
        self, text: str, slot: Callable[[], object], shortcut: str | None = None
    ) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _build_actions(self) -> None:
        self.actions_by_name = {
            "camera": self._action("Choose &camera…", self.choose_camera),
            "file": self._action("Open video &file…", self.choose_file, "Ctrl+O"),
            "url": self._action("Open stream &URL…", self.choose_url),
            "start": self._action("&Start", self.start_camera),
            "stop": self._action("S&top", self.stop_camera),
            "quit": self._action("&Quit", self.close, "Ctrl+Q"),
            "register": self._action("&Register a person…", self.open_registration, "Ctrl+R"),
            "log": self._action("Attendance &log…", self.open_attendance_log, "Ctrl+L"),
            "settings": self._action("&Settings…", self.open_settings),
            "pin": self._action("Change admin &PIN…", self.change_pin),
            "attendance": self._action("Enter &attendance mode", self.enter_attendance_mode, "F11"),
        }
        a = self.actions_by_name
        menus: dict[str, list[str | None]] = {
            "&Source": ["camera", "file", "url", None, "start", "stop", None, "quit"],
            "&Admin": ["register", "log", "settings", "pin"],
            "&View": ["attendance"],
        }
        for title, names in menus.items():
            menu = self.menuBar().addMenu(title)
            for name in names:
                if name is None:
                    menu.addSeparator()
                else:
                    menu.addAction(a[name])
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        for name in ("start", "stop", "file", "register", "log", "attendance"):
            toolbar.addAction(a[name])
        self.addToolBar(toolbar)

    def _connect_bridge(self) -> None:
        b = self.bridge
        b.loading.connect(self._on_loading)
        b.started.connect(self._on_started)
        b.failed.connect(self._on_failed)
        b.source_error.connect(self._on_source_error)
        b.camera_status.connect(self._on_camera_status)
        b.result.connect(self._on_result)
        b.verification.connect(self._on_event)
        b.attendance.connect(self._on_attendance)
        b.attendance_problem.connect(self._on_attendance_problem)
        b.error.connect(self._on_error)
        b.ready.connect(self._on_ready)
        b.sync_status.connect(lambda _status: self.refresh_status())

    def start(self) -> None:
        """Start loading in the background (call after ``show()``: it returns at once)."""
        self.controller.start()

    # -- controller signals -------------------------------------------------------------

    def _on_loading(self, text: str) -> None:
        self.video.set_placeholder(text)

    def _on_started(self) -> None:
        self.source_panel.hide()
        if self.recognizer is None:
            self.video.set_placeholder("Loading the face models…")

    def _on_failed(self, message: str) -> None:
        self.video.set_placeholder(message)
        QMessageBox.critical(self, "FaceKiosk could not start", message)

    def _on_source_error(self, message: str) -> None:
        self.camera_state = "error"
        self.video.clear()
        self.video.set_placeholder(message)
        self._show_source_panel(message)
        self._set_status("camera", "Camera: not available")
        if self.attendance_window is not None:
            self.attendance_window.set_notice("The camera is not available. Please see reception.")

    def _show_source_panel(self, message: str) -> None:
        self.source_message.setText(
            f"{message}\nPick a video file or a stream URL, or choose another camera."
        )
        self.source_panel.show()

    def _on_camera_status(self, status: CameraStatus) -> None:
        self.camera_state = state = status.state.value
        text = f"Camera: {state}"
        self.status_labels["camera"].setToolTip(status.message)
        if state in ("lost", "reconnecting") and status.message:
            text += ", retrying"  # the camera thread reconnects by itself (with backoff)
            if self.video.current_image() is None:
                self._show_source_panel(status.message)
                self.video.set_placeholder(f"No picture from {status.source}.")
        elif state == "live":
            self.source_panel.hide()
            if self.recognizer is not None:
                self.video.set_placeholder("")
        self._set_status("camera", text)
        if self.attendance_window is not None:
            self.attendance_window.on_camera_status(status)

    def _on_ready(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        if self.camera_state == "live":
            self.video.set_placeholder("")
        if self.attendance_window is not None:
            self.attendance_window.set_notice(None)
        self.refresh_status()

    def _on_result(self, result: FrameResult) -> None:
        self.video.set_result(result)
        if self.attendance_window is not None:
            self.attendance_window.on_result(result)

    def _on_event(self, event: VerificationEvent) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.wall_time))
        who = event.name if event.is_match and event.name else "unknown"
        distance = f"{event.distance:.2f}, " if math.isfinite(event.distance) else ""
        self.recent.insertItem(0, f"{stamp}  {who}  ({distance}{event.ttv_ms:.0f} ms)")
        while self.recent.count() > RECENT_MAX:
            self.recent.takeItem(self.recent.count() - 1)

    def _on_attendance(self, outcome: AttendanceOutcome) -> None:
        if self.attendance_window is not None:
            self.attendance_window.on_outcome(outcome)

    def _on_attendance_problem(self, problem: str | None) -> None:
        self.refresh_status()
        if self.attendance_window is not None:
            self.attendance_window.set_problem(problem)

    def _on_error(self, message: str) -> None:
        log.warning("%s", message)
        self.statusBar().showMessage(message, 15_000)

    def show_unexpected_error(self, message: str) -> None:
        """A bug in a slot: logged by the caller; here a calm note, and the kiosk goes on."""
        self._on_error(f"Unexpected error (logged): {message}")
        window = self.attendance_window
        if window is not None:
            window.set_notice("One moment, please.")
            QTimer.singleShot(3000, lambda: window.set_notice(None))

    def _check_health(self) -> None:
        if self.controller.check_health():
            self.statusBar().showMessage("Recognition stopped and was restarted.", 15_000)
        elif self.attendance_window is not None and self.controller.running:
            session = self.controller.session
            if session is not None and not session.pipeline.worker.alive:
                self.attendance_window.set_notice("One moment, please: restarting recognition.")

    # -- status bar -------------------------------------------------------------------------

    def _set_status(self, key: str, text: str) -> None:
        self.status_labels[key].setText(text)

    def refresh_status(self) -> None:
        stats = self.controller.stats()
        rec = self.recognizer
        if stats is not None and self.camera_state == "live":
            self._set_status("camera", f"Camera: live {stats.capture_fps:.0f} fps")
        if rec is not None:
            device = str(rec.detector.device).upper()
            fps = stats.processing_fps if stats is not None else 0.0
            self._set_status("recognition", f"Recognition: {fps:.1f} fps on {device}")
            gallery = f"Gallery: {len(rec.people)} people"
            sync = self.controller.sync_status
            if sync is not None:
                gallery += f", {sync.text}"
            else:
                gallery += ", local"
            self._set_status("gallery", gallery)
            if rec.detection_only:
                self._set_status("mode", "Detection only: no FaceNet weights (hover for the fix)")
                self.status_labels["mode"].setStyleSheet("color:#c0392b; font-weight:600;")
                self.status_labels["mode"].setToolTip(
                    "Faces are found but nobody is named. Fix: put the FaceNet weights where "
                    "recognition.weights_path says, or `dvc pull` them in a fleet; "
                    "`kiosk doctor` lists every place it looked.\n\n" + str(rec.model_error or "")
                )
            else:
                self._set_status("mode", "")
        telemetry = self.controller.telemetry_status()
        if telemetry is not None:
            self._set_status("telemetry", f"Telemetry: {telemetry.state}")
            self.status_labels["telemetry"].setToolTip(telemetry.message)
        if self.controller.attendance_error:
            self._set_status("attendance", "Attendance NOT recorded: database unavailable")
            self.status_labels["attendance"].setToolTip(self.controller.attendance_error)
        elif self.controller.recording.is_set():
            self._set_status("attendance", "Attendance: recording")
            self.status_labels["attendance"].setToolTip("")

    # -- sources ---------------------------------------------------------------------------

    def switch_source(self, spec: str) -> None:
        self.video.clear()
        self.video.set_placeholder(f"Opening {spec}…")
        self.camera_state = "connecting"
        self.controller.switch_source(spec)
        self._set_status("camera", f"Camera: opening {spec}")

    # Changing or stopping the camera is an admin action: a kiosk left in window mode must
    # not be switched off by a passer-by, nor offer them a file dialog.

    def choose_file(self) -> None:
        if not self.gate.require(self, "change the camera source"):
            return
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a video file",
            "",
            VIDEO_FILTER,
            options=QFileDialog.Option.ReadOnly,  # no deleting or renaming files in it
        )
        if path:
            self.switch_source(path)

    def choose_url(self) -> None:
        if not self.gate.require(self, "change the camera source"):
            return
        url, ok = QInputDialog.getText(self, "Open a stream", "rtsp:// or http:// URL:")
        if ok and url.strip():
            self.switch_source(url.strip())

    def choose_camera(self) -> None:
        if not self.gate.require(self, "change the camera source"):
            return
        index, ok = QInputDialog.getInt(self, "Choose a camera", "Camera index:", 0, 0, 63)
        if ok:
            self.switch_source(str(index))

    def start_camera(self) -> None:
        if not self.controller.running and self.gate.require(self, "start the camera"):
            self.switch_source(self.controller.source_spec)

    def stop_camera(self) -> None:
        if not self.gate.require(self, "stop the camera"):
            return
        self.controller.stop_session()
        self.camera_state = "stopped"
        self.video.clear()
        self.video.set_placeholder("Stopped. Press Start to run the camera again.")
        self._set_status("camera", "Camera: stopped")

    # -- admin -------------------------------------------------------------------------------

    def open_registration(self) -> None:
        if not self.gate.require(self, "register a person"):
            return
        if self.recognizer is None:
            QMessageBox.information(
                self, "Registration", "The face models are still loading; try again shortly."
            )
            return
        from kiosk.ui.registration import RegistrationDialog

        dialog = RegistrationDialog(
            self.settings, self.controller.submit, self.controller.latest_frame, self
        )
        dialog.saved.connect(self._on_person_saved)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one per registration
        self.registration = dialog
        dialog.open()

    def _on_person_saved(self, result: object) -> None:
        from kiosk.recognition.recognizer import EnrollResult

        assert isinstance(result, EnrollResult)
        person = result.person
        self.audit.write("person.enrol", detail=f"{person.name} ({person.id})")
        self.controller.request_reload(reset_tracks=True)
        self.statusBar().showMessage(f"{person.name} is enrolled.", 10_000)
        from kiosk.sync.registry import registry_configured

        if registry_configured(self.settings):
            self._publish_thread = threading.Thread(
                target=self._publish, name="kiosk-publish", daemon=True
            )
            self._publish_thread.start()

    def _publish(self) -> None:
        from kiosk.sync import publish

        try:
            published = publish(self.settings, author=f"{self.settings.kiosk.id} admin")
        except KioskError as exc:
            self.bridge.error.emit(f"Enrolment saved here but not published to the fleet: {exc}")
            return
        self.bridge.error.emit(f"Published to the gallery registry: {published}")

    def open_attendance_log(self) -> None:
        store = self.controller.store
        if store is None:
            QMessageBox.warning(
                self,
                "Attendance log",
                self.controller.attendance_error or "The attendance records are still opening.",
            )
            return
        from kiosk.ui.attendance_log import AttendanceLogDialog

        self.log_dialog = AttendanceLogDialog(store, self.gate, self)
        self.log_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.log_dialog.open()

    def open_settings(self) -> None:
        if not self.gate.require(self, "change settings"):
            return
        from kiosk.ui.settings_dialog import SettingsDialog

        self.settings_dialog = SettingsDialog(self.settings, self.config_path, self)
        self.settings_dialog.saved.connect(
            lambda path: self.audit.write("settings.save", detail=str(path))
        )
        self.settings_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.settings_dialog.open()

    def change_pin(self) -> None:
        if not self.gate.require(self, "change the admin PIN"):
            return
        self.gate.change_pin(self)

    # -- attendance mode -----------------------------------------------------------------

    def enter_attendance_mode(self) -> None:
        """Fullscreen check-in screen on ``ui.screen``; leaving it needs the admin PIN."""
        if self.attendance_window is not None:
            return
        if not self.gate.ensure_pin_set(self):
            return  # without a PIN nobody could ever leave attendance mode
        window = AttendanceWindow(self.settings, self.controller.latest_frame)
        window.exit_requested.connect(self._leave_requested)
        window.set_problem(self.controller.attendance_error)
        self.attendance_window = window
        self.controller.recording.set()
        self._set_status("attendance", "Attendance: recording")
        self.audit.write("attendance.enter")
        self.gate.lock()
        window.show_on_screen(self.settings.ui.screen)
        if self.recognizer is None:
            window.set_notice("Starting. One moment, please.")
        self.hide()

    def _leave_requested(self) -> None:
        window = self.attendance_window
        if window is None or not self.gate.require(window, "leave attendance mode"):
            return
        self.leave_attendance_mode()

    def leave_attendance_mode(self) -> None:
        window, self.attendance_window = self.attendance_window, None
        self.controller.recording.clear()
        if window is not None:
            window.leave()
            window.deleteLater()
        self.audit.write("attendance.leave")
        self._set_status("attendance", ATTENDANCE_OFF)
        self.show()

    # -- closing ---------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.attendance_window is not None:
            event.ignore()  # the attendance window owns leaving (with the PIN)
            return
        self.shutdown()
        event.accept()

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop timers and every thread; True when all ended within ``timeout``."""
        if self._closed:
            return True
        self._closed = True
        self._status_timer.stop()
        self._health_timer.stop()
        deadline = time.monotonic() + timeout
        stopped = self.controller.shutdown(timeout=timeout)
        thread = self._publish_thread
        if thread is not None:
            thread.join(max(0.1, deadline - time.monotonic()))
            stopped = stopped and not thread.is_alive()
        return stopped
