"""The live pipeline as one object: camera thread -> recognition thread -> listeners.

:class:`LivePipeline` wires a :class:`~kiosk.camera.capture.Camera` to a
:class:`~kiosk.recognition.worker.RecognitionWorker` through the camera's one-slot
buffer and starts and stops them together, in order, each with a timeout. It is
what the window, attendance mode and ``kiosk live`` run; it has no Qt in it.

Listeners are plain callables, called on the thread named:

* ``on_camera_status(CameraStatus)``: ``kiosk-camera``;
* ``on_result(FrameResult)``, ``on_event(VerificationEvent)``, ``on_error(str)``,
  ``on_ready(Recognizer)``: ``kiosk-recognition``.

The display does not listen for frames: it calls :meth:`LivePipeline.latest_frame`
at its own paint rate (newest frame wins there too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from kiosk.camera.capture import Camera, CameraStatus
from kiosk.camera.frames import Frame
from kiosk.camera.source import FrameSource, open_source
from kiosk.recognition.types import FrameResult, PipelineStats, VerificationEvent
from kiosk.recognition.worker import RecognitionWorker
from kiosk.settings import Settings

if TYPE_CHECKING:
    from kiosk.recognition.recognizer import Recognizer

log = logging.getLogger(__name__)
T = TypeVar("T")


class LivePipeline:
    """Camera + recognition, started and stopped as one; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        recognizer: Recognizer | Callable[[], Recognizer],
        *,
        source: FrameSource | None = None,
        on_camera_status: Callable[[CameraStatus], None] | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        on_event: Callable[[VerificationEvent], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_ready: Callable[[Recognizer], None] | None = None,
    ) -> None:
        self.settings = settings
        source = (
            source if source is not None else open_source(settings.camera.source, settings.camera)
        )
        self.camera = Camera(source, settings.camera, on_status=on_camera_status)
        self._event_listeners: list[Callable[[VerificationEvent], None]] = []
        if on_event is not None:
            self._event_listeners.append(on_event)
        self.worker = RecognitionWorker(
            self.camera.buffer,
            recognizer,
            settings,
            on_result=on_result,
            on_event=self._dispatch_event,
            on_error=on_error,
            on_ready=self._ready,
        )
        self._on_ready = on_ready
        self._start_camera_when_ready = False

    def add_event_listener(self, listener: Callable[[VerificationEvent], None]) -> None:
        """Also send verification events to ``listener`` (e.g. attendance, telemetry)."""
        self._event_listeners.append(listener)

    def _dispatch_event(self, event: VerificationEvent) -> None:
        for listener in list(self._event_listeners):
            try:
                listener(event)
            except Exception:  # one broken consumer must not starve the others
                log.exception("verification listener %r failed", listener)

    def start(self) -> None:
        """Start recognition (it loads the models first), and the camera.

        A camera or stream starts at once, so the picture is live while the models
        load; a video file waits for them, so that none of it plays unrecognised.
        """
        if self.camera.source.kind == "file" and self.worker.recognizer is None:
            self._start_camera_when_ready = True
        else:
            self.camera.start()
        self.worker.start()

    def _ready(self, recognizer: Recognizer) -> None:
        if self._start_camera_when_ready:
            self._start_camera_when_ready = False
            self.camera.start()
        if self._on_ready is not None:
            self._on_ready(recognizer)

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the camera, then recognition; True when both threads ended in time."""
        self._start_camera_when_ready = False
        deadline = time.monotonic() + timeout
        camera_ok = self.camera.stop(timeout=max(0.1, deadline - time.monotonic()))
        worker_ok = self.worker.stop(timeout=max(0.1, deadline - time.monotonic()))
        return camera_ok and worker_ok

    def latest_frame(self) -> Frame | None:
        """The newest captured frame, for display (never waits)."""
        return self.camera.buffer.peek()

    def request_reload(self, reset_tracks: bool = False) -> None:
        """Reload the gallery on the recognition thread (e.g. after a sync or enrolment)."""
        self.worker.request_reload(reset_tracks=reset_tracks)

    def submit(self, job: Callable[[Recognizer], T]) -> Future[T]:
        """Run ``job(recognizer)`` on the recognition thread; see RecognitionWorker.submit."""
        return self.worker.submit(job)

    def stats(self) -> PipelineStats:
        stats = self.worker.stats()
        return PipelineStats(
            frames_captured=self.camera.frames_captured,
            frames_processed=stats.frames_processed,
            dropped_frames=self.camera.dropped_frames,
            capture_fps=self.camera.fps,
            processing_fps=stats.processing_fps,
            tracks=stats.tracks,
            verifications=stats.verifications,
        )
