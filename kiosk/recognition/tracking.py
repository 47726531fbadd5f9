"""Tracking faces across frames, and deciding who a tracked face is by voting.

No torch, no Qt: plain numpy/OpenCV, tested on synthetic boxes.

* :class:`Tracker` gives every face a track id. On frames where the detector ran,
  detections are matched to tracks by IoU against each track's *predicted* box
  (last box moved by its centre's velocity), greedily from the best overlap down, so two faces that
  cross keep their ids. On frames in between, :meth:`Tracker.follow` moves each
  track by normalised cross-correlation of its face patch (under 1 ms for 4 faces)
  instead of running the detector. A track not *detected* for ``max_missed``
  processed frames ends (following alone never keeps it alive); camera frames the
  consumer skipped do not count, so a slow machine does not split tracks.
* :class:`IdentityVotes` decides a track's identity from its recent embeddings'
  matches: an identity (a person, or "unknown") is decided when it has
  ``needed`` votes in the last ``window``; a decided identity changes only when
  another one gathers at least ``needed`` votes *and* more than it. One bad frame
  therefore neither flickers the name nor lets a stranger in.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from kiosk.recognition.types import Detection

Box = tuple[float, float, float, float]
TEMPLATE_PX = 24  # side of the grey patch a track is followed with between detections
MIN_FOLLOW_SCORE = 0.5  # normalised cross-correlation below this = the face was not found
MAX_SPEED = 0.5  # most a face's centre is believed to move per frame, in face sizes


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Vote:
    person_id: str | None  # None = unknown
    name: str | None
    distance: float


@dataclass(frozen=True)
class Decision:
    person_id: str | None
    name: str | None
    distance: float  # median distance of the deciding votes
    votes: int

    @property
    def is_match(self) -> bool:
        return self.person_id is not None


class IdentityVotes:
    """Sticky majority voting over a track's most recent matches."""

    def __init__(self, window: int, needed: int) -> None:
        self.needed = min(needed, window)
        self._votes: deque[Vote] = deque(maxlen=window)
        self.decision: Decision | None = None

    def __len__(self) -> int:
        return len(self._votes)

    def add(self, vote: Vote) -> bool:
        """Record a vote; True when it decided the track or changed its decision."""
        self._votes.append(vote)
        counts = Counter(v.person_id for v in self._votes)
        current = self.decision.person_id if self.decision else None
        candidate = vote.person_id
        if counts[candidate] < self.needed:
            return False
        if self.decision is not None:
            if candidate == current:
                self.decision = self._decide(candidate)  # refresh distance, not an event
                return False
            if counts[candidate] <= counts[current]:
                return False
        self.decision = self._decide(candidate)
        return True

    def _decide(self, person_id: str | None) -> Decision:
        votes = [v for v in self._votes if v.person_id == person_id]
        finite = [v.distance for v in votes if np.isfinite(v.distance)]
        distance = statistics.median(finite) if finite else float("inf")
        return Decision(person_id, votes[-1].name, distance, len(votes))


@dataclass
class Track:
    track_id: int
    box: Box
    confidence: float
    first_frame_id: int
    first_captured_at: float
    last_seen: int  # frame id
    detection: Detection | None  # the latest real detection (None once followed)
    detected_at: int  # frame id of that detection
    detected_tick: int = 0  # the tracker's update count at that detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.float32))
    hits: int = 1
    template: np.ndarray | None = None
    votes: IdentityVotes | None = None
    last_embed_frame: int | None = None
    last_embed_size: float = 0.0
    revisions: int = 0

    @property
    def size(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def predicted(self, frame_id: int) -> Box:
        # Only the centre moves: the size stays the last detected one. Extrapolating size
        # changes (noisy from frame to frame) over skipped frames breaks the overlap.
        dx, dy = (float(v) for v in self.velocity * (frame_id - self.last_seen))
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    def moved_to(self, box: Box, frame_id: int) -> None:
        """Update the velocity (px per frame, smoothed, bounded) and the box."""
        steps = max(1, frame_id - self.last_seen)
        old = np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])
        new = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        motion = (new - old) / steps
        limit = MAX_SPEED * max(1.0, self.size)
        motion = np.clip(motion, -limit, limit)
        self.velocity = (0.5 * self.velocity + 0.5 * motion).astype(np.float32)
        self.box = box
        self.last_seen = frame_id


