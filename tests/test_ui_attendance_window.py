"""The attendance screen's states, driven directly (no camera, no models): welcome,
already checked in, not recognised, idle after a minute, calm camera message."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from kiosk.attendance.recorder import AttendanceOutcome
from kiosk.attendance.store import CheckIn
from kiosk.camera.capture import CameraState, CameraStatus
from kiosk.camera.frames import Frame
from kiosk.recognition.types import FrameResult, TrackedFace, VerificationEvent
from kiosk.settings import Settings, UiSection, settings_for_data_dir
from kiosk.ui.attendance_mode import AttendanceWindow

BOX = (100.0, 80.0, 200.0, 200.0)


@pytest.fixture
def screen(qtbot, tmp_path: Path):
    now = [1000.0]
    settings: Settings = dataclasses.replace(
        settings_for_data_dir(tmp_path), ui=UiSection(welcome_s=4.0, idle_after_s=60.0)
    )
    frame = Frame(1, 0.0, 0.0, np.full((480, 640, 3), 128, np.uint8))
    window = AttendanceWindow(settings, lambda: frame, clock=lambda: now[0])
    qtbot.addWidget(window)
    window.show()
    return window, now


def event(name: str | None) -> VerificationEvent:
    return VerificationEvent(
        track_id=1,
        person_id="ada-1" if name else None,
        name=name,
        distance=0.4,
        threshold=0.9,
        is_match=name is not None,
        face_confidence=0.99,
        latency_ms=50.0,
        ttv_ms=250.0,
        frame_id=1,
        wall_time=1.7e9,
        box=BOX,
        votes=2,
    )


def check_in(name: str) -> CheckIn:
    t = datetime(2026, 12, 3, 8, 57, tzinfo=UTC)
    return CheckIn(1, "ada-1", name, t, t, 0.4, 0.9, "door", None, None)


def result(faces: int) -> FrameResult:
    face = TrackedFace(1, BOX, 0.99, "known", "ada-1", "Ada", 0.4)
    return FrameResult(1, 0.0, 0.0, (640, 480), (face,) * faces, True, 10.0, 20.0)


def test_welcome_then_already_then_unknown_each_for_a_few_seconds(qtbot, screen) -> None:
    window, now = screen
    window.on_outcome(AttendanceOutcome("checked_in", event("Ada"), check_in("Ada")))
    assert window.banner_kind == "checked_in" and window.card.isVisible()
    assert "Welcome, Ada" in window.banner.text() and "08:57" in window.banner.text()
    assert window.photo.isVisible()  # the face, cut from the newest frame

    window.on_outcome(AttendanceOutcome("already", event("Ada"), check_in("Ada")))
    assert window.banner.text() == "Ada, you already checked in at 08:57"

    window.on_outcome(AttendanceOutcome("unknown", event(None), None))
    assert "Not recognised" in window.banner.text() and not window.photo.isVisible()
    now[0] += 3.9
    window._tick()
    assert window.banner_kind == "unknown"
    now[0] += 0.2
    window._tick()
    assert window.banner_kind is None and not window.card.isVisible()


def test_idle_screen_after_a_minute_without_faces_and_back_when_one_appears(qtbot, screen) -> None:
    window, now = screen
    window.on_result(result(faces=1))
    now[0] += 59.0
    window.on_result(result(faces=0))
    window._tick()
    assert not window.idle_shown
    now[0] += 1.5
    window._tick()
    assert window.idle_shown and "Look at the camera" in window.idle.text()
    window.on_result(result(faces=1))
    assert not window.idle_shown


def test_a_lost_camera_is_a_calm_message_that_clears_when_it_is_back(qtbot, screen) -> None:
    window, _ = screen
    window.on_camera_status(CameraStatus(CameraState.LOST, "camera 0", "unplugged", 2.0))
    assert window.notice is not None and "reconnecting" in window.notice
    assert window.video.placeholder == window.notice
    window.on_camera_status(CameraStatus(CameraState.LIVE, "camera 0"))
    assert window.notice is None and window.video.placeholder == ""


def test_escape_and_closing_only_ask_to_leave(qtbot, screen) -> None:
    from PySide6.QtCore import Qt

    window, _ = screen
    with qtbot.waitSignal(window.exit_requested, timeout=1000):
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    with qtbot.waitSignal(window.exit_requested, timeout=1000):
        window.close()
    assert window.isVisible()
    window.leave()
    assert not window.isVisible()


def test_labels_show_the_distance_only_when_there_is_one() -> None:
    from kiosk.ui.video import face_label

    known = TrackedFace(1, BOX, 0.99, "known", "ada-1", "Ada", 0.412)
    assert face_label(known, show_distance=True) == "Ada  0.41"
    assert face_label(known, show_distance=False) == "Ada"
    empty_gallery = TrackedFace(2, BOX, 0.99, "unknown", distance=float("inf"))
    assert face_label(empty_gallery, show_distance=True) == "unknown"
    assert face_label(TrackedFace(3, BOX, 0.87, "detection-only"), True) == "face 0.87"
    assert face_label(TrackedFace(4, BOX, 0.99, "pending"), True) == "…"


def test_a_saving_problem_is_shown_until_it_is_solved(qtbot, screen) -> None:
    window, _ = screen
    assert not window.problem.isVisible()
    window.set_problem("database or disk is full")
    assert window.problem.isVisible() and "tell reception" in window.problem.text()
    window.set_problem(None)
    assert not window.problem.isVisible()
