"""Frames and the one-slot "newest frame wins" buffer between capture and its consumers.

The capture thread ``put``s every frame; the recognition worker ``take``s the newest
one it has not seen yet, so it always works on the present and never on a backlog.
A frame overwritten before anyone took it is *dropped* and counted. The display
``peek``s at the newest frame at its own rate without consuming it. Memory is
bounded by construction: the buffer holds one frame.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image. ``image`` is RGB uint8 (H, W, 3).

    ``frame_id`` increases by one per captured frame (gaps at the consumer are drops);
    ``captured_at`` is ``time.monotonic()`` when the frame arrived, the clock every
    latency is measured against; ``wall_time`` is ``time.time()`` for records.
    """

    frame_id: int
    captured_at: float
    wall_time: float
    image: np.ndarray

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


class LatestFrameBuffer:
    """A thread-safe single slot: ``put`` overwrites, ``take`` waits for a newer frame."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken = True
        self._closed = False
        self.put_count = 0
        self.taken_count = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if not self._taken:
                self.dropped += 1
            self._frame = frame
            self._taken = False
            self.put_count += 1
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; waits up to ``timeout`` s. None on timeout/close."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._taken or self._closed, timeout):
                return None
            if self._taken:  # closed with nothing new
                return None
            self._taken = True
            self.taken_count += 1
            return self._frame

    def peek(self) -> Frame | None:
        """The newest frame, taken or not (for display); never waits."""
        with self._cond:
            return self._frame

    def close(self) -> None:
        """Wake every waiting ``take`` (they return None once nothing new is left)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    @property
    def pending(self) -> bool:
        """A frame is waiting that nobody has taken yet."""
        with self._cond:
            return not self._taken


class RateMeter:
    """Events per second over the last ``window_s`` seconds (0 once they stop coming)."""

    def __init__(self, window_s: float = 2.0, keep: int = 64) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=keep)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    @property
    def rate(self) -> float:
        times = list(self._times)
        if len(times) < 2 or time.monotonic() - times[-1] > self.window_s:
            return 0.0
        recent = [t for t in times if times[-1] - t <= self.window_s]
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0