class Tracker:
    """IoU tracking with constant-velocity prediction and patch following in between."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 8) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)
        self.total_tracks = 0
        # Frames the tracker has been given (update or follow). Expiry counts these, not
        # frame ids: a slow consumer skips camera frames, and that must not end tracks.
        self.tick = 0

    def update(
        self,
        detections: Sequence[Detection],
        frame_id: int,
        captured_at: float,
        image: np.ndarray | None = None,
    ) -> tuple[list[Track], list[Track]]:
        """Match this frame's detections; returns (tracks seen now, tracks that ended)."""
        self.tick += 1
        tracks = list(self.tracks.values())
        pairs = sorted(
            (
                (iou(t.predicted(frame_id), d.box), ti, di)
                for ti, t in enumerate(tracks)
                for di, d in enumerate(detections)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_d: set[int] = set()
        seen: list[Track] = []
        for overlap, ti, di in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track = tracks[ti]
            self._observe(track, detections[di], frame_id, image)
            seen.append(track)
        for di, det in enumerate(detections):
            if di not in used_d:
                track = Track(
                    track_id=next(self._ids),
                    box=det.box,
                    confidence=det.probability,
                    first_frame_id=frame_id,
                    first_captured_at=captured_at,
                    last_seen=frame_id,
                    detection=det,
                    detected_at=frame_id,
                    detected_tick=self.tick,
                )
                track.template = _template(image, det.box) if image is not None else None
                self.tracks[track.track_id] = track
                self.total_tracks += 1
                seen.append(track)
        return seen, self._expire()

    def observe(self, track: Track, detection: Detection, frame_id: int, image: np.ndarray) -> None:
        """A track re-found by other means (a region re-detection) on this frame."""
        self._observe(track, detection, frame_id, image)

    def _observe(
        self, track: Track, det: Detection, frame_id: int, image: np.ndarray | None
    ) -> None:
        track.moved_to(det.box, frame_id)
        track.confidence = det.probability
        track.detection = det
        track.detected_at = frame_id
        track.detected_tick = self.tick
        track.hits += 1
        if image is not None:
            track.template = _template(image, det.box)

    def follow(self, image: np.ndarray, frame_id: int) -> tuple[list[Track], list[Track]]:
        """Move every track to where its face patch best matches; no detector run."""
        self.tick += 1
        seen = []
        for track in self.tracks.values():
            if track.template is None:
                continue
            box = _follow(image, track.template, track.predicted(frame_id))
            if box is None:
                continue
            track.moved_to(box, frame_id)
            seen.append(track)
        return seen, self._expire()

    def _expire(self) -> list[Track]:
        # Following alone never keeps a track alive: it must be re-detected in time.
        ended = [t for t in self.tracks.values() if self.tick - t.detected_tick > self.max_missed]
        for t in ended:
            del self.tracks[t.track_id]
        return ended

    def clear(self) -> list[Track]:
        ended = list(self.tracks.values())
        self.tracks.clear()
        return ended


def _crop_scaled(image: np.ndarray, box: Box, scale: float, pad: float) -> tuple[np.ndarray, Box]:
    """Grey crop of ``box`` grown by ``pad`` (fraction of its size), scaled by ``scale``."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    ox, oy = x1 - pad * w, y1 - pad * h
    out_w = max(1, round((w * (1 + 2 * pad)) * scale))
    out_h = max(1, round((h * (1 + 2 * pad)) * scale))
    matrix = np.array([[scale, 0.0, -ox * scale], [0.0, scale, -oy * scale]])
    patch = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_AREA)
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
    return grey, (ox, oy, ox + out_w / scale, oy + out_h / scale)


def _template(image: np.ndarray, box: Box) -> np.ndarray:
    scale = TEMPLATE_PX / max(1.0, min(box[2] - box[0], box[3] - box[1]))
    grey, _ = _crop_scaled(image, box, scale, 0.0)
    return grey


def _follow(image: np.ndarray, template: np.ndarray, predicted: Box) -> Box | None:
    x1, y1, x2, y2 = predicted
    w, h = x2 - x1, y2 - y1
    if w < 2 or h < 2:
        return None
    scale = template.shape[1] / w
    window, (ox, oy, _, _) = _crop_scaled(image, predicted, scale, 0.5)
    if window.shape[0] < template.shape[0] or window.shape[1] < template.shape[1]:
        return None
    scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if best < MIN_FOLLOW_SCORE:
        return None
    nx, ny = ox + bx / scale, oy + by / scale
    return (nx, ny, nx + w, ny + h)
