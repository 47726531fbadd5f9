"""Plain data types of the recognition core (no torch, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
