"""The capture thread: one source, reconnection with backoff, newest frame wins.

``Camera`` owns a :class:`FrameSource` and a thread named ``kiosk-camera`` that reads
it and ``put``s numbered, timestamped frames into a :class:`LatestFrameBuffer`.
Camera loss is a state, not an exception::

    connecting -> live -> lost -> reconnecting -> live ...   (stop() -> stopped)

A source that fails to open, returns no frame for ``camera.lost_after_s`` or
errors is *lost*; the thread waits (exponential backoff from
``reconnect_initial_s`` to ``reconnect_max_s``) and reconnects. The restart-storm
guard waits ``reconnect_max_s`` once more than ``max_restarts_per_minute``
reconnections happened within a minute. A video file that ends (without looping)
stops the camera with the state ``stopped``.

``on_status`` is called **on the capture thread** on every state change; keep it
short (the UI bridge re-emits it as a Qt signal).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.camera.frames import Frame, LatestFrameBuffer, RateMeter
from kiosk.camera.source import FrameSource
from kiosk.errors import CameraError
from kiosk.settings import CameraSection

log = logging.getLogger(__name__)


class CameraState(enum.Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    LOST = "lost"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass(frozen=True)
class CameraStatus:
    state: CameraState
    source: str
    message: str = ""
    retry_in_s: float | None = None  # when lost: seconds until the next attempt


class Camera:
    """Reads a frame source on its own thread into a one-slot buffer."""

    def __init__(
        self,
        source: FrameSource,
        settings: CameraSection,
        *,
        on_status: Callable[[CameraStatus], None] | None = None,
        buffer: LatestFrameBuffer | None = None,
        pace: bool | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.buffer = buffer if buffer is not None else LatestFrameBuffer()
        self._on_status = on_status
        # Files play at their own rate unless told otherwise; cameras set their own pace.
        self._pace = settings.pace_files if pace is None else pace
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = CameraStatus(CameraState.STOPPED, source.description, "not started")
        self._status_lock = threading.Lock()
        self._next_id = 0
        self._rate = RateMeter()
        self._session_was_live = False
        self.reconnects = 0

    # -- public ---------------------------------------------------------------------------

    @property
    def status(self) -> CameraStatus:
        with self._status_lock:
            return self._status

    @property
    def frames_captured(self) -> int:
        return self._next_id

    @property
    def dropped_frames(self) -> int:
        return self.buffer.dropped

    @property
    def fps(self) -> float:
        """Frames per second over the last two seconds of capture."""
        return self._rate.rate

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.buffer.reopen()
        self._thread = threading.Thread(target=self._run, name="kiosk-camera", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop capturing; True when the thread ended within ``timeout`` seconds.

        A driver stuck inside a blocking read cannot be interrupted; then the thread
        (a daemon) is logged and left to end with the process.
        """
        self._stop.set()
        self.buffer.close()
        if self.wait_stopped(timeout):
            return True
        log.error("camera thread did not stop within %.1f s (blocked in the driver)", timeout)
        return False

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait for the capture thread to end (stopped, or a file that ended by itself)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        return True

    # -- the thread -----------------------------------------------------------------------

    def _set(self, state: CameraState, message: str = "", retry_in: float | None = None) -> None:
        status = CameraStatus(state, self.source.description, message, retry_in)
        with self._status_lock:
            changed = status != self._status
            self._status = status
        if not changed:
            return
        log.info("camera %s: %s %s", self.source.description, state.value, message)
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:  # a broken listener must not kill capture
                log.exception("camera status listener failed")

    def _run(self) -> None:
        cam = self.settings
        attempt = 0
        restarts: deque[float] = deque()
        first = True
        try:
            while not self._stop.is_set():
                self._set(CameraState.CONNECTING if first else CameraState.RECONNECTING)
                first = False
                reason = self._session()
                if reason is None:  # stop requested, or the file ended
                    return
                if self._session_was_live:
                    attempt = 0  # a connection that delivered frames resets the backoff
                attempt += 1
                now = time.monotonic()
                restarts.append(now)
                while restarts and now - restarts[0] > 60.0:
                    restarts.popleft()
                self.reconnects += 1
                delay = min(cam.reconnect_initial_s * 2 ** (attempt - 1), cam.reconnect_max_s)
                if len(restarts) > cam.max_restarts_per_minute:
                    delay = cam.reconnect_max_s
                    reason += " (restarting too often; waiting longer)"
                self._set(CameraState.LOST, reason, retry_in=delay)
                if self._stop.wait(delay):
                    return
        finally:
            self.source.close()
            if self.status.state is not CameraState.STOPPED:
                self._set(CameraState.STOPPED, "stopped")

    def _session(self) -> str | None:
        """Open the source and read it until it is lost (reason) or stopped (None)."""
        self._session_was_live = False
        try:
            self.source.open()
        except CameraError as exc:
            return str(exc)
        except Exception as exc:  # a backend bug must not end capture for good
            log.exception("opening %s failed", self.source.description)
            return f"cannot open {self.source.description}: {exc}"
        cam = self.settings
        last_frame = time.monotonic()
        interval = 1.0 / self.source.fps if self._pace and self.source.fps > 0 else 0.0
        due = 0.0
        try:
            while not self._stop.is_set():
                try:
                    image = self.source.read()
                except Exception as exc:
                    log.exception("reading %s failed", self.source.description)
                    return f"{self.source.description} failed: {exc}"
                now = time.monotonic()
                if image is None:
                    if self.source.ended:
                        self._set(CameraState.STOPPED, "end of video")
                        return None
                    if now - last_frame > cam.lost_after_s:
                        return f"no frame for {cam.lost_after_s:g} s"
                    self._stop.wait(0.01)
                    continue
                if interval:
                    due = max(due + interval, now - interval) if due else now
                    if due > now and self._stop.wait(due - now):
                        return None
                last_frame = time.monotonic()
                if not self._session_was_live:
                    self._session_was_live = True
                    self._set(CameraState.LIVE)
                frame = Frame(self._next_id, last_frame, time.time(), image)
                self._next_id += 1
                self._rate.tick(last_frame)
                self.buffer.put(frame)
            return None
        finally:
            self.source.close()
