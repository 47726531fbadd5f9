"""The live recognition worker: newest frame in, tracked and named faces out.

:class:`FrameProcessor` is the per-frame logic (synchronous; the benchmark and the
tests drive it directly). :class:`RecognitionWorker` runs it on a thread named
``kiosk-recognition`` that always takes the newest frame from the camera's
one-slot buffer, so it never works on a backlog.

Doing less work per frame, never skipping people:

* the whole frame is searched for faces every ``pipeline.full_detect_every``
  frames (and on every frame while nobody is tracked), on a copy just large
  enough for a ``recognition.min_face_px`` face to be seen by MTCNN; in between,
  tracked faces are followed by patch correlation (under 1 ms for 4 faces);
* a tracked face the whole-frame search missed is looked for again in a small
  region around it (batched), before it counts as missed;
* a face is embedded when its track appears and on every detection until its
  identity is decided, then only every ``pipeline.reembed_every`` frames or when
  it has grown by a quarter; all faces of a frame are embedded in one batch;
* identity is decided by :class:`~kiosk.recognition.tracking.IdentityVotes`, and
  each decision is one :class:`~kiosk.recognition.types.VerificationEvent`.

Callbacks (``on_result``, ``on_event``, ``on_error``, ``on_ready``) are called on
the worker thread and must return quickly; the UI re-emits them as signals and
never waits on the worker.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from kiosk.camera.frames import Frame, LatestFrameBuffer, RateMeter
from kiosk.errors import KioskError
from kiosk.imaging import load_image
from kiosk.recognition.embedder import FaceEmbedder
from kiosk.recognition.tracking import IdentityVotes, Track, Tracker, Vote, iou
from kiosk.recognition.types import (
    Box,
    Detection,
    FaceState,
    FrameResult,
    PipelineStats,
    TrackedFace,
    VerificationEvent,
)
from kiosk.resources import resource
from kiosk.settings import Settings

if TYPE_CHECKING:
    from kiosk.recognition.recognizer import Recognizer

log = logging.getLogger(__name__)

GROWTH_TO_REEMBED = 1.25  # re-embed a decided face once it is this much larger
MIN_DETECTION_PX = 12  # the smallest face MTCNN's first network can see
# Box sizes measured on a smaller copy or region are a few pixels off: a face measured
# this much below min_face_px is still kept (and a tracked face may shrink a little).
SIZE_TOLERANCE = 0.85


T = TypeVar("T")


def default_torch_threads(setting: int) -> int:
    return setting if setting > 0 else max(1, min(8, os.cpu_count() or 1))


class FrameProcessor:
    """Per-frame detection, tracking, embedding and voting (one thread at a time)."""

    def __init__(
        self,
        recognizer: Recognizer,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recognizer = recognizer
        self.settings = settings
        self._clock = clock
        p = settings.pipeline
        self.tracker = Tracker(p.track_iou, p.track_max_missed)
        self.embedder = _live_embedder(recognizer, settings)
        self._since_full: int | None = None
        self._last_distance: dict[int, float] = {}
        self.frames = 0
        self.verifications = 0
        self.embedded_faces = 0

    def detection_width(self, frame_width: int) -> int:
        """Width of the copy the whole-frame search runs on.

        MTCNN's image pyramid starts where a ``min_face_px`` face measures 12 px, so
        detecting on a copy of exactly that scale costs the same as the full frame but
        skips converting and resizing the full frame on every pyramid level.
        """
        configured = self.settings.pipeline.detection_width
        if configured:
            return min(configured, frame_width)
        min_face = self.settings.recognition.min_face_px
        return min(frame_width, max(64, round(frame_width * MIN_DETECTION_PX / (0.8 * min_face))))

    def warm_up(self) -> None:
        """Run both networks once on the bundled test face.

        The first inference of each network pays for memory allocation and kernel
        selection (seconds on some CPUs); paying it here keeps the first person at
        the door from waiting for it.
        """
        try:
            limits = self.settings.images
            image = load_image(
                resource("selftest_face.jpg"),
                max_pixels=limits.max_pixels,
                max_bytes=limits.max_bytes,
            )
        except (OSError, KioskError) as exc:
            log.warning("no warm-up image: %s", exc)
            return
        detections = self.recognizer.detector.detect(image)
        if detections:
            self.recognizer.detector.detect_regions(image, [detections[0].box])
            if self.embedder is not None:
                self.embedder.embed(self.recognizer.align(image, detections[:1]))

    def reset(self) -> None:
        """Forget every track (e.g. when the source changes)."""
        self.tracker.clear()
        self._since_full = None
        self._last_distance.clear()

    def process(self, frame: Frame) -> FrameResult:
        start = self._clock()
        image = frame.image
        fid = frame.frame_id
        every = self.settings.pipeline.full_detect_every
        full = not self.tracker.tracks or self._since_full is None or self._since_full >= every - 1
        if full:
            detector = self.recognizer.detector
            width = self.detection_width(image.shape[1])
            min_face = self.settings.recognition.min_face_px * SIZE_TOLERANCE
            detections = detector.detect(image, width, min_face)
            seen, ended = self.tracker.update(detections, fid, frame.captured_at, image)
            self._refind_missing(image, fid, seen)
            self._since_full = 0
        else:
            seen, ended = self.tracker.follow(image, fid)
            self._since_full = (self._since_full or 0) + 1
            self._refind_undecided(image, fid, seen)
        for track in ended:
            self._last_distance.pop(track.track_id, None)
        events = self._embed_and_vote(image, frame, [t for t in seen if t.detected_at == fid])
        self.frames += 1
        done = self._clock()
        return FrameResult(
            frame_id=fid,
            captured_at=frame.captured_at,
            wall_time=frame.wall_time,
            size=(frame.width, frame.height),
            faces=tuple(self._face(t) for t in seen),
            detected=full,
            processing_ms=(done - start) * 1000.0,
            latency_ms=(done - frame.captured_at) * 1000.0,
            events=tuple(events),
        )

    def _detect_regions(self, image: np.ndarray, boxes: list[Box]) -> list[Detection | None]:
        min_face = self.settings.recognition.min_face_px * SIZE_TOLERANCE
        return self.recognizer.detector.detect_regions(image, boxes, min_face)

    def _refind_missing(self, image: np.ndarray, fid: int, seen: list[Track]) -> None:
        """Tracks the whole-frame search missed get one sharper look in their region."""
        missing = [t for t in self.tracker.tracks.values() if t.last_seen != fid]
        if not missing:
            return
        found = self._detect_regions(image, [t.predicted(fid) for t in missing])
        taken = [t.box for t in seen]
        for track, det in zip(missing, found, strict=True):
            if det is None or any(_overlaps(det.box, box) for box in taken):
                continue
            self.tracker.observe(track, det, fid, image)
            taken.append(det.box)
            seen.append(track)

    def _refind_undecided(self, image: np.ndarray, fid: int, seen: list[Track]) -> None:
        """Faces still being identified are re-detected in their region on every frame.

        Fresh landmarks let them be embedded now rather than at the next whole-frame
        search, which is what keeps the time to verification short.
        """
        if self.embedder is None:
            return
        pending = [t for t in self.tracker.tracks.values() if _undecided(t)]
        if not pending:
            return
        found = self._detect_regions(image, [t.predicted(fid) for t in pending])
        for track, det in zip(pending, found, strict=True):
            if det is None:
                continue
            self.tracker.observe(track, det, fid, image)
            if track not in seen:
                seen.append(track)

    def _needs_embedding(self, track: Track, fid: int) -> bool:
        if track.votes is None or track.votes.decision is None:
            return True
        if track.last_embed_frame is None:
            return True
        if fid - track.last_embed_frame >= self.settings.pipeline.reembed_every:
            return True
        return track.size >= GROWTH_TO_REEMBED * track.last_embed_size

    def _embed_and_vote(
        self, image: np.ndarray, frame: Frame, fresh: list[Track]
    ) -> list[VerificationEvent]:
        recognizer = self.recognizer
        if self.embedder is None:
            return []
        todo = [
            t for t in fresh if t.detection is not None and self._needs_embedding(t, frame.frame_id)
        ]
        if not todo:
            return []
        faces = recognizer.align(image, [t.detection for t in todo if t.detection is not None])
        vectors = self.embedder.embed(faces)
        index = recognizer.index  # one reference: a reload swaps the whole index
        matches = index.match(vectors)
        self.embedded_faces += len(todo)
        p = self.settings.pipeline
        events = []
        for track, match in zip(todo, matches, strict=True):
            track.last_embed_frame = frame.frame_id
            track.last_embed_size = track.size
            if track.votes is None:
                track.votes = IdentityVotes(p.vote_window, p.votes_to_decide)
            self._last_distance[track.track_id] = match.distance
            vote = Vote(
                match.person_id if match.is_match else None,
                match.name if match.is_match else None,
                match.distance,
            )
            if track.votes.add(vote):
                decision = track.votes.decision
                assert decision is not None
                now = self._clock()
                events.append(
                    VerificationEvent(
                        track_id=track.track_id,
                        person_id=decision.person_id,
                        name=decision.name,
                        distance=decision.distance,
                        threshold=match.threshold,
                        is_match=decision.is_match,
                        face_confidence=track.confidence,
                        latency_ms=(now - frame.captured_at) * 1000.0,
                        ttv_ms=(now - track.first_captured_at) * 1000.0,
                        frame_id=frame.frame_id,
                        wall_time=frame.wall_time + (now - frame.captured_at),
                        box=track.box,
                        votes=decision.votes,
                        revision=track.revisions,
                    )
                )
                track.revisions += 1
        self.verifications += len(events)
        return events

    def _face(self, track: Track) -> TrackedFace:
        if self.embedder is None:
            return TrackedFace(track.track_id, track.box, track.confidence, "detection-only")
        decision = track.votes.decision if track.votes else None
        distance = self._last_distance.get(track.track_id)
        if decision is None:
            return TrackedFace(
                track.track_id, track.box, track.confidence, "pending", None, None, distance
            )
        state: FaceState = "known" if decision.is_match else "unknown"
        return TrackedFace(
            track.track_id,
            track.box,
            track.confidence,
            state,
            decision.person_id,
            decision.name,
            decision.distance,
        )


def _live_embedder(recognizer: Recognizer, settings: Settings) -> FaceEmbedder | None:
    """The recognizer's FaceNet with the live pipeline's own flip-TTA setting."""
    base = recognizer.embedder
    if base is None or base.config.use_tta_flip == settings.pipeline.use_tta_flip:
        return base
    config = dataclasses.replace(base.config, use_tta_flip=settings.pipeline.use_tta_flip)
    return FaceEmbedder(base.model, base.device, config)


def _undecided(track: Track) -> bool:
    return track.votes is None or track.votes.decision is None


def _overlaps(a: Box, b: Box) -> bool:
    return iou(a, b) > 0.5


class RecognitionWorker:
    """Runs a :class:`FrameProcessor` on the newest frames of a buffer, on its own thread.

    ``recognizer`` may be a ready :class:`Recognizer` or a callable that builds one;
    the callable then runs on the worker thread (loading torch and the models takes
    seconds and must not block the caller) and ``on_ready`` fires when it is done.
    """

    def __init__(
        self,
        buffer: LatestFrameBuffer,
        recognizer: Recognizer | Callable[[], Recognizer],
        settings: Settings,
        *,
        on_result: Callable[[FrameResult], None] | None = None,
        on_event: Callable[[VerificationEvent], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_ready: Callable[[Recognizer], None] | None = None,
    ) -> None:
        self.buffer = buffer
        self.settings = settings
        self._recognizer_source = recognizer
        self.processor: FrameProcessor | None = None
        self.on_result = on_result
        self.on_event = on_event
        self.on_error = on_error
        self.on_ready = on_ready
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._reset = threading.Event()
        self._jobs: deque[tuple[Callable[[Recognizer], object], Future[object]]] = deque()
        self._jobs_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rate = RateMeter()
        self.errors = 0
        self.last_error: str | None = None
        self.handled = 0  # frames taken from the buffer and finished (results emitted)

    @property
    def recognizer(self) -> Recognizer | None:
        return self.processor.recognizer if self.processor else None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kiosk-recognition", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop after the frame in hand; True when the thread ended within ``timeout``."""
        self._stop.set()
        if self.join(timeout):
            return True
        log.error("recognition thread did not stop within %.1f s", timeout)
        return False

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a stopped worker's thread to end (a model load cannot be interrupted)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        return True

    def request_reload(self, reset_tracks: bool = False) -> None:
        """Reload the gallery on the worker thread before the next frame (thread-safe).

        ``reset_tracks`` also forgets every track and its decision, so faces in view
        are decided again against the new gallery (after an enrolment: the person
        just registered is recognised at once, not after a change of mind).
        """
        if reset_tracks:
            self._reset.set()
        self._reload.set()

    @property
    def alive(self) -> bool:
        """The worker thread is running (loading models or processing frames)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def submit(self, job: Callable[[Recognizer], T]) -> Future[T]:
        """Run ``job(recognizer)`` on the worker thread between two frames (thread-safe).

        Everything that uses the models (enrolment shots, saving a person) goes
        through here, so the networks and the gallery index are only ever touched by
        one thread. Jobs wait for the models to load; when the worker stops or the
        models fail to load, pending jobs fail with :class:`KioskError`.
        """
        future: Future[T] = Future()
        with self._jobs_lock:
            if self._stop.is_set():
                why = f": {self.last_error}" if self.last_error else ""
                future.set_exception(KioskError(f"recognition is not running{why}"))
            else:
                self._jobs.append((job, future))  # type: ignore[arg-type]
        return future

    def _run_jobs(self, recognizer: Recognizer) -> None:
        while True:
            with self._jobs_lock:
                if not self._jobs:
                    return
                job, future = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job(recognizer))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def _fail_jobs(self, why: str) -> None:
        with self._jobs_lock:
            jobs, self._jobs = list(self._jobs), deque()
        for _job, future in jobs:
            if future.set_running_or_notify_cancel():
                future.set_exception(KioskError(why))

    @property
    def processing_fps(self) -> float:
        return self._rate.rate

    def stats(self) -> PipelineStats:
        proc = self.processor
        return PipelineStats(
            frames_captured=self.buffer.put_count,
            frames_processed=proc.frames if proc else 0,
            dropped_frames=self.buffer.dropped,
            processing_fps=self.processing_fps,
            tracks=proc.tracker.total_tracks if proc else 0,
            verifications=proc.verifications if proc else 0,
        )

    def _report(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("recognition error listener failed")

    def _load(self) -> bool:
        import torch

        torch.set_num_threads(default_torch_threads(self.settings.pipeline.torch_threads))
        source = self._recognizer_source
        try:
            recognizer = source if not callable(source) else source()
            processor = FrameProcessor(recognizer, self.settings)
            processor.warm_up()
        except KioskError as exc:
            self._report(str(exc))
            return False
        except Exception as exc:  # a bug while loading must reach the screen, not vanish
            log.exception("loading the recognizer failed")
            self._report(f"recognition could not start: {exc}")
            return False
        self.processor = processor
        if self._stop.is_set():
            return False  # stopped while loading: nobody is waiting for it any more
        if self.on_ready is not None:
            try:
                self.on_ready(recognizer)
            except Exception:
                log.exception("recognition ready listener failed")
        return True

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._jobs_lock:  # from now on submit() fails at once instead of queueing
                self._stop.set()
            self._fail_jobs(self.last_error or "recognition stopped")

    def _loop(self) -> None:
        if self.processor is None and not self._load():
            return
        processor = self.processor
        assert processor is not None
        while not self._stop.is_set():
            self._run_jobs(processor.recognizer)
            if self._reload.is_set():
                self._reload.clear()
                try:
                    processor.recognizer.reload_gallery()
                except KioskError as exc:
                    self._report(f"gallery reload failed: {exc}")
                if self._reset.is_set():
                    self._reset.clear()
                    processor.reset()
            frame = self.buffer.take(timeout=0.1)
            if frame is None:
                continue
            try:
                result = processor.process(frame)
            except Exception as exc:  # one bad frame must not end recognition
                log.exception("recognition failed on frame %d", frame.frame_id)
                self._report(f"recognition failed on a frame: {exc}")
                self.handled += 1
                self._stop.wait(0.2)
                continue
            self._rate.tick()
            self._emit(result)
            self.handled += 1

    def _emit(self, result: FrameResult) -> None:
        try:
            if self.on_result is not None:
                self.on_result(result)
            if self.on_event is not None:
                for event in result.events:
                    self.on_event(event)
        except Exception:
            log.exception("a recognition listener failed")
