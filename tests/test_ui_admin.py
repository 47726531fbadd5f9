"""The admin PIN in the window: PinDialog, SetPinDialog and AdminGate (offscreen Qt)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog, QMessageBox

from kiosk.admin import AdminAuth, AuditLog, format_remaining
from kiosk.settings import AdminSection, settings_for_data_dir
from kiosk.ui.admin_dialogs import AdminGate, PinDialog, SetPinDialog

CFG = AdminSection(max_attempts=3, lockout_s=30.0, lockout_max_s=600.0, unlock_s=60.0)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def wall() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def auth(tmp_path: Path, wall: Clock) -> AdminAuth:
    a = AdminAuth(tmp_path / "admin.json", CFG, wall)
    a.set_pin("2580")
    return a


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl", "north")


def test_format_remaining() -> None:
    assert format_remaining(27.2) == "28 s"
    assert format_remaining(-3) == "0 s"
    assert format_remaining(725) == "12:05 min"


def test_pin_dialog_wrong_then_right(qtbot, auth: AdminAuth) -> None:
    dialog = PinDialog(auth, "export attendance")
    qtbot.addWidget(dialog)
    dialog.show()
    attempts: list[tuple[bool, str]] = []
    dialog.attempted.connect(lambda ok, detail: attempts.append((ok, detail)))
    assert dialog.edit.echoMode() == dialog.edit.EchoMode.Password
    qtbot.keyClicks(dialog.edit, "1111")
    dialog.submit()
    assert dialog.message.text() == "Wrong PIN, 2 tries left"
    assert dialog.edit.text() == "" and dialog.isVisible()
    assert dialog.result() != QDialog.DialogCode.Accepted
    qtbot.keyClicks(dialog.edit, "2580")
    dialog.submit()
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.isVisible()
    assert attempts == [(False, "wrong PIN, 2 tries left"), (True, "right PIN")]


def test_pin_dialog_locked_countdown(qtbot, auth: AdminAuth, wall: Clock) -> None:
    dialog = PinDialog(auth, "leave attendance mode")
    qtbot.addWidget(dialog)
    dialog.show()
    for _ in range(3):
        dialog.edit.setText("1111")
        dialog.submit()
    assert dialog.is_locked()
    assert dialog.message.text() == "Locked for 30 s after 3 wrong PINs."
    assert not dialog.edit.isEnabled() and not dialog.ok_button.isEnabled()
    dialog.edit.setText("2580")
    dialog.submit()  # ignored while locked, even the right PIN
    assert dialog.result() != QDialog.DialogCode.Accepted
    wall.t += 2.5
    qtbot.waitUntil(lambda: dialog.message.text() == "Locked for 28 s after 3 wrong PINs.")
    wall.t += 28
    qtbot.waitUntil(lambda: dialog.edit.isEnabled(), timeout=3000)  # the 1 s timer unlocks
    assert dialog.message.text() == "You can try again now." and not dialog.is_locked()
    dialog.edit.setText("2580")
    dialog.submit()
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_pin_dialog_opens_locked(qtbot, auth: AdminAuth) -> None:
    for _ in range(3):
        with pytest.raises(Exception, match="wrong PIN"):
            auth.verify("1111")
    dialog = PinDialog(auth, "open settings")
    qtbot.addWidget(dialog)
    assert dialog.is_locked() and "Locked for 30 s" in dialog.message.text()


def test_set_pin_dialog_rules_inline(qtbot, tmp_path: Path) -> None:
    auth = AdminAuth(tmp_path / "admin.json", CFG)
    dialog = SetPinDialog(auth)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.changing and not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.pin, "1234")
    assert "consecutive digits" in dialog.problem.text() and not dialog.ok_button.isEnabled()
    dialog.pin.setText("2580")
    dialog.repeat.setText("2581")
    assert dialog.problem.text() == "The two PINs differ." and not dialog.ok_button.isEnabled()
    dialog.repeat.setText("2580")
    assert dialog.problem.text() == "" and dialog.ok_button.isEnabled()
    dialog.submit()
    assert dialog.result() == QDialog.DialogCode.Accepted
    auth.verify("2580")


def test_set_pin_dialog_changing_needs_current(qtbot, auth: AdminAuth) -> None:
    dialog = SetPinDialog(auth)
    qtbot.addWidget(dialog)
    assert dialog.changing
    dialog.pin.setText("4826")
    dialog.repeat.setText("4826")
    assert not dialog.ok_button.isEnabled()  # current PIN still empty
    dialog.current.setText("1111")
    dialog.submit()
    assert dialog.problem.text() == "Wrong PIN, 2 tries left"
    assert dialog.result() != QDialog.DialogCode.Accepted
    dialog.current.setText("2580")
    dialog.submit()
    assert dialog.result() == QDialog.DialogCode.Accepted
    auth.verify("4826")


class Runner:
    """A dialog_runner that answers each dialog with a scripted function."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.seen: list[QDialog] = []

    def __call__(self, dialog: QDialog) -> int:
        self.seen.append(dialog)
        answer = self.answers.pop(0)
        answer(dialog)
        return int(dialog.result())


def type_pin(*pins: str):
    """Type each PIN in turn into the same dialog (a wrong PIN leaves it open)."""

    def answer(dialog: QDialog) -> None:
        assert isinstance(dialog, PinDialog)
        for pin in pins:
            dialog.edit.setText(pin)
            dialog.submit()

    return answer


def cancel(dialog: QDialog) -> None:
    dialog.reject()


def make_gate(auth: AdminAuth, audit: AuditLog, tmp_path: Path, runner, mono: Clock) -> AdminGate:
    settings = settings_for_data_dir(tmp_path / "data", admin=CFG)
    return AdminGate(auth, audit, settings, clock=mono, dialog_runner=runner)


