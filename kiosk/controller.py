"""The kiosk application's engine, without a window: what the Qt UI drives.

:class:`KioskController` owns everything behind the screen: the
:class:`~kiosk.session.KioskSession` (camera, recognition, telemetry, gallery
sync), the attendance records and the choice of frame source. It is plain
Python: callbacks go to whoever listens (the UI re-emits them as Qt signals),
and it is tested headless.

Start-up is split so the window can appear at once: :meth:`KioskController.start`
returns immediately and a ``kiosk-loader`` thread imports the heavy modules
(torch, via the recognition core), opens the attendance database and starts the
session. The models then load on the recognition thread, which fires
``on_ready``. Switching the source keeps the loaded models: only the camera and
the per-session state (tracks, the telemetry run) start again.

Callbacks run on the thread named in :class:`ControllerCallbacks`; they must
return quickly and must not call back into the controller's blocking methods.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from kiosk.errors import AttendanceError, CameraError, KioskError
from kiosk.settings import Settings

if TYPE_CHECKING:
    from kiosk.attendance.recorder import AttendanceOutcome, AttendanceRecorder
    from kiosk.attendance.store import AttendanceStore
    from kiosk.camera.capture import CameraStatus
    from kiosk.camera.frames import Frame
    from kiosk.camera.source import FrameSource
    from kiosk.recognition.recognizer import Recognizer
    from kiosk.recognition.types import FrameResult, PipelineStats, VerificationEvent
    from kiosk.session import KioskSession
    from kiosk.sync.sync import SyncStatus
    from kiosk.telemetry import TelemetrySink, TelemetryStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A recognition thread that died is restarted after this long, doubling to the max.
RESTART_INITIAL_S = 2.0
RESTART_MAX_S = 60.0


def _ignore(*_args: Any) -> None:
    return None


@dataclass
class ControllerCallbacks:
    """Where the controller reports; every field is optional.

    Threads: ``on_loading``, ``on_source_error``, ``on_started`` and ``on_failed``
    run on ``kiosk-loader`` (or the caller's thread for a restart);
    ``on_camera_status`` on ``kiosk-camera``; ``on_result``, ``on_event``,
    ``on_attendance``, ``on_attendance_problem`` (a sentence while check-ins cannot be
    saved, ``None`` once they can again), ``on_error`` and ``on_ready`` on
    ``kiosk-recognition`` (``on_attendance_problem`` also on ``kiosk-loader``);
    ``on_sync_status`` on ``kiosk-sync``.
    """

    on_loading: Callable[[str], None] = _ignore
    on_started: Callable[[], None] = _ignore
    on_failed: Callable[[str], None] = _ignore
    on_source_error: Callable[[str], None] = _ignore
    on_camera_status: Callable[[CameraStatus], None] = _ignore
    on_result: Callable[[FrameResult], None] = _ignore
    on_event: Callable[[VerificationEvent], None] = _ignore
    on_attendance: Callable[[AttendanceOutcome], None] = _ignore
    on_attendance_problem: Callable[[str | None], None] = _ignore
    on_error: Callable[[str], None] = _ignore
    on_ready: Callable[[Recognizer], None] = _ignore
    on_sync_status: Callable[[SyncStatus], None] = _ignore


class KioskController:
    """Session lifecycle, source switching, attendance recording; see the module doc.

    ``recognizer`` may be a loaded :class:`Recognizer` (tests share one) or ``None``
    to load the models from ``settings`` on the recognition thread.
    ``source`` overrides ``camera.source`` (the ``--source`` option).
    """

    def __init__(
        self,
        settings: Settings,
        callbacks: ControllerCallbacks | None = None,
        *,
        source: str | None = None,
        recognizer: Recognizer | None = None,
        frame_source: FrameSource | None = None,
    ) -> None:
        self.settings = settings
        self.callbacks = callbacks or ControllerCallbacks()
        self.source_spec = source if source is not None else settings.camera.source
        self._frame_source = frame_source
        self.recognizer: Recognizer | None = recognizer
        self.session: KioskSession | None = None
        self.store: AttendanceStore | None = None
        self.recorder: AttendanceRecorder | None = None
        self.attendance_error: str | None = None
        #: Check-ins are recorded only while this is set (the UI's attendance mode), so
        #: an admin testing the camera or enrolling people is never recorded.
        self.recording = threading.Event()
        self.sync_status: SyncStatus | None = None
        self._lock = threading.RLock()
        self._loader: threading.Thread | None = None
        self._closing = threading.Event()
        self._restart_delay = RESTART_INITIAL_S
        self._restart_at: float | None = None
        self._stopped_sinks: list[TelemetrySink] = []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Load and start in the background (``kiosk-loader``); returns at once."""
        self._closing.clear()
        self._loader = threading.Thread(target=self._load, name="kiosk-loader", daemon=True)
        self._loader.start()

    def wait_started(self, timeout: float | None = None) -> bool:
        """Wait for the loader thread (tests and the CLI; the UI never waits)."""
        loader = self._loader
        if loader is None:
            return True
        loader.join(timeout)
        return not loader.is_alive()

    def _load(self) -> None:
        try:
            self.callbacks.on_loading("Loading the recognition engine (torch)…")
            import kiosk.session  # noqa: F401  (torch and OpenCV: seconds on a cold disk)

            self.callbacks.on_loading("Opening the attendance records…")
            self._open_attendance()
            if self._closing.is_set():
                return
            self.callbacks.on_loading("Starting the camera and loading the models…")
            self._start_session()
        except Exception as exc:  # the loader must report, never die silently
            log.exception("the kiosk could not start")
            self.callbacks.on_failed(f"The kiosk could not start: {exc}")

    def _open_attendance(self) -> None:
        from kiosk.attendance.recorder import AttendanceRecorder
        from kiosk.attendance.store import AttendanceStore
        from kiosk.sync.registry import current_gallery_version

        try:
            self.store = AttendanceStore(self.settings.attendance_db)
        except AttendanceError as exc:
            self.attendance_error = str(exc)
            log.error("attendance records unavailable: %s", exc)
            self.callbacks.on_error(f"Attendance is not being recorded: {exc}")
            self.callbacks.on_attendance_problem(self.attendance_error)
            return
        self.recorder = AttendanceRecorder(
            self.store,
            self.settings,
            gallery_version=lambda: current_gallery_version(self.settings),
            model_fingerprint=lambda: (
                self.recognizer.model_fingerprint if self.recognizer else None
            ),
        )

    def _start_session(self) -> None:
        from kiosk.camera.source import open_source
        from kiosk.session import KioskSession
        from kiosk.sync.registry import current_gallery_version

        with self._lock:
            if self._closing.is_set():
                return
            try:
                source = self._frame_source or open_source(self.source_spec, self.settings.camera)
            except CameraError as exc:
                self.callbacks.on_source_error(str(exc))
                return
            self._frame_source = None  # an injected source is used once
            recognizer: Recognizer | Callable[[], Recognizer]
            recognizer = self.recognizer if self.recognizer is not None else self._load_models
            cb = self.callbacks
            session = KioskSession(
                self.settings,
                recognizer,
                source=source,
                gallery_version=lambda: current_gallery_version(self.settings),
                on_camera_status=cb.on_camera_status,
                on_result=cb.on_result,
                on_event=cb.on_event,
                on_error=cb.on_error,
                on_ready=self._ready,
                on_sync_status=self._sync_status,
            )
            session.pipeline.add_event_listener(self._record)
            self.session = session
            session.start()
        cb.on_started()

    def _load_models(self) -> Recognizer:
        from kiosk.recognition.recognizer import Recognizer

        return Recognizer.create(self.settings)

    def _ready(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self._restart_delay = RESTART_INITIAL_S
        self.callbacks.on_ready(recognizer)

    def _sync_status(self, status: SyncStatus) -> None:
        self.sync_status = status
        self.callbacks.on_sync_status(status)

    def _record(self, event: VerificationEvent) -> None:
        recorder = self.recorder
        if recorder is None or not self.recording.is_set():
            return
        try:
            outcome = recorder.handle(event)
        except AttendanceError as exc:
            log.error("check-in not recorded: %s", exc)
            self.attendance_error = str(exc)
            self.callbacks.on_error(f"A check-in could not be recorded: {exc}")
            self.callbacks.on_attendance_problem(self.attendance_error)
            return
        if self.attendance_error is not None:
            self.attendance_error = None  # writing works again (space was freed)
            self.callbacks.on_attendance_problem(None)
        self.callbacks.on_attendance(outcome)

    def switch_source(self, spec: str) -> None:
        """Use another camera index, video file or URL (the models stay loaded).

        Stops the current session (2 s at most) and starts a new one on the
        caller's thread; a source that cannot be opened is reported through
        ``on_source_error`` and leaves the kiosk stopped.
        """
        self.stop_session()
        self.source_spec = spec
        if self.recognizer is None and self._loader is not None and self._loader.is_alive():
            return  # still loading: the loader starts the new source
        self._start_session()

    def restart_session(self) -> None:
        self.stop_session()
        self._start_session()

    def stop_session(self, timeout: float = 2.0) -> bool:
        with self._lock:
            session, self.session = self.session, None
        if session is None:
            return True
        stopped = session.stop(timeout=timeout)
        self._stopped_sinks.append(session.telemetry)
        return stopped

    def finish_telemetry(self, timeout: float) -> bool:
        """Before the process exits: give telemetry threads that were still connecting to
        MLflow when their session stopped up to ``timeout`` s to spool their records."""
        deadline = time.monotonic() + timeout
        done = all(
            s.wait_closed(max(0.0, deadline - time.monotonic())) for s in self._stopped_sinks
        )
        if not done:
            log.warning("telemetry still busy after %.0f s; its last records may be lost", timeout)
        return done

    @property
    def running(self) -> bool:
        return self.session is not None

    def check_health(self, now: float | None = None) -> bool:
        """Restart a session whose recognition thread died; True when it restarted.

        Called periodically by the UI. A restart waits :data:`RESTART_INITIAL_S`,
        doubling to :data:`RESTART_MAX_S` while restarts keep failing.
        """
        now = time.monotonic() if now is None else now
        session = self.session
        if session is None or self._closing.is_set():
            return False
        worker = session.pipeline.worker
        if worker.alive:
            return False
        if self._restart_at is None:
            self._restart_at = now + self._restart_delay
            log.warning("recognition stopped; restarting in %.0f s", self._restart_delay)
            return False
        if now < self._restart_at:
            return False
        self._restart_at = None
        self._restart_delay = min(RESTART_MAX_S, self._restart_delay * 2)
        self.restart_session()
        return True

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop every thread (loader, session); True when all ended within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._closing.set()
        loader = self._loader
        if loader is not None:
            loader.join(max(0.0, deadline - time.monotonic()))
        stopped = self.stop_session(timeout=max(0.5, deadline - time.monotonic()))
        if loader is not None and loader.is_alive():
            log.error("the loader did not finish within %.1f s", timeout)
            stopped = False
        if self.store is not None:
            self.store.close()
        return stopped

    # -- for the UI ----------------------------------------------------------------------

    def latest_frame(self) -> Frame | None:
        session = self.session
        return session.pipeline.latest_frame() if session is not None else None

    def submit(self, job: Callable[[Recognizer], T]) -> Future[T]:
        """Run ``job(recognizer)`` on the recognition thread (see RecognitionWorker.submit)."""
        session = self.session
        if session is None:
            future: Future[T] = Future()
            future.set_exception(KioskError("recognition is not running; start the camera"))
            return future
        return session.pipeline.submit(job)

    def request_reload(self, reset_tracks: bool = False) -> None:
        session = self.session
        if session is not None:
            session.pipeline.request_reload(reset_tracks=reset_tracks)

    def stats(self) -> PipelineStats | None:
        session = self.session
        return session.pipeline.stats() if session is not None else None

    def telemetry_status(self) -> TelemetryStatus | None:
        session = self.session
        return session.telemetry.status() if session is not None else None
