"""The admin PIN in the window: the gate every admin action goes through, and its dialogs.

:class:`AdminGate` is the one place that decides whether an admin action may go
ahead: it asks for the PIN (or, on first use, to set one), remembers a right PIN
for ``admin.unlock_s`` so an admin doing several things is not asked each time,
and writes every request, refusal and lock to the audit log. The checking itself
(hash, lock-out) is :class:`kiosk.admin.AdminAuth`; the dialogs only show it.

Modal dialogs are run through ``dialog_runner`` (default ``QDialog.exec``) so tests
can drive them without a nested event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from kiosk.admin import PIN_MAX, AdminAuth, AuditLog, format_remaining, pin_problem
from kiosk.errors import AdminAuthError, AdminLockedError
from kiosk.settings import Settings

log = logging.getLogger(__name__)

DialogRunner = Callable[[QDialog], int]


def _run_modal(dialog: QDialog) -> int:
    return int(dialog.exec())


def _sentence(text: str) -> str:
    """The core's messages are lower-case clauses; a label shows a sentence."""
    return text[:1].upper() + text[1:]


def _pin_edit(placeholder: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setMaxLength(PIN_MAX)
    edit.setPlaceholderText(placeholder)
    return edit


class PinDialog(QDialog):
    """Asks for the admin PIN; accepts only the right one.

    A wrong PIN keeps the dialog open with "wrong PIN, N tries left". While locked
    out, the input is disabled and a countdown runs (re-read from the PIN file every
    second, so a lock-out started elsewhere shows too). ``attempted(ok, detail)`` is
    emitted for every PIN tried, for the audit log.
    """

    attempted = Signal(bool, str)

    def __init__(self, auth: AdminAuth, action: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._auth = auth
        self._locked = False
        self.setWindowTitle("Admin PIN")
        self.setModal(True)
        self.prompt = QLabel(f"Enter the admin PIN to {action}.")
        self.prompt.setWordWrap(True)
        self.edit = _pin_edit("PIN")
        self.message = QLabel()
        self.message.setObjectName("pinMessage")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.prompt, self.edit, self.message, self.buttons):
            layout.addWidget(widget)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.refresh_lock)
        self.refresh_lock()

    @property
    def ok_button(self) -> QWidget:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def is_locked(self) -> bool:
        return self._locked

    def submit(self) -> None:
        """Check the PIN typed (the OK button and Enter)."""
        if self._locked:
            return
        pin = self.edit.text()
        self.edit.clear()
        try:
            self._auth.verify(pin)
        except AdminLockedError as exc:
            self.attempted.emit(False, str(exc))
            self.refresh_lock()
        except AdminAuthError as exc:
            self.attempted.emit(False, str(exc))
            self._show(_sentence(str(exc)), error=True)
            self.edit.setFocus()
        else:
            self.attempted.emit(True, "right PIN")
            self.accept()

    def refresh_lock(self) -> None:
        """Show the lock-out countdown, or re-enable the input once it is over."""
        try:
            until = self._auth.locked_until()
        except AdminAuthError as exc:  # corrupt PIN file: nothing to type into
            self._set_input(False)
            self._timer.stop()
            self._show(str(exc), error=True)
            return
        if until is None:
            self._timer.stop()
            if self._locked:
                self._show("You can try again now.", error=False)
            self._locked = False
            self._set_input(True)
            return
        self._locked = True
        self._set_input(False)
        remaining = format_remaining(until - self._auth.clock())
        attempts = self._auth.settings.max_attempts
        self._show(f"Locked for {remaining} after {attempts} wrong PINs.", error=True)
        if not self._timer.isActive():
            self._timer.start()

    def _set_input(self, enabled: bool) -> None:
        self.edit.setEnabled(enabled)
        self.ok_button.setEnabled(enabled)
        if enabled:
            self.edit.setFocus()

    def _show(self, text: str, *, error: bool) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #b00020;" if error else "")


