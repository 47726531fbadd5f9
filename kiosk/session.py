"""A kiosk session: the live pipeline plus everything that listens to it.

:class:`KioskSession` runs a :class:`~kiosk.live.LivePipeline` and sends its
verification events to telemetry (one MLflow run per session, see
:mod:`kiosk.telemetry`) and to any other listener (attendance). It is what
``kiosk live`` runs headless and what the window runs behind the screen.

The telemetry session starts once the models are loaded (its tags name the model
fingerprint and device) and ends, with a summary, when the session stops. The
gallery version for the tags comes from ``gallery_version`` (the registry sync
knows it), read when the session starts.

With a gallery registry configured (``gallery.repo``), the session also runs the
background gallery sync (:class:`kiosk.sync.GallerySync`, thread ``kiosk-sync``):
nothing waits for it, and when it switches to a new gallery version the
recognition thread reloads the gallery before its next frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiosk.camera.source import FrameSource
from kiosk.live import LivePipeline
from kiosk.recognition.types import FrameResult, VerificationEvent
from kiosk.settings import Settings
from kiosk.sync.registry import current_gallery_version, registry_configured
from kiosk.telemetry import SessionInfo, TelemetrySink

if TYPE_CHECKING:
    from kiosk.camera.capture import CameraStatus
    from kiosk.recognition.recognizer import Recognizer
    from kiosk.sync.sync import GallerySync, SyncStatus

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 2.0  # how often the pipeline's counters are handed to telemetry


class KioskSession:
    """Pipeline + telemetry, started and stopped together; listeners as in LivePipeline."""

    def __init__(
        self,
        settings: Settings,
        recognizer: Recognizer | Callable[[], Recognizer],
        *,
        source: FrameSource | None = None,
        telemetry: TelemetrySink | None = None,
        gallery_version: Callable[[], str | None] = lambda: None,
        on_camera_status: Callable[[CameraStatus], None] | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        on_event: Callable[[VerificationEvent], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_ready: Callable[[Recognizer], None] | None = None,
        on_sync_status: Callable[[SyncStatus], None] | None = None,
        sync_gallery: bool = True,
    ) -> None:
        self.settings = settings
        self.telemetry = telemetry if telemetry is not None else TelemetrySink(settings)
        self._gallery_version = gallery_version
        self._on_ready = on_ready
        self._on_result = on_result
        self._last_stats = 0.0
        self.ready = threading.Event()
        self.pipeline = LivePipeline(
            settings,
            recognizer,
            source=source,
            on_camera_status=on_camera_status,
            on_result=self._result,
            on_event=on_event,
            on_error=on_error,
            on_ready=self._ready,
        )
        self.pipeline.add_event_listener(self.telemetry.submit)
        self.gallery_sync: GallerySync | None = None
        if sync_gallery and registry_configured(settings):
            from kiosk.sync.sync import GallerySync

            self.gallery_sync = GallerySync(
                settings,
                on_status=on_sync_status,
                on_new_version=lambda _status: self.pipeline.request_reload(),
            )

    def start(self) -> None:
        self.telemetry.start()
        self.pipeline.start()
        if self.gallery_sync is not None:
            self.gallery_sync.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the sync and the pipeline (2 s at most each), then end telemetry and flush."""
        deadline = time.monotonic() + timeout
        stopped = True
        if self.gallery_sync is not None:
            stopped = self.gallery_sync.stop(timeout=min(2.0, timeout))
        stopped = self.pipeline.stop(timeout=min(2.0, timeout)) and stopped
        self.telemetry.update_stats(self.pipeline.stats())
        self.telemetry.close(timeout=max(0.5, deadline - time.monotonic()))
        return stopped

    def _ready(self, recognizer: Recognizer) -> None:
        try:
            version = self._gallery_version()
        except Exception:  # the version is a tag; never a reason not to start
            log.exception("could not read the gallery version")
            version = None
        self.telemetry.start_session(
            SessionInfo(
                kiosk_id=self.settings.kiosk.id,
                model_fingerprint=recognizer.model_fingerprint,
                device=str(recognizer.detector.device),
                gallery_version=version,
                threshold=recognizer.index.threshold,
            )
        )
        self.ready.set()
        if self._on_ready is not None:
            self._on_ready(recognizer)

    def _result(self, result: FrameResult) -> None:
        now = time.monotonic()
        if now - self._last_stats >= STATS_INTERVAL_S:
            self._last_stats = now
            self.telemetry.update_stats(self.pipeline.stats())
        if self._on_result is not None:
            self._on_result(result)


