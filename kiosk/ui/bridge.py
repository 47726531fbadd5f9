"""Qt signals for the controller's callbacks, which run on worker threads.

The controller calls plain callables on ``kiosk-loader``, ``kiosk-camera``,
``kiosk-recognition`` and ``kiosk-sync``. :class:`ControllerBridge` lives on the
GUI thread; emitting its signals from another thread queues the call, so slots
always run on the GUI thread and never touch a widget from elsewhere.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from kiosk.controller import ControllerCallbacks


class ControllerBridge(QObject):
    loading = Signal(str)
    started = Signal()
    failed = Signal(str)
    source_error = Signal(str)
    camera_status = Signal(object)  # CameraStatus
    result = Signal(object)  # FrameResult
    verification = Signal(object)  # VerificationEvent (not 'event': QObject.event)
    attendance = Signal(object)  # AttendanceOutcome
    attendance_problem = Signal(object)  # str, or None once check-ins are saved again
    error = Signal(str)
    ready = Signal(object)  # Recognizer (read-only use on the GUI thread)
    sync_status = Signal(object)  # SyncStatus

    def callbacks(self) -> ControllerCallbacks:
        return ControllerCallbacks(
            on_loading=self.loading.emit,
            on_started=self.started.emit,
            on_failed=self.failed.emit,
            on_source_error=self.source_error.emit,
            on_camera_status=self.camera_status.emit,
            on_result=self.result.emit,
            on_event=self.verification.emit,
            on_attendance=self.attendance.emit,
            on_attendance_problem=self.attendance_problem.emit,
            on_error=self.error.emit,
            on_ready=self.ready.emit,
            on_sync_status=self.sync_status.emit,
        )
