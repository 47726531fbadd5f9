"""The live recognition worker on real faces, with the suite's random FaceNet weights.

"Ada" is enrolled from a still of the walking face; the other walker (the same face
with its colour channels reversed, ~0.23 away) is a stranger. Live frames are embedded
without the flip TTA (enrolment uses it) and the video is JPEG-compressed, which puts
Ada's own frames up to ~0.1 from her enrolment: hence THRESHOLD 0.15 here.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kiosk.camera.capture import Camera, CameraState
from kiosk.camera.frames import Frame, LatestFrameBuffer
from kiosk.camera.source import ArraySource, open_source
from kiosk.errors import ModelLoadError
from kiosk.recognition import Recognizer
from kiosk.recognition.types import VerificationEvent
from kiosk.recognition.worker import FrameProcessor, FrameResult, RecognitionWorker
from kiosk.settings import CameraSection, PipelineSection, Settings
from tests.helpers import with_recognition
from tests.video import face_patch, scene, two_people_walking, write_video

pytestmark = pytest.mark.slow
THRESHOLD = 0.15


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        with_recognition(settings, threshold=THRESHOLD),
        pipeline=PipelineSection(torch_threads=2),
    )


@pytest.fixture
def rec(live_settings: Settings, make_recognizer, astronaut: np.ndarray) -> Recognizer:
    recognizer = make_recognizer(live_settings)
    still = scene((640, 480), [(face_patch(astronaut, 150), 200, 100)])
    recognizer.enroll("Ada", [("still", still)])
    return recognizer


def frames_of(images: list[np.ndarray], fps: float = 25.0) -> list[Frame]:
    t0 = time.monotonic()
    return [Frame(i, t0 + i / fps, time.time(), im) for i, im in enumerate(images)]


def test_processor_emits_one_verification_event_per_track(
    rec: Recognizer, live_settings: Settings, astronaut: np.ndarray
) -> None:
    processor = FrameProcessor(rec, live_settings)
    results = [processor.process(f) for f in frames_of(two_people_walking(astronaut, 24))]
    events = [e for r in results for e in r.events]
    faces_per_frame = [len(r.faces) for r in results]
    assert faces_per_frame == [2] * 24  # both walkers on every frame, detected or followed
    assert processor.tracker.total_tracks == 2
    assert sorted(Counter(e.track_id for e in events).values()) == [1, 1]
    ada = next(e for e in events if e.is_match)
    stranger = next(e for e in events if not e.is_match)
    assert (ada.name, ada.person_id) == ("Ada", next(iter(rec.people)))
    assert ada.distance <= THRESHOLD < stranger.distance
    assert stranger.person_id is None and stranger.name is None
    for e in events:
        assert e.votes == live_settings.pipeline.votes_to_decide
        assert e.threshold == THRESHOLD and e.face_confidence > 0.9
        assert 0 < e.latency_ms <= e.ttv_ms
    # Every face on screen carries its track's decision once made.
    last = results[-1].faces
    assert {f.state for f in last} == {"known", "unknown"}
    assert {f.name for f in last} == {"Ada", None}


def test_whole_frame_search_runs_every_n_frames_once_faces_are_tracked(
    rec: Recognizer, live_settings: Settings, astronaut: np.ndarray
) -> None:
    every = 3
    live = dataclasses.replace(live_settings, pipeline=PipelineSection(full_detect_every=every))
    processor = FrameProcessor(rec, live)
    results = [processor.process(f) for f in frames_of(two_people_walking(astronaut, 9))]
    assert [r.detected for r in results] == [True, False, False] * 3
    # Decided faces are not embedded again until reembed_every frames have passed.
    assert processor.embedded_faces <= 2 * live.pipeline.votes_to_decide + 2


def test_detection_only_mode_tracks_faces_without_events(
    live_settings: Settings, shared_models, astronaut: np.ndarray
) -> None:
    detector, _ = shared_models
    rec = Recognizer(live_settings, detector, None, ModelLoadError("no FaceNet weights"))
    processor = FrameProcessor(rec, live_settings)
    results = [processor.process(f) for f in frames_of(two_people_walking(astronaut, 6))]
    assert all(len(r.faces) == 2 for r in results)
    assert all(f.state == "detection-only" for r in results for f in r.faces)
    assert not any(r.events for r in results)


class Collector:
    def __init__(self) -> None:
        self.results: list[FrameResult] = []
        self.events: list[VerificationEvent] = []
        self.threads: set[str] = set()

    def result(self, r: FrameResult) -> None:
        self.threads.add(threading.current_thread().name)
        self.results.append(r)

    def event(self, e: VerificationEvent) -> None:
        self.events.append(e)


def test_worker_on_a_video_file_emits_exactly_one_event_per_track(
    tmp_path: Path, rec: Recognizer, live_settings: Settings, astronaut: np.ndarray
) -> None:
    video = write_video(tmp_path / "door.avi", two_people_walking(astronaut, 30, step=3), 10.0)
    cam_settings = CameraSection(source=str(video))
    camera = Camera(open_source(cam_settings.source, cam_settings), cam_settings)
    got = Collector()
    worker = RecognitionWorker(
        camera.buffer, rec, live_settings, on_result=got.result, on_event=got.event
    )
    worker.start()
    camera.start()
    assert camera.wait_stopped(timeout=60)
    buffer = camera.buffer
    deadline = time.monotonic() + 30  # let the worker finish the last frame it took
    while (buffer.pending or worker.handled < buffer.taken_count) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert buffer.taken_count + buffer.dropped == 30
    start = time.monotonic()
    assert worker.stop(timeout=2.0) and camera.stop(timeout=2.0)
    assert time.monotonic() - start < 2.0
    assert camera.status.state is CameraState.STOPPED
    assert got.threads == {"kiosk-recognition"}
    ids = [r.frame_id for r in got.results]
    assert ids == sorted(set(ids)) and len(ids) >= 10
    tracks = {f.track_id for r in got.results for f in r.faces}
    assert len(tracks) == 2
    assert Counter(e.track_id for e in got.events) == {t: 1 for t in tracks}
    assert sorted(e.name or "?" for e in got.events) == ["?", "Ada"]
    stats = worker.stats()
    assert stats.frames_processed == len(got.results)
    assert stats.frames_captured == 30 and stats.verifications == 2
    assert stats.dropped_frames == camera.buffer.dropped


def test_worker_loads_the_recognizer_on_its_thread_and_reports_failures(
    live_settings: Settings, rec: Recognizer
) -> None:
    ready: list[str] = []
    errors: list[str] = []
    buffer = LatestFrameBuffer()

    def build() -> Recognizer:
        ready.append(threading.current_thread().name)
        return rec

    worker = RecognitionWorker(buffer, build, live_settings, on_error=errors.append)
    worker.on_ready = lambda r: ready.append("ready")
    worker.start()
    deadline = time.monotonic() + 10
    while len(ready) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop()
    assert ready == ["kiosk-recognition", "ready"] and not errors
    assert worker.recognizer is rec

    def broken() -> Recognizer:
        raise ModelLoadError("FaceNet weights are corrupt")

    failing = RecognitionWorker(buffer, broken, live_settings, on_error=errors.append)
    failing.start()
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert failing.stop()
    assert errors == ["FaceNet weights are corrupt"]
    assert failing.recognizer is None


def test_gallery_reload_runs_on_the_worker_thread_and_stop_is_prompt(
    live_settings: Settings, rec: Recognizer, astronaut: np.ndarray, monkeypatch
) -> None:
    reloaded: list[str] = []
    monkeypatch.setattr(
        rec, "reload_gallery", lambda: reloaded.append(threading.current_thread().name)
    )
    source = ArraySource(two_people_walking(astronaut, 4), fps=25.0, loop=True)
    camera = Camera(source, CameraSection(), pace=True)
    worker = RecognitionWorker(camera.buffer, rec, live_settings)
    camera.start()
    worker.start()
    worker.request_reload()
    deadline = time.monotonic() + 10
    while (not reloaded or worker.stats().frames_processed < 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    assert camera.stop(timeout=2.0) and worker.stop(timeout=2.0)
    assert time.monotonic() - start < 2.0
    assert reloaded == ["kiosk-recognition"]
    alive = {t.name for t in threading.enumerate()}
    assert not alive & {"kiosk-camera", "kiosk-recognition"}
