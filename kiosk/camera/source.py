"""Frame sources behind one small interface: a camera index, a video file or a stream URL.

``open_source(spec, camera_settings)`` reads the ``camera.source`` setting: digits are
a camera index (OpenCV's platform backend), ``rtsp://``/``http(s)://`` a stream URL,
anything else a video file. :class:`ArraySource` serves frames from memory with the
same interface, for tests and benchmarks (a fake behind the real interface).

Sources are not thread-safe: the capture thread owns one. ``read()`` returns an RGB
frame or None when none is available now; ``ended`` tells a finished file apart
from a failing camera.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from kiosk.errors import CameraError
from kiosk.settings import CameraSection

log = logging.getLogger(__name__)

SourceKind = Literal["device", "file", "url", "memory"]
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class FrameSource(Protocol):
    kind: SourceKind
    description: str

    @property
    def fps(self) -> float:
        """Nominal frames per second (0 = unknown)."""
        ...

    @property
    def ended(self) -> bool:
        """True once a finite source (a file without looping) has no more frames."""
        ...

    def open(self) -> None:
        """Connect; raises :class:`CameraError` with a sentence a person can act on."""
        ...

    def read(self) -> np.ndarray | None:
        """The next frame as RGB uint8 (H, W, 3), or None when none is available."""
        ...

    def close(self) -> None: ...


def describe_source(spec: str) -> tuple[SourceKind, str]:
    spec = spec.strip()
    if spec.isdigit():
        return "device", f"camera {int(spec)}"
    if spec.lower().startswith(URL_SCHEMES):
        return "url", _redact(spec)
    return "file", spec


def open_source(spec: str, camera: CameraSection) -> FrameSource:
    """Build (not yet open) the source named by a ``camera.source`` value."""
    kind, _ = describe_source(spec)
    if not spec.strip():
        raise CameraError("no camera source is set: set camera.source to 0, a file or a URL.")
    if kind == "file" and not Path(spec.strip()).expanduser().is_file():
        # Not a passing outage: a wrong path is reported now, not retried forever.
        raise CameraError(f"video file {spec.strip()} does not exist; check camera.source.")
    return OpenCVSource(spec.strip(), kind, camera)


def _redact(url: str) -> str:
    """A URL without its password, for logs and the status bar."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        creds, _, host = rest.partition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"
    return url


