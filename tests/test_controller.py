"""The window's engine, headless: model jobs on the recognition thread, source switching,
attendance only while recording, and a dead recognition thread restarted."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kiosk.camera.source import ArraySource
from kiosk.controller import ControllerCallbacks, KioskController
from kiosk.errors import KioskError
from kiosk.recognition import Recognizer
from kiosk.settings import Settings, TelemetrySection
from tests.helpers import wait_until
from tests.video import ada_video, face_patch, scene

pytestmark = pytest.mark.slow


@pytest.fixture
def quiet_settings(ui_settings: Settings) -> Settings:
    return dataclasses.replace(ui_settings, telemetry=TelemetrySection(enabled=False))


def test_jobs_run_on_the_recognition_thread_and_fail_once_it_stopped(
    quiet_settings: Settings, make_recognizer
) -> None:
    frames = [np.full((240, 320, 3), 100, np.uint8)] * 5
    controller = KioskController(
        quiet_settings,
        recognizer=make_recognizer(quiet_settings),
        frame_source=ArraySource(frames, fps=20.0),
    )
    before = controller.submit(lambda rec: rec)
    with pytest.raises(KioskError, match="not running"):
        before.result(timeout=1)
    controller.start()
    assert controller.wait_started(30)
    job = controller.submit(lambda rec: (threading.current_thread().name, rec))
    name, rec = job.result(timeout=30)
    assert name == "kiosk-recognition" and rec is controller.recognizer
    failing = controller.submit(lambda rec: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=30)
    session = controller.session
    assert controller.shutdown(timeout=5)
    late = session.pipeline.submit(lambda rec: rec)  # after stop: fails, never hangs
    with pytest.raises(KioskError):
        late.result(timeout=1)


def test_switching_source_keeps_the_models_and_records_only_while_recording(
    quiet_settings: Settings, make_recognizer, astronaut: np.ndarray, tmp_path: Path
) -> None:
    rec: Recognizer = make_recognizer(quiet_settings)
    rec.enroll("Ada", [("still", scene((640, 480), [(face_patch(astronaut, 170), 220, 155)]))])
    events, outcomes, source_errors = [], [], []
    callbacks = ControllerCallbacks(
        on_event=events.append,
        on_attendance=outcomes.append,
        on_source_error=source_errors.append,
    )
    controller = KioskController(
        quiet_settings, callbacks, source=str(tmp_path / "missing.avi"), recognizer=rec
    )
    controller.start()
    try:
        assert wait_until(lambda: source_errors)
        assert "missing.avi" in source_errors[0] and controller.session is None

        controller.switch_source(str(ada_video(tmp_path / "ada.avi", astronaut)))
        assert wait_until(lambda: any(e.name == "Ada" for e in events))
        assert outcomes == []  # not in attendance mode: nobody is recorded
        assert controller.store is not None and controller.store.count() == 0

        controller.recording.set()
        controller.request_reload(reset_tracks=True)  # Ada is decided again, now recorded
        assert wait_until(lambda: outcomes)
        assert outcomes[0].kind == "checked_in" and outcomes[0].record.name == "Ada"
        assert controller.store.count() == 1
        assert controller.recognizer is rec  # the same loaded models all along
    finally:
        assert controller.shutdown(timeout=5)


def test_a_recognition_thread_that_died_is_restarted_with_backoff(
    quiet_settings: Settings, make_recognizer
) -> None:
    loads = []

    def broken_then_working() -> Recognizer:
        loads.append(time.monotonic())
        if len(loads) == 1:
            raise KioskError("the GPU went away")
        return make_recognizer(quiet_settings)

    errors: list[str] = []
    frames = [np.full((240, 320, 3), 100, np.uint8)] * 200
    controller = KioskController(
        quiet_settings,
        ControllerCallbacks(on_error=errors.append),
        frame_source=ArraySource(frames, fps=20.0),
    )
    controller._load_models = broken_then_working  # type: ignore[method-assign]
    controller.start()
    try:
        assert wait_until(lambda: errors and not controller.session.pipeline.worker.alive)
        assert "the GPU went away" in errors[0]
        orphan = controller.submit(lambda rec: rec)  # e.g. a registration dialog's save
        with pytest.raises(KioskError, match="the GPU went away"):
            orphan.result(timeout=1)  # fails at once; never waits for a thread that is gone
        now = time.monotonic()
        assert not controller.check_health(now)  # schedules the restart
        assert not controller.check_health(now + 1.0)  # not yet: 2 s backoff
        controller._frame_source = ArraySource(frames, fps=20.0)
        assert controller.check_health(now + 2.5)
        assert wait_until(lambda: controller.recognizer is not None)
        assert len(loads) == 2
    finally:
        assert controller.shutdown(timeout=5)


def test_check_ins_that_cannot_be_saved_are_a_problem_until_saving_works_again(
    quiet_settings: Settings,
) -> None:
    from kiosk.errors import AttendanceError
    from tests.test_ui_attendance_window import event

    problems, outcomes = [], []
    controller = KioskController(
        quiet_settings,
        ControllerCallbacks(on_attendance_problem=problems.append, on_attendance=outcomes.append),
    )

    class Recorder:
        disk_full = True

        def handle(self, ev):
            if self.disk_full:
                raise AttendanceError("the disk is full")
            return ("checked_in", ev)

    controller.recorder = Recorder()  # type: ignore[assignment]
    controller._record(event("Ada"))
    assert problems == [] and outcomes == []  # not recording: nothing happens
    controller.recording.set()
    controller._record(event("Ada"))
    assert problems == ["the disk is full"] and controller.attendance_error == "the disk is full"
    Recorder.disk_full = False
    controller._record(event("Ada"))
    assert problems == ["the disk is full", None] and len(outcomes) == 1
    assert controller.attendance_error is None
