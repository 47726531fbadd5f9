"""Attendance mode end to end (offscreen Qt): register in the dialog, check in once,
and nobody leaves the fullscreen without the admin PIN."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from kiosk.admin import AdminAuth, AuditLog
from kiosk.camera.frames import Frame
from kiosk.camera.source import ArraySource
from kiosk.recognition.gallery import GalleryStore
from kiosk.settings import AdminSection, AttendanceSection, Settings, TelemetrySection
from kiosk.ui.admin_dialogs import AdminGate, PinDialog
from tests.video import ada_video

pytestmark = pytest.mark.slow
PIN = "2468"


class Keypad:
    """Answers the admin gate's dialogs the way a person would: types ``pin`` and OK."""

    def __init__(self, pin: str) -> None:
        self.pin = pin
        self.asked = 0
        self.refused_locked = 0

    def __call__(self, dialog: QDialog) -> int:
        assert isinstance(dialog, PinDialog), dialog
        self.asked += 1
        if dialog.is_locked():
            self.refused_locked += 1
            return int(QDialog.DialogCode.Rejected)  # the input is disabled: nothing to type
        dialog.edit.setText(self.pin)
        dialog.submit()  # a wrong PIN keeps the dialog open; the person gives up
        return int(dialog.result())


def make_gate(settings: Settings, keypad: Keypad, clock=None) -> AdminGate:
    auth = AdminAuth(settings.admin_file, settings.admin, **({"clock": clock} if clock else {}))
    if not auth.is_set():
        auth.set_pin(PIN)
    audit = AuditLog(settings.audit_log, settings.kiosk.id)
    return AdminGate(auth, audit, settings, dialog_runner=keypad)


def test_register_in_the_dialog_then_attendance_mode_records_once_and_welcomes(
    qtbot,
    ui_settings: Settings,
    make_recognizer,
    astronaut: np.ndarray,
    tmp_path: Path,
) -> None:
    from kiosk.ui.main_window import MainWindow

    settings = dataclasses.replace(ui_settings, attendance=AttendanceSection(cooldown_s=300))
    keypad = Keypad(PIN)
    window = MainWindow(
        settings,
        source=str(ada_video(tmp_path / "ada.avi", astronaut, height=260)),
        recognizer=make_recognizer(settings),  # an empty gallery: nobody is known yet
        gate=make_gate(settings, keypad),
    )
    qtbot.addWidget(window)
    outcomes: list[object] = []
    window.bridge.attendance.connect(outcomes.append)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: window.recognizer is not None, timeout=60_000)

    window.open_registration()  # an admin action: the keypad gives the PIN
    assert keypad.asked == 1
    dialog = window.registration
    qtbot.waitUntil(dialog.can_capture, timeout=30_000)

    # The quality gate refuses a frame without a face (someone stepped away).
    blank = np.full((480, 640, 3), 120, np.uint8)
    live = dialog._latest_frame
    dialog._latest_frame = lambda: Frame(10**9 + dialog._next_shot_id, 0.0, 0.0, blank)
    qtbot.waitUntil(lambda: dialog.quality is not None and dialog.quality.problem == "no_face")
    assert not dialog.can_capture() and not dialog.capture_button.isEnabled()
    dialog._latest_frame = live

    for _ in range(5):
        qtbot.waitUntil(dialog.can_capture, timeout=30_000)
        dialog.capture()
    assert len(dialog.shots) == 5
    qtbot.keyClicks(dialog.name_edit, "Ada Lovelace")
    with qtbot.waitSignal(dialog.saved, timeout=60_000) as saved:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    person = saved.args[0].person
    assert [p.name for p in GalleryStore(settings.gallery.dir).list_people()] == ["Ada Lovelace"]

    window.enter_attendance_mode()
    screen = window.attendance_window
    assert screen is not None and screen.isFullScreen() and not window.isVisible()
    qtbot.waitUntil(lambda: screen.banner_kind == "checked_in", timeout=60_000)
    assert "Welcome, Ada Lovelace" in screen.banner.text()
    # The video loops: Ada keeps being verified, but is recorded once per cooldown.
    qtbot.waitUntil(lambda: len(outcomes) >= 2, timeout=60_000)
    store = window.controller.store
    assert store is not None
    records = [r for r in store.between(None, None) if r.person_id == person.id]
    assert len(records) == 1
    assert records[0].kiosk_id == settings.kiosk.id
    assert records[0].model_fingerprint == window.recognizer.model_fingerprint
    assert {o.kind for o in outcomes[1:]} == {"already"}

    screen.close()  # asks for the PIN; the keypad gives it
    assert window.attendance_window is None and window.isVisible()
    window.close()


def test_leaving_attendance_mode_needs_the_pin_and_locks_after_five_wrong(
    qtbot, settings: Settings, make_recognizer
) -> None:
    from kiosk.ui.main_window import MainWindow

    now = [1_000_000.0]
    settings = dataclasses.replace(
        settings,
        admin=AdminSection(max_attempts=5, lockout_s=30.0, unlock_s=0.0),
        telemetry=TelemetrySection(enabled=False),  # not what this test is about
    )
    keypad = Keypad("9999")  # wrong
    frames = [np.full((240, 320, 3), 90, np.uint8)] * 3
    window = MainWindow(
        settings,
        frame_source=ArraySource(frames, fps=10.0),
        recognizer=make_recognizer(settings),
        gate=make_gate(settings, keypad, clock=lambda: now[0]),
    )
    qtbot.addWidget(window)
    window.show()
    window.start()
    window.enter_attendance_mode()
    screen = window.attendance_window
    assert screen is not None

    qtbot.keyClick(screen, Qt.Key.Key_Escape)  # Esc: wrong PIN, stays
    screen.close()  # Alt+F4 / the window manager: wrong PIN, stays
    assert window.attendance_window is screen and screen.isVisible()
    for _ in range(3):
        screen.close()
    assert keypad.asked == 5 and keypad.refused_locked == 0

    keypad.pin = PIN  # the right PIN, but locked now
    screen.close()
    assert keypad.refused_locked == 1 and window.attendance_window is screen

    now[0] += 30.0  # the lock-out is over
    screen.close()
    assert window.attendance_window is None and window.isVisible()
    audit = AuditLog(settings.audit_log, settings.kiosk.id).read()
    actions = [(a["action"], a["ok"]) for a in audit]
    assert ("attendance.enter", True) in actions and ("attendance.leave", True) in actions
    assert sum(1 for a, ok in actions if a == "admin.unlock" and not ok) >= 6
    window.close()


def test_changing_or_stopping_the_camera_needs_the_pin(
    qtbot, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QInputDialog

    from kiosk.ui.main_window import MainWindow

    keypad = Keypad("9999")  # a passer-by guessing
    window = MainWindow(settings, gate=make_gate(settings, keypad))  # not started
    qtbot.addWidget(window)
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: asked.append(a) or ("", False))
    stopped = []
    monkeypatch.setattr(window.controller, "stop_session", lambda **k: stopped.append(k))
    window.choose_url()
    window.stop_camera()
    assert keypad.asked == 2 and asked == [] and stopped == []
    keypad.pin = PIN
    window.choose_url()
    assert len(asked) == 1  # the right PIN opens the URL prompt
    window.close()