class OpenCVSource:
    """A camera, video file or stream read through OpenCV's VideoCapture."""

    def __init__(self, spec: str, kind: SourceKind, camera: CameraSection) -> None:
        self.spec = spec
        self.kind = kind
        self.description = describe_source(spec)[1]
        self._camera = camera
        self._cap: cv2.VideoCapture | None = None
        self._fps = 0.0
        self._ended = False

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def ended(self) -> bool:
        return self._ended

    def open(self) -> None:
        self.close()
        self._ended = False
        cam = self._camera
        timeout_ms = int(cam.lost_after_s * 1000)
        try:
            if self.kind == "device":
                cap = cv2.VideoCapture(int(self.spec))
            elif self.kind == "url":
                cap = cv2.VideoCapture(
                    self.spec,
                    cv2.CAP_FFMPEG,
                    [
                        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                        timeout_ms,
                        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                        timeout_ms,
                    ],
                )
            else:
                path = Path(self.spec).expanduser()
                if not path.is_file():
                    raise CameraError(f"video file {path} does not exist; check camera.source.")
                if not os.access(path, os.R_OK):
                    raise CameraError(f"video file {path} cannot be read (permissions).")
                cap = cv2.VideoCapture(str(path))
        except cv2.error as exc:
            raise CameraError(f"cannot open {self.description}: {exc}") from exc
        if not cap.isOpened():
            cap.release()
            raise CameraError(self._open_failure())
        if self.kind == "device":
            if cam.width and cam.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cam.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cam.height)
            if cam.fps:
                cap.set(cv2.CAP_PROP_FPS, cam.fps)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if 0.0 < fps < 1000.0 else 0.0
        self._cap = cap

    def _open_failure(self) -> str:
        if self.kind == "device":
            return (
                f"{self.description} cannot be opened: it is not connected, is in use by "
                "another program, or this user may not access it (on Linux: the 'video' group)."
            )
        if self.kind == "url":
            return (
                f"stream {self.description} cannot be opened: check the address, the "
                "credentials and that the camera is reachable from this kiosk."
            )
        return f"video file {self.spec} cannot be decoded (not a video, or an unsupported codec)."

    def read(self) -> np.ndarray | None:
        if self._cap is None or self._ended:
            return None
        try:
            ok, bgr = self._cap.read()
            if not ok and self.kind == "file":
                if not self._camera.loop_files:
                    self._ended = True
                    return None
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._cap.read()
        except cv2.error as exc:
            log.warning("reading %s failed: %s", self.description, exc)
            return None
        if not ok or bgr is None:
            return None
        return to_rgb(bgr)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or gray/BGRA) frame as contiguous RGB uint8."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class ArraySource:
    """Frames from memory, behind the :class:`FrameSource` interface (tests, benchmarks).

    ``frames`` is a sequence of RGB images or a callable ``i -> image | None``.
    ``fail_after``/``stall_after`` make it fail (read returns None) or stall (read
    blocks briefly and returns None) after that many frames, to exercise reconnection;
    ``open_failures`` makes the next N ``open()`` calls raise.
    """

    kind: SourceKind = "memory"

    def __init__(
        self,
        frames: Sequence[np.ndarray] | Callable[[int], np.ndarray | None],
        *,
        fps: float = 0.0,
        loop: bool = False,
        fail_after: int | None = None,
        open_failures: int = 0,
        description: str = "test frames",
    ) -> None:
        self._frames = frames
        self._fps = fps
        self.loop = loop
        self.fail_after = fail_after
        self.open_failures = open_failures
        self.description = description
        self.opens = 0
        self.reads = 0
        self._pos = 0
        self._ended = False
        self._open = False

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def ended(self) -> bool:
        return self._ended

    def open(self) -> None:
        self.opens += 1
        if self.open_failures > 0:
            self.open_failures -= 1
            raise CameraError(f"{self.description} cannot be opened (simulated).")
        self._open = True

    def read(self) -> np.ndarray | None:
        if not self._open or self._ended:
            return None
        if self.fail_after is not None and self.reads >= self.fail_after:
            time.sleep(0.005)  # a dead camera does not spin
            return None
        self.reads += 1
        image = self._next()
        if image is None:
            self._ended = True
        return image

    def _next(self) -> np.ndarray | None:
        if callable(self._frames):
            image = self._frames(self._pos)
            self._pos += 1
            return image
        if self._pos >= len(self._frames):
            if not self.loop or not self._frames:
                return None
            self._pos = 0
        image = self._frames[self._pos]
        self._pos += 1
        return image

    def close(self) -> None:
        self._open = False


def probe_source(spec: str, camera: CameraSection) -> tuple[bool, str]:
    """Open the source and read one frame: (ok, what happened), for ``kiosk doctor``.

    Waits at most about ``camera.lost_after_s`` for a stream; never raises.
    """
    try:
        source = open_source(spec, camera)
        source.open()
    except CameraError as exc:
        return False, str(exc)
    try:
        deadline = time.monotonic() + camera.lost_after_s
        while time.monotonic() < deadline:
            frame = source.read()
            if frame is not None:
                h, w = frame.shape[:2]
                rate = f" at {source.fps:g} fps" if source.fps else ""
                return True, f"{source.description}: {w}x{h}{rate}"
            if source.ended:
                break
            time.sleep(0.05)
        return False, f"{source.description} opened but delivered no frame"
    finally:
        source.close()