def run_headless(
    settings: Settings,
    *,
    seconds: float | None,
    print_line: Callable[[str], None],
    as_json: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Run a session without a window until ``seconds`` pass, the video ends or ``stop``.

    Prints one line per verification (JSON with ``as_json``), camera state changes and a
    closing summary. Returns the number of verifications.
    """
    import json

    from kiosk.camera.capture import CameraState
    from kiosk.recognition.recognizer import Recognizer

    stop = stop or threading.Event()
    errors: list[str] = []
    count = 0

    def on_event(event: VerificationEvent) -> None:
        nonlocal count
        count += 1
        if as_json:
            print_line(json.dumps(_event_json(event)))
            return
        who = event.name if event.is_match else "unknown"
        clock = time.strftime("%H:%M:%S", time.localtime(event.wall_time))
        print_line(
            f"{clock} track {event.track_id}: {who} (distance {event.distance:.3f}, "
            f"threshold {event.threshold:.3f}, {event.votes} votes, {event.ttv_ms:.0f} ms)"
        )

    def on_error(message: str) -> None:
        errors.append(message)
        log.error("%s", message)

    def on_sync_status(status: SyncStatus) -> None:
        if status.state != "syncing":
            log.info("gallery: %s", status.text)

    session = KioskSession(
        settings,
        lambda: Recognizer.create(settings),
        gallery_version=lambda: current_gallery_version(settings),
        on_event=on_event,
        on_error=on_error,
        on_sync_status=on_sync_status,
    )
    session.start()
    deadline = None if seconds is None else time.monotonic() + seconds
    camera, worker = session.pipeline.camera, session.pipeline.worker
    try:
        while not stop.wait(0.1):
            if deadline is not None and time.monotonic() >= deadline:
                break
            video_done = camera.source.ended and camera.status.state is CameraState.STOPPED
            buffer = camera.buffer
            if video_done and not buffer.pending and worker.handled == buffer.taken_count:
                break  # every frame of the file was recognised or dropped
            if errors and worker.recognizer is None:
                break  # the models could not be loaded
    except KeyboardInterrupt:
        pass  # Ctrl-C: stop cleanly and print the summary
    finally:
        stats = session.pipeline.stats()
        if not session.stop(timeout=15.0):  # no window waits: give MLflow time to answer
            # Still loading the models (that cannot be interrupted): let it finish rather
            # than exit under a thread inside torch.
            session.pipeline.worker.join(timeout=120)
    summary = {
        "frames_captured": stats.frames_captured,
        "frames_processed": stats.frames_processed,
        "dropped_frames": stats.dropped_frames,
        "tracks": stats.tracks,
        "verifications": count,
        "telemetry": session.telemetry.status().message,
    }
    if as_json:
        print_line(json.dumps({"summary": summary}))
    else:
        print_line(
            f"{stats.frames_captured} frames, {stats.frames_processed} recognised, "
            f"{stats.dropped_frames} dropped; {stats.tracks} faces tracked, {count} verified. "
            f"{summary['telemetry']}"
        )
    if errors and session.pipeline.worker.recognizer is None:
        from kiosk.errors import KioskError

        raise KioskError(errors[-1])
    return count


def _event_json(event: VerificationEvent) -> dict[str, object]:
    import dataclasses
    import math

    data = dataclasses.asdict(event)
    data["distance"] = event.distance if math.isfinite(event.distance) else None
    data["box"] = [round(v, 1) for v in event.box]
    return data