class SetPinDialog(QDialog):
    """Sets the admin PIN: typed twice, rules checked as you type.

    When a PIN is already set it asks for the current one too (changing the PIN),
    and a wrong current PIN counts toward the lock-out like any other.
    """

    def __init__(self, auth: AdminAuth, parent: QWidget | None = None, *, intro: str = "") -> None:
        super().__init__(parent)
        self._auth = auth
        self.changing = auth.is_set()
        self.setWindowTitle("Change the admin PIN" if self.changing else "Set the admin PIN")
        self.setModal(True)
        self.intro = QLabel(
            intro
            or "The admin PIN protects settings, enrolment, exports and leaving attendance "
            "mode. Use 4 to 64 characters: digits, or a password."
        )
        self.intro.setWordWrap(True)
        self.current = _pin_edit("current PIN")
        self.pin = _pin_edit("new PIN")
        self.repeat = _pin_edit("the same PIN again")
        self.problem = QLabel()
        self.problem.setObjectName("pinProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        if self.changing:
            form.addRow("Current PIN", self.current)
        form.addRow("New PIN", self.pin)
        form.addRow("Repeat", self.repeat)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        for edit in (self.current, self.pin, self.repeat):
            edit.textChanged.connect(self.validate)
        self.validate()

    @property
    def ok_button(self) -> QWidget:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def _problem(self) -> str | None:
        pin, repeat = self.pin.text(), self.repeat.text()
        if not pin:
            return None if not repeat else "Type the new PIN first."
        problem = pin_problem(pin)
        if problem:
            return _sentence(problem) + "."
        if repeat and repeat != pin:
            return "The two PINs differ."
        return None

    def validate(self) -> bool:
        """Show the first rule the typed PIN breaks; OK only when it can be saved."""
        problem = self._problem()
        self.problem.setText(problem or "")
        ready = (
            problem is None
            and bool(self.pin.text())
            and self.pin.text() == self.repeat.text()
            and (not self.changing or bool(self.current.text()))
        )
        self.ok_button.setEnabled(ready)
        return ready

    def submit(self) -> None:
        if not self.validate():
            return
        try:
            self._auth.set_pin(
                self.pin.text(), current=self.current.text() if self.changing else None
            )
        except AdminAuthError as exc:
            self.current.clear()
            self.problem.setText(_sentence(str(exc)))
            return
        self.accept()


class AdminGate(QObject):
    """Decides whether an admin action may go ahead; see the module docstring.

    ``clock`` is monotonic (the unlock window must not stretch when the wall clock
    is changed); the lock-out, which survives restarts, uses wall time in
    :class:`AdminAuth`.
    """

    unlocked_changed = Signal(bool)

    def __init__(
        self,
        auth: AdminAuth,
        audit: AuditLog,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
        *,
        dialog_runner: DialogRunner | None = None,
    ) -> None:
        super().__init__(parent)
        self.auth = auth
        self.audit = audit
        self._unlock_s = settings.admin.unlock_s
        self._clock = clock
        self._run = dialog_runner or _run_modal
        self._unlocked_at: float | None = None
        self._asking = False
        # Tells listeners (a padlock in the status bar) when the window runs out.
        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.timeout.connect(self._check_expired)

    def is_unlocked(self) -> bool:
        if self._unlocked_at is None:
            return False
        return self._clock() - self._unlocked_at < self._unlock_s

    def require(self, parent: QWidget | None, action: str) -> bool:
        """True when the admin may do ``action`` now (asking for the PIN if needed).

        A request made while a PIN dialog is already open (Esc pressed twice in
        attendance mode, a timer firing) is refused at once instead of stacking a
        second dialog on the first.
        """
        if self._asking:
            self.audit.write("admin.unlock", ok=False, detail=f"{action}: a PIN dialog is open")
            return False
        self._asking = True
        try:
            return self._require(parent, action)
        finally:
            self._asking = False

    def _require(self, parent: QWidget | None, action: str) -> bool:
        try:
            is_set = self.auth.is_set()
        except AdminAuthError as exc:
            self.audit.write("admin.unlock", ok=False, detail=f"{action}: {exc}")
            self._error(parent, str(exc))
            return False
        if not is_set:
            return self._first_pin(parent, action)
        if self.is_unlocked():
            self.audit.write("admin.unlock", ok=True, detail=f"{action}: still unlocked")
            return True
        dialog = PinDialog(self.auth, action, parent)
        if dialog.is_locked():
            self.audit.write("admin.unlock", ok=False, detail=f"{action}: {dialog.message.text()}")
        dialog.attempted.connect(
            lambda ok, detail: self.audit.write("admin.unlock", ok=ok, detail=f"{action}: {detail}")
        )
        try:
            accepted = self._run(dialog) == QDialog.DialogCode.Accepted
        finally:
            dialog.deleteLater()
        if not accepted:
            self.audit.write("admin.unlock", ok=False, detail=f"{action}: cancelled")
            return False
        self._mark_unlocked()
        return True

    def ensure_pin_set(self, parent: QWidget | None) -> bool:
        """True when an admin PIN exists; on first run, asks for one to be set.

        Attendance mode is entered only after this: without a PIN nobody could leave it.
        """
        try:
            if self.auth.is_set():
                return True
        except AdminAuthError as exc:
            self._error(parent, str(exc))
            return False
        return self._first_pin(parent, "run the kiosk and leave attendance mode")

    def change_pin(self, parent: QWidget | None) -> bool:
        """Let the admin change the PIN (the current one is asked for in the dialog)."""
        dialog = SetPinDialog(self.auth, parent)
        try:
            ok = self._run(dialog) == QDialog.DialogCode.Accepted
        finally:
            dialog.deleteLater()
        self.audit.write("admin.change_pin", ok=ok, detail="" if ok else "cancelled")
        return ok

    def lock(self) -> None:
        """Forget the unlock: the next admin action asks for the PIN again."""
        was = self._unlocked_at is not None
        self._unlocked_at = None
        self._expiry.stop()
        self.audit.write("admin.lock", detail="locked")
        if was:
            self.unlocked_changed.emit(False)

    def _first_pin(self, parent: QWidget | None, action: str) -> bool:
        dialog = SetPinDialog(
            self.auth,
            parent,
            intro=f"No admin PIN is set yet. Set one now to {action}; it protects every "
            "admin action from then on. Use 4 to 64 characters: digits, or a password.",
        )
        try:
            ok = self._run(dialog) == QDialog.DialogCode.Accepted
        finally:
            dialog.deleteLater()
        self.audit.write(
            "admin.set_pin", ok=ok, detail=f"first PIN, for: {action}" if ok else "cancelled"
        )
        if ok:
            self._mark_unlocked()  # whoever just chose the PIN is the admin
        return ok

    def _mark_unlocked(self) -> None:
        was = self.is_unlocked()
        self._unlocked_at = self._clock()
        if self._unlock_s > 0:
            self._expiry.start(int(self._unlock_s * 1000) + 50)
            if not was:
                self.unlocked_changed.emit(True)

    def _check_expired(self) -> None:
        if self._unlocked_at is not None and not self.is_unlocked():
            self._unlocked_at = None
            self.unlocked_changed.emit(False)

    def _error(self, parent: QWidget | None, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, "Admin PIN", text, parent=parent)
        box.setTextFormat(Qt.TextFormat.PlainText)
        try:
            self._run(box)
        finally:
            box.deleteLater()
