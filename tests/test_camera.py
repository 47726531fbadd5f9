"""Frame sources, the newest-frame-wins buffer and the capture thread."""

from __future__ import annotations

import dataclasses
import gc
import statistics
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from kiosk.camera.capture import Camera, CameraState, CameraStatus
from kiosk.camera.frames import Frame, LatestFrameBuffer
from kiosk.camera.source import ArraySource, describe_source, open_source
from kiosk.errors import CameraError
from kiosk.settings import CameraSection
from tests.video import scene, write_video

FAST = CameraSection(
    lost_after_s=0.2, reconnect_initial_s=0.02, reconnect_max_s=0.2, max_restarts_per_minute=50
)


def numbered_frames(count: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """Frames whose first pixel carries their index, to check order end to end."""
    frames = []
    for i in range(count):
        frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        frame[0, 0] = (i % 256, i // 256, 7)
        frames.append(frame)
    return frames


def index_of(frame: Frame) -> int:
    return int(frame.image[0, 0, 0]) + 256 * int(frame.image[0, 0, 1])


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[CameraStatus] = []
        self.lock = threading.Lock()

    def __call__(self, status: CameraStatus) -> None:
        with self.lock:
            self.statuses.append(status)

    @property
    def states(self) -> list[CameraState]:
        with self.lock:
            return [s.state for s in self.statuses]


def drain(camera: Camera, timeout: float = 10.0) -> list[Frame]:
    """Take frames as fast as they come until the camera stops by itself."""
    taken = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = camera.buffer.take(timeout=0.05)
        if frame is not None:
            taken.append(frame)
        elif camera.status.state is CameraState.STOPPED:
            break
    return taken


# -- buffer -------------------------------------------------------------------------------


def make_frame(i: int) -> Frame:
    return Frame(i, time.monotonic(), time.time(), np.zeros((2, 2, 3), np.uint8))


def test_buffer_keeps_only_the_newest_frame_and_counts_the_rest() -> None:
    buf = LatestFrameBuffer()
    for i in range(5):
        buf.put(make_frame(i))
    taken = buf.take(timeout=0)
    assert taken is not None and taken.frame_id == 4
    assert buf.dropped == 4
    assert buf.take(timeout=0.01) is None  # nothing newer
    assert buf.peek() is taken  # the display still sees it
    buf.put(make_frame(5))
    assert buf.take(timeout=0) is not None and buf.dropped == 4


def test_buffer_take_wakes_up_on_put_and_on_close() -> None:
    buf = LatestFrameBuffer()
    got: list[Frame | None] = []
    t = threading.Thread(target=lambda: got.append(buf.take(timeout=5)), name="kiosk-test")
    t.start()
    buf.put(make_frame(1))
    t.join(2)
    assert got and got[0] is not None and got[0].frame_id == 1
    t = threading.Thread(target=lambda: got.append(buf.take(timeout=5)), name="kiosk-test")
    t.start()
    buf.close()
    t.join(2)
    assert not t.is_alive() and got[1] is None


# -- sources ------------------------------------------------------------------------------


def test_describe_source_kinds_and_hides_passwords() -> None:
    assert describe_source("0") == ("device", "camera 0")
    assert describe_source("rtsp://admin:secret@10.0.0.5/stream")[1] == (
        "rtsp://admin:***@10.0.0.5/stream"
    )
    assert describe_source("/videos/door.mp4") == ("file", "/videos/door.mp4")


def test_missing_corrupt_and_absent_sources_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        open_source(str(tmp_path / "nope.mp4"), FAST)
    moved = tmp_path / "moved.mp4"
    moved.write_bytes(b"x")
    source = open_source(str(moved), FAST)
    moved.unlink()  # gone by the time the camera (re)opens it
    with pytest.raises(CameraError, match="does not exist"):
        source.open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(CameraError, match="cannot be decoded"):
        open_source(str(junk), FAST).open()
    with pytest.raises(CameraError, match="camera 97 cannot be opened"):
        open_source("97", FAST).open()
    with pytest.raises(CameraError, match="no camera source"):
        open_source("  ", FAST)


def moving_video(tmp_path: Path, astronaut: np.ndarray, count: int, fps: float) -> Path:
    from tests.video import face_patch

    face = face_patch(astronaut, 60)
    frames = [scene((160, 120), [(face, 5 + 3 * i, 20)]) for i in range(count)]
    for i, frame in enumerate(frames):  # stamp the index where JPEG cannot blur it away
        frame[100:120, :] = 0
        frame[100:120, 8 * i : 8 * i + 8] = 255
    return write_video(tmp_path / "walk.avi", frames, fps)


def stamped_index(frame: Frame) -> int:
    row = frame.image[110, :, :].mean(axis=1)
    return int(np.argmax(row > 128)) // 8


def test_video_file_frames_arrive_in_order_paced_at_the_files_rate(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    fps, count = 20.0, 16
    path = moving_video(tmp_path, astronaut, count, fps)
    camera = Camera(open_source(str(path), FAST), FAST)
    camera.start()
    frames = drain(camera)
    assert camera.stop(timeout=2.0)
    assert [f.frame_id for f in frames] == list(range(count))  # a prompt consumer sees all
    assert [stamped_index(f) for f in frames] == list(range(count))  # the file's own order
    assert frames[0].image.shape == (120, 160, 3)
    intervals = np.diff([f.captured_at for f in frames])
    # Paced: never faster than the file's rate (sleep guarantees the lower bound).
    assert frames[-1].captured_at - frames[0].captured_at >= (count - 1) / fps * 0.95
    assert statistics.median(intervals) >= 0.9 / fps
    assert camera.status.state is CameraState.STOPPED
    assert camera.status.message == "end of video"


def test_unpaced_file_runs_as_fast_as_it_decodes(tmp_path: Path, astronaut: np.ndarray) -> None:
    fps, count = 5.0, 12  # paced, this would take over two seconds
    path = moving_video(tmp_path, astronaut, count, fps)
    camera = Camera(open_source(str(path), FAST), FAST, pace=False)
    camera.start()
    assert camera.wait_stopped(timeout=10.0)
    assert camera.frames_captured == count
    assert camera.buffer.put_count == count
    assert camera.stop()


def test_looping_file_restarts_at_the_end(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = moving_video(tmp_path, astronaut, 6, 50.0)
    settings = dataclasses.replace(FAST, loop_files=True)
    camera = Camera(open_source(str(path), settings), settings, pace=False)
    camera.start()
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while len(seen) < 15 and time.monotonic() < deadline:
        frame = camera.buffer.take(timeout=0.5)
        if frame is not None:
            seen.append(stamped_index(frame))
    assert camera.stop()
    assert camera.frames_captured >= 15
    assert camera.status.state is CameraState.STOPPED
    assert camera.status.message == "stopped"
    assert min(seen) == 0 and max(seen) == 5


# -- loss and reconnection ----------------------------------------------------------------


class FlakySource(ArraySource):
    """Delivers 5 frames, stalls (lost), fails to open once, then delivers again."""

    def __init__(self) -> None:
        super().__init__(numbered_frames(1000), description="flaky camera")
        self.session_reads = 0

    def open(self) -> None:
        super().open()
        self.session_reads = 0
        if self.opens == 2:
            self.close()
            raise CameraError("flaky camera cannot be opened (simulated)")

    def read(self) -> np.ndarray | None:
        if self.opens == 1 and self.session_reads >= 5:
            time.sleep(0.01)
            return None  # a camera that stopped sending
        self.session_reads += 1
        return super().read()


def test_a_source_that_fails_mid_stream_reconnects_and_reports_each_state() -> None:
    recorder = Recorder()
    source = FlakySource()
    camera = Camera(source, FAST, on_status=recorder, pace=False)
    camera.start()
    deadline = time.monotonic() + 10
    while camera.frames_captured < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert camera.stop(timeout=2.0)
    S = CameraState
    assert recorder.states == [
        S.CONNECTING,
        S.LIVE,
        S.LOST,  # no frame for lost_after_s
        S.RECONNECTING,
        S.LOST,  # the open failed
        S.RECONNECTING,
        S.LIVE,
        S.STOPPED,
    ]
    lost = [s for s in recorder.statuses if s.state is S.LOST]
    assert "no frame for 0.2 s" in lost[0].message
    assert "cannot be opened" in lost[1].message
    assert lost[0].retry_in_s == pytest.approx(0.02)
    assert lost[1].retry_in_s == pytest.approx(0.04)  # exponential backoff
    assert camera.reconnects == 2
    assert source.opens == 3


def test_restart_storm_guard_waits_the_longest_delay() -> None:
    settings = CameraSection(
        lost_after_s=0.1, reconnect_initial_s=0.01, reconnect_max_s=0.3, max_restarts_per_minute=2
    )
    recorder = Recorder()
    source = ArraySource(numbered_frames(3), open_failures=100, description="dead camera")
    camera = Camera(source, settings, on_status=recorder)
    camera.start()
    deadline = time.monotonic() + 10
    while source.opens < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert camera.stop()
    lost = [s for s in recorder.statuses if s.state is CameraState.LOST]
    assert [s.retry_in_s for s in lost[:3]] == pytest.approx([0.01, 0.02, 0.3])
    assert "restarting too often" in lost[2].message


def test_a_slow_consumer_drops_frames_counted_with_bounded_memory() -> None:
    count = 150
    source = ArraySource(lambda i: np.full((120, 160, 3), i % 256, np.uint8) if i < count else None)
    camera = Camera(source, FAST, pace=False)
    alive: weakref.WeakSet[Frame] = weakref.WeakSet()
    put = camera.buffer.put

    def tracking_put(frame: Frame) -> None:
        alive.add(frame)
        put(frame)

    camera.buffer.put = tracking_put  # type: ignore[method-assign]
    camera.start()
    taken: list[int] = []
    peak_alive = 0
    while True:
        frame = camera.buffer.take(timeout=0.5)
        if frame is None and camera.status.state is CameraState.STOPPED:
            break
        if frame is not None:
            taken.append(frame.frame_id)
            del frame
            time.sleep(0.02)  # a consumer much slower than the source
        gc.collect()
        peak_alive = max(peak_alive, len(alive))
    assert camera.stop()
    buf = camera.buffer
    assert buf.put_count == count
    assert buf.dropped > count / 2  # most frames were dropped, and counted
    assert buf.taken_count + buf.dropped == count  # every frame was taken or counted
    assert taken == sorted(taken)  # newest wins: never back in time
    assert peak_alive <= 3  # the slot, the frame being put, the consumer's: never a backlog


def test_stop_is_prompt_and_joins_the_thread() -> None:
    source = ArraySource(numbered_frames(10), fps=25.0, loop=True)
    camera = Camera(source, FAST, pace=True)
    camera.start()
    assert camera.buffer.take(timeout=2.0) is not None
    start = time.monotonic()
    assert camera.stop(timeout=2.0)
    assert time.monotonic() - start < 2.0
    assert not any(t.name == "kiosk-camera" for t in threading.enumerate())
    assert camera.status.state is CameraState.STOPPED


def test_rate_meter_counts_recent_events_per_second_and_drops_to_zero_when_they_stop() -> None:
    from kiosk.camera.frames import RateMeter

    now = time.monotonic()
    meter = RateMeter(window_s=2.0)
    for t in (now - 5.0, now - 1.0, now - 0.75, now - 0.5, now - 0.25, now):
        meter.tick(t)
    assert meter.rate == pytest.approx(4.0)  # the tick 5 s ago is outside the window
    stale = RateMeter(window_s=2.0)
    stale.tick(now - 10.0)
    stale.tick(now - 9.0)
    assert stale.rate == 0.0
