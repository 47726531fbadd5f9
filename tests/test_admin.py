"""The admin PIN (hash, lock-out, persistence) and the audit log."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from kiosk.admin import AdminAuth, AuditLog, pin_problem
from kiosk.errors import AdminAuthError, AdminLockedError
from kiosk.settings import AdminSection

CFG = AdminSection(max_attempts=5, lockout_s=30.0, lockout_max_s=100.0, unlock_s=60.0)


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: Path, clock: Clock) -> AdminAuth:
    a = AdminAuth(tmp_path / "data" / "admin.json", CFG, clock)
    a.set_pin("2580")
    return a


def fail(auth: AdminAuth, times: int) -> None:
    for _ in range(times):
        with pytest.raises(AdminAuthError):
            auth.verify("9999")


def test_stored_as_salted_hash_only(tmp_path: Path, clock: Clock) -> None:
    a = AdminAuth(tmp_path / "admin.json", CFG, clock)
    assert not a.is_set()
    a.set_pin("2580")
    assert a.is_set()
    text = a.path.read_text()
    assert "2580" not in text
    data = json.loads(text)
    assert (data["kdf"], data["n"], data["r"], data["p"]) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(data["salt"])) == 16
    assert stat.S_IMODE(a.path.stat().st_mode) == 0o600
    first_salt, first_hash = data["salt"], data["hash"]
    b = AdminAuth(tmp_path / "other.json", CFG, clock)
    b.set_pin("2580")
    other = json.loads(b.path.read_text())
    assert other["salt"] != first_salt and other["hash"] != first_hash  # random salt per set
    a.verify("2580")
    b.verify("2580")


@pytest.mark.parametrize(
    ("pin", "why"),
    [
        ("123", "at least 4"),
        ("x" * 65, "at most 64"),
        ("0000", "repeated"),
        ("1234", "consecutive"),
        ("98765", "consecutive"),
        (" 2580", "space"),
        ("25\n80", "control"),
    ],
)
def test_weak_or_malformed_pins_are_refused(tmp_path: Path, pin: str, why: str) -> None:
    assert why in (pin_problem(pin) or "")
    a = AdminAuth(tmp_path / "admin.json", CFG)
    with pytest.raises(AdminAuthError, match=why):
        a.set_pin(pin)
    assert not a.is_set()


@pytest.mark.parametrize("pin", ["2580", "1357", "correct horse battery", "Ünïcode-pass"])
def test_good_pins_are_accepted(pin: str) -> None:
    assert pin_problem(pin) is None


def test_wrong_pin_counts_down_then_locks(auth: AdminAuth, clock: Clock) -> None:
    for left in (4, 3, 2, 1):
        with pytest.raises(AdminAuthError, match=f"wrong PIN, {left} tr") as info:
            auth.verify("9999")
        assert not isinstance(info.value, AdminLockedError)
        assert auth.tries_left() == left
    with pytest.raises(AdminLockedError, match="locked for 30 s after 5 wrong PINs") as locked:
        auth.verify("9999")
    assert locked.value.until == clock.t + 30
    assert auth.locked_until() == clock.t + 30 and auth.tries_left() == 0
    # the right PIN is refused while locked
    with pytest.raises(AdminLockedError):
        auth.verify("2580")
    clock.t += 29.5
    with pytest.raises(AdminLockedError, match="locked for 1 s"):
        auth.verify("2580")
    clock.t += 0.5
    assert auth.locked_until() is None
    auth.verify("2580")  # works after the delay
    assert auth.tries_left() == 5


def test_right_pin_resets_the_count(auth: AdminAuth) -> None:
    fail(auth, 4)
    auth.verify("2580")
    fail(auth, 4)  # 4 more wrong do not lock: the count started again
    assert auth.locked_until() is None and auth.tries_left() == 1


def test_a_full_disk_neither_lifts_the_lockout_nor_keeps_the_admin_out(
    auth: AdminAuth, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(data: object) -> None:
        raise AdminAuthError("cannot save the admin PIN file: No space left on device")

    monkeypatch.setattr(auth, "_save", disk_full)
    fail(auth, 4)
    assert auth.tries_left() == 1  # counted in memory
    with pytest.raises(AdminLockedError):
        auth.verify("9999")
    with pytest.raises(AdminLockedError):
        auth.verify("2580")  # still locked: the guesses were not free
    clock.t += 30
    auth.verify("2580")  # and the right PIN works although nothing can be saved
    assert auth.tries_left() == 5


def test_lockout_doubles_then_caps(auth: AdminAuth, clock: Clock) -> None:
    durations = []
    for _ in range(4):
        fail(auth, 5)
        until = auth.locked_until()
        assert until is not None
        durations.append(until - clock.t)
        clock.t = until
    assert durations == [30, 60, 100, 100]  # 30, 60, 120 -> capped at lockout_max_s


def test_state_survives_a_restart(tmp_path: Path, auth: AdminAuth, clock: Clock) -> None:
    fail(auth, 3)
    again = AdminAuth(auth.path, CFG, clock)
    assert again.tries_left() == 2
    fail(again, 2)
    third = AdminAuth(auth.path, CFG, clock)
    assert third.locked_until() == clock.t + 30
    with pytest.raises(AdminLockedError):
        third.verify("2580")


def test_clock_set_back_does_not_extend_the_lockout(auth: AdminAuth, clock: Clock) -> None:
    fail(auth, 5)
    clock.t -= 10_000  # someone set the clock back
    until = auth.locked_until()
    assert until is not None and until - clock.t <= CFG.lockout_max_s


def test_change_needs_the_current_pin(auth: AdminAuth) -> None:
    with pytest.raises(AdminAuthError, match="needs the current PIN"):
        auth.set_pin("4826")
    with pytest.raises(AdminAuthError, match="wrong PIN, 4 tries left"):
        auth.set_pin("4826", current="1111")
    auth.verify("2580")  # unchanged
    auth.set_pin("4826", current="2580")
    auth.verify("4826")
    with pytest.raises(AdminAuthError, match="wrong PIN"):
        auth.verify("2580")


def test_verify_without_pin(tmp_path: Path) -> None:
    with pytest.raises(AdminAuthError, match="no admin PIN is set"):
        AdminAuth(tmp_path / "admin.json", CFG).verify("2580")


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1}', b"\xff\xfe", b"[]"])
def test_corrupt_file_says_how_to_fix(auth: AdminAuth, content: bytes) -> None:
    auth.path.write_bytes(content)
    with pytest.raises(AdminAuthError, match="remove that file") as info:
        auth.verify("2580")
    assert str(auth.path) in str(info.value)
    with pytest.raises(AdminAuthError, match="remove that file"):
        auth.is_set()


def test_unwritable_pin_file_is_an_admin_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AdminAuthError, match="cannot save"):
        AdminAuth(blocker / "admin.json", CFG).set_pin("2580")


# -- audit --------------------------------------------------------------------------


def test_audit_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "logs" / "audit.jsonl", "north", clock=lambda: 1_800_000_000.0)
    log.write("admin.unlock", detail="export attendance")
    log.write("admin.unlock", ok=False, detail="wrong PIN, 4 tries left")
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {
        "time": "2027-01-15T08:00:00+00:00",
        "kiosk_id": "north",
        "action": "admin.unlock",
        "ok": True,
        "detail": "export attendance",
    }
    entries = log.read()
    assert [e["ok"] for e in entries] == [True, False]
    assert log.read(limit=1) == [json.loads(lines[1])]


def test_audit_log_is_readable_by_this_user_only(tmp_path: Path) -> None:
    log_path = tmp_path / "audit.jsonl"
    AuditLog(log_path, "north").write("attendance.enter")
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


def test_audit_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, "north")
    log.write("a")
    with path.open("a") as fh:
        fh.write('{"time": "2026-')  # a crash mid-write
    log.write("b")  # must start on a new line, not be glued to the torn one
    assert [e["action"] for e in log.read()] == ["a", "b"]


def test_audit_write_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = AuditLog(blocker / "audit.jsonl", "north")
    with caplog.at_level(logging.WARNING, logger="kiosk.admin"):
        log.write("admin.unlock", detail="export")
    assert "cannot write the audit log" in caplog.text
    assert log.read() == []
