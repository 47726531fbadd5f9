"""Plain data types of the recognition core (no torch, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Box = tuple[float, float, float, float]
FaceState = Literal["pending", "known", "unknown", "detection-only"]


@dataclass(frozen=True)
class Detection:
    """One face found by the detector, in the coordinates of the image it was given.

    ``box`` is (x1, y1, x2, y2) in pixels; ``landmarks`` is a (5, 2) float32 array of
    (x, y): left eye, right eye, nose, left mouth corner, right mouth corner, where
    "left" is the image's left (the person's right eye).
    """

    box: tuple[float, float, float, float]
    probability: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The shorter side of the box: what "a 40 px face" means."""
        return min(self.width, self.height)


@dataclass(frozen=True)
class Match:
    """The gallery's answer for one embedding.

    ``distance`` is the L2 distance between unit-norm embeddings to the closest
    enrolled person (``inf`` when the gallery is empty). ``person_id``/``name`` name that
    closest person only when ``is_match``; otherwise the face is unknown.
    """

    person_id: str | None
    name: str | None
    distance: float
    threshold: float
    is_match: bool
    nearest_id: str | None = None  # closest person even when not a match (for diagnostics)


@dataclass(frozen=True)
class FaceResult:
    """A detected face and, when FaceNet is loaded, who it is."""

    detection: Detection
    match: Match | None  # None in detection-only mode


@dataclass(frozen=True)
class VerificationEvent:
    """A tracked face's identity was decided: emitted once per decision by the live worker.

    Attendance and telemetry consume these. ``person_id``/``name`` are set only when
    ``is_match``; ``distance`` is to the decided person (or to the nearest one for an
    unknown face; ``inf`` when the gallery is empty). ``latency_ms`` runs from the
    capture of the frame that decided to the decision; ``ttv_ms`` (time to
    verification) from the capture of the track's first frame. ``wall_time`` is
    ``time.time()`` at the decision (epoch seconds), for records and MLflow timestamps.
    ``revision`` is 0 for a track's first decision and counts later changes of mind.
    """

    track_id: int
    person_id: str | None
    name: str | None
    distance: float
    threshold: float
    is_match: bool
    face_confidence: float
    latency_ms: float
    ttv_ms: float
    frame_id: int
    wall_time: float
    box: tuple[float, float, float, float]
    votes: int
    revision: int = 0


@dataclass(frozen=True)
class PipelineStats:
    """Counters of the live pipeline, for the status bar and telemetry summaries."""

    frames_captured: int = 0
    frames_processed: int = 0
    dropped_frames: int = 0
    capture_fps: float = 0.0
    processing_fps: float = 0.0
    tracks: int = 0
    verifications: int = 0


@dataclass(frozen=True)
class TrackedFace:
    """One face on one frame, for display. ``distance`` is the latest known one."""

    track_id: int
    box: Box
    confidence: float
    state: FaceState
    person_id: str | None = None
    name: str | None = None
    distance: float | None = None


@dataclass(frozen=True)
class FrameResult:
    """What the worker found on one frame. ``detected``: the detector ran on it."""

    frame_id: int
    captured_at: float
    wall_time: float
    size: tuple[int, int]  # (width, height) of the frame the boxes refer to
    faces: tuple[TrackedFace, ...]
    detected: bool
    processing_ms: float
    latency_ms: float  # frame capture -> result ready
    events: tuple[VerificationEvent, ...] = ()