def test_gate_unlock_window(qtbot, auth: AdminAuth, audit: AuditLog, tmp_path: Path) -> None:
    mono = Clock(100.0)
    runner = Runner(type_pin("1111", "2580"))  # a wrong try is not the last word
    gate = make_gate(auth, audit, tmp_path, runner, mono)
    with qtbot.waitSignal(gate.unlocked_changed) as sig:
        assert gate.require(None, "export attendance")
    assert sig.args == [True]
    assert gate.is_unlocked()
    mono.t += 59
    assert gate.require(None, "open settings")  # inside unlock_s: no dialog
    assert len(runner.seen) == 1
    mono.t += 2
    runner.answers.append(cancel)
    assert not gate.require(None, "open settings")  # window over: asked, cancelled
    assert len(runner.seen) == 2
    runner.answers.append(type_pin("2580"))
    assert gate.require(None, "open settings")
    with qtbot.waitSignal(gate.unlocked_changed) as sig:
        gate.lock()
    assert sig.args == [False] and not gate.is_unlocked()
    runner.answers.append(cancel)
    assert not gate.require(None, "leave attendance mode")  # lock() forgot the unlock

    entries = audit.read()
    assert [(e["action"], e["ok"], e["detail"]) for e in entries] == [
        ("admin.unlock", False, "export attendance: wrong PIN, 2 tries left"),
        ("admin.unlock", True, "export attendance: right PIN"),
        ("admin.unlock", True, "open settings: still unlocked"),
        ("admin.unlock", False, "open settings: cancelled"),
        ("admin.unlock", True, "open settings: right PIN"),
        ("admin.lock", True, "locked"),
        ("admin.unlock", False, "leave attendance mode: cancelled"),
    ]
    assert all(e["kiosk_id"] == "north" for e in entries)


def test_gate_unlock_s_zero_always_asks(
    qtbot, auth: AdminAuth, audit: AuditLog, tmp_path: Path
) -> None:
    settings = settings_for_data_dir(
        tmp_path / "data", admin=AdminSection(max_attempts=3, unlock_s=0.0)
    )
    runner = Runner(type_pin("2580"), type_pin("2580"))
    gate = AdminGate(auth, audit, settings, clock=Clock(5.0), dialog_runner=runner)
    assert gate.require(None, "a") and gate.require(None, "b")
    assert len(runner.seen) == 2


def test_gate_first_use_sets_the_pin(qtbot, tmp_path: Path, audit: AuditLog, wall: Clock) -> None:
    auth = AdminAuth(tmp_path / "new" / "admin.json", CFG, wall)

    def set_pin(dialog: QDialog) -> None:
        assert isinstance(dialog, SetPinDialog) and not dialog.changing
        dialog.pin.setText("7391")
        dialog.repeat.setText("7391")
        dialog.submit()

    runner = Runner(set_pin)
    gate = make_gate(auth, audit, tmp_path, runner, Clock(0.0))
    assert gate.require(None, "enter attendance mode")
    assert auth.is_set() and gate.is_unlocked()
    auth.verify("7391")
    assert audit.read()[-1]["action"] == "admin.set_pin" and audit.read()[-1]["ok"]


def test_gate_first_use_cancelled(qtbot, tmp_path: Path, audit: AuditLog) -> None:
    auth = AdminAuth(tmp_path / "admin.json", CFG)
    gate = make_gate(auth, audit, tmp_path, Runner(cancel), Clock(0.0))
    assert not gate.require(None, "enter attendance mode")
    assert not auth.is_set()
    last = audit.read()[-1]
    assert (last["action"], last["ok"], last["detail"]) == ("admin.set_pin", False, "cancelled")


def test_gate_corrupt_pin_file_shows_the_fix(
    qtbot, auth: AdminAuth, audit: AuditLog, tmp_path: Path
) -> None:
    auth.path.write_text("{broken")
    shown: list[str] = []

    def box(dialog: QDialog) -> None:
        assert isinstance(dialog, QMessageBox)
        shown.append(dialog.text())

    gate = make_gate(auth, audit, tmp_path, Runner(box), Clock(0.0))
    assert not gate.require(None, "open settings")
    assert "remove that file" in shown[0] and str(auth.path) in shown[0]


def test_gate_real_exec_answered_by_timer(
    qtbot, auth: AdminAuth, audit: AuditLog, tmp_path: Path
) -> None:
    """The default runner (QDialog.exec) really blocks until the dialog is answered."""
    settings = settings_for_data_dir(tmp_path / "data", admin=CFG)
    gate = AdminGate(auth, audit, settings, clock=Clock(0.0))
    answered: list[bool] = []

    def answer() -> None:
        from PySide6.QtWidgets import QApplication

        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, PinDialog)
        dialog.edit.setText("2580")
        dialog.submit()
        answered.append(True)

    QTimer.singleShot(50, answer)
    assert gate.require(None, "export attendance")
    assert answered == [True]


def test_gate_refuses_a_second_request_while_asking(
    qtbot, auth: AdminAuth, audit: AuditLog, tmp_path: Path
) -> None:
    nested: list[bool] = []
    gate: AdminGate

    def answer(dialog: QDialog) -> None:
        nested.append(gate.require(None, "leave attendance mode"))  # Esc pressed again
        type_pin("2580")(dialog)

    gate = make_gate(auth, audit, tmp_path, Runner(answer), Clock(0.0))
    assert gate.require(None, "leave attendance mode")
    assert nested == [False]
    assert "a PIN dialog is open" in audit.read()[0]["detail"]
