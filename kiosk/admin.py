"""The admin PIN (salted scrypt hash, lock-out after wrong PINs) and the audit log.

No Qt: the dialogs in :mod:`kiosk.ui.admin_dialogs` drive :class:`AdminAuth`, and
so could a command line.

Why the lock-out state lives in the PIN file: a kiosk stands in a public hall, and
anyone can pull its plug. If restarting reset the count of wrong PINs, guessing a
4-digit PIN would take minutes; persisted, with the lock-out doubling each time
(``lockout_s``, 2x, 4x, ... up to ``lockout_max_s``), it takes months.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.errors import AdminAuthError, AdminLockedError, KioskError
from kiosk.fsutil import atomic_write_bytes
from kiosk.settings import AdminSection

log = logging.getLogger(__name__)

FILE_VERSION = 1
PIN_MIN, PIN_MAX = 4, 64
#: scrypt cost: about 50 ms and 16 MiB per check, which a kiosk barely notices and an
#: attacker holding a copy of the file pays for every guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32


def pin_problem(pin: str) -> str | None:
    """Why ``pin`` cannot be the admin PIN, or ``None`` when it is acceptable.

    4 to 64 characters: digits for a keypad, or any password. Refused: spaces at
    either end (invisible, easily mistyped), control characters, one character
    repeated (0000, aaaa) and runs of consecutive digits (1234, 98765): the first
    guesses anyone tries.
    """
    if len(pin) < PIN_MIN:
        return f"the PIN must have at least {PIN_MIN} characters"
    if len(pin) > PIN_MAX:
        return f"the PIN must have at most {PIN_MAX} characters"
    if pin != pin.strip():
        return "the PIN must not start or end with a space"
    if any(not ch.isprintable() for ch in pin):
        return "the PIN must not contain control characters"
    if len(set(pin)) == 1:
        return "the PIN must not be one character repeated (like 0000)"
    if pin.isdigit() and pin.isascii():
        steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
        if steps in ({1}, {-1}):
            return "the PIN must not be a run of consecutive digits (like 1234)"
    return None


def _hash(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=HASH_BYTES
    )


def format_remaining(seconds: float) -> str:
    """A lock-out's time left: "28 s" under two minutes, then "12:05 min"."""
    s = max(0, math.ceil(seconds))
    if s < 120:
        return f"{s} s"
    return f"{s // 60}:{s % 60:02d} min"


class AdminAuth:
    """Checks and sets the admin PIN; the file at ``path`` holds its hash and lock-out state.

    The file is re-read on every call, so two processes (the kiosk and a command
    line) share one count of wrong PINs. Thread-safe within a process.
    """

    def __init__(
        self, path: Path, settings: AdminSection, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        # The count of wrong PINs when the file could not be written (disk full, read-only
        # folder): kept here so the lock-out still works in this process.
        self._unsaved: dict[str, Any] | None = None

    # -- the file ---------------------------------------------------------------------

    def _broken(self, why: str) -> AdminAuthError:
        return AdminAuthError(
            f"the admin PIN file {self.path} {why}; remove that file to set a new PIN "
            "(its lock-out state goes with it)"
        )

    def _load(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None  # no PIN yet; a folder that cannot hold one fails when saving
        except OSError as exc:
            raise self._broken(f"cannot be read ({exc.strerror})") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._broken("is corrupt") from exc
        try:
            if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
                raise ValueError("unknown version")
            bytes.fromhex(data["salt"])
            bytes.fromhex(data["hash"])
            for key in ("n", "r", "p", "failures", "lockouts"):
                if not isinstance(data[key], int) or data[key] < 0:
                    raise ValueError(key)
            until = data["locked_until"]
            if until is not None and not isinstance(until, int | float):
                raise ValueError("locked_until")
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise self._broken("is corrupt or from another program") from exc
        return data

    def _state(self) -> dict[str, Any] | None:
        """The file's content, with a count of wrong PINs that could not be saved."""
        data = self._load()
        unsaved = self._unsaved
        if data is not None and unsaved is not None and unsaved["hash"] == data["hash"]:
            data.update({k: unsaved[k] for k in ("failures", "lockouts", "locked_until")})
        return data

    def _save_count(self, data: dict[str, Any]) -> None:
        """Save the count of wrong PINs; if the file cannot be written, keep it in memory.

        Neither a full disk nor a read-only folder may give unlimited guesses, nor keep the
        right PIN out (the admin may need in to free the disk).
        """
        try:
            self._save(data)
        except AdminAuthError as exc:
            log.warning("%s; the count of wrong PINs is kept in memory", exc)
            self._unsaved = dict(data)
        else:
            self._unsaved = None

    def _save(self, data: dict[str, Any]) -> None:
        try:
            atomic_write_bytes(self.path, json.dumps(data, indent=1).encode("utf-8"))
            self.path.chmod(0o600)  # mkstemp already creates 0600; say so explicitly
        except (KioskError, OSError) as exc:
            raise AdminAuthError(
                f"cannot save the admin PIN file {self.path}: {exc}; check that the data "
                "folder is writable"
            ) from exc

    # -- queries ----------------------------------------------------------------------

    def is_set(self) -> bool:
        with self._lock:
            return self._load() is not None

    def locked_until(self) -> float | None:
        """When the current lock-out ends (epoch seconds), or ``None`` when not locked."""
        with self._lock:
            data = self._state()
            return None if data is None else self._until(data, self.clock())

    def tries_left(self) -> int:
        """Wrong PINs still allowed before the next lock-out (0 while locked)."""
        with self._lock:
            data = self._state()
            if data is None:
                return self.settings.max_attempts
            if self._until(data, self.clock()) is not None:
                return 0
            return max(0, self.settings.max_attempts - int(data["failures"]))

    def _until(self, data: dict[str, Any], now: float) -> float | None:
        until = data["locked_until"]
        if until is None or until <= now:
            return None
        # A clock set back by hours must not lock the admin out for hours: no lock-out
        # lasts longer than the longest one configured, counted from now.
        return float(min(until, now + self.settings.lockout_max_s))

    # -- actions ----------------------------------------------------------------------

    def verify(self, pin: str) -> None:
        """Return if ``pin`` is right; raise otherwise.

        Raises :class:`AdminLockedError` while locked (the PIN is not even checked,
        so a right guess during a lock-out teaches nothing), and
        :class:`AdminAuthError` ("wrong PIN, N tries left") for a wrong PIN; the
        ``max_attempts``-th wrong PIN in a row starts a lock-out.
        """
        with self._lock:
            self._verify(pin)

    def _verify(self, pin: str) -> None:
        data = self._state()
        if data is None:
            raise AdminAuthError("no admin PIN is set yet; set one first")
        now = self.clock()
        until = self._until(data, now)
        if until is not None:
            raise AdminLockedError(self._locked_message(until, now), until)
        expected = bytes.fromhex(data["hash"])
        try:
            got = _hash(pin, bytes.fromhex(data["salt"]), data["n"], data["r"], data["p"])
        except (ValueError, MemoryError) as exc:
            raise self._broken("has invalid scrypt parameters") from exc
        if hmac.compare_digest(got, expected):
            if data["failures"] or data["lockouts"] or data["locked_until"] is not None:
                data.update(failures=0, lockouts=0, locked_until=None)
                self._save_count(data)
            return
        data["failures"] = int(data["failures"]) + 1
        data["locked_until"] = None
        cfg = self.settings
        if data["failures"] >= cfg.max_attempts:
            delay = min(cfg.lockout_s * 2 ** int(data["lockouts"]), cfg.lockout_max_s)
            until = now + delay
            data.update(failures=0, lockouts=int(data["lockouts"]) + 1, locked_until=until)
            self._save_count(data)
            raise AdminLockedError("wrong PIN; " + self._locked_message(until, now), until)
        self._save_count(data)
        left = cfg.max_attempts - data["failures"]
        raise AdminAuthError(f"wrong PIN, {left} {'try' if left == 1 else 'tries'} left")

    def _locked_message(self, until: float, now: float) -> str:
        at = datetime.fromtimestamp(until).astimezone().strftime("%H:%M:%S")
        return (
            f"admin access is locked for {format_remaining(until - now)} after "
            f"{self.settings.max_attempts} wrong PINs in a row (until {at})"
        )

    def set_pin(self, pin: str, current: str | None = None) -> None:
        """Set the PIN: freely the first time, afterwards only with the ``current`` PIN.

        Raises :class:`AdminAuthError` for a PIN that breaks the rules
        (:func:`pin_problem`) or a missing/wrong current PIN (which counts toward the
        lock-out like any wrong PIN).
        """
        problem = pin_problem(pin)
        if problem:
            raise AdminAuthError(problem)
        with self._lock:
            if self._load() is not None:
                if current is None:
                    raise AdminAuthError("changing the admin PIN needs the current PIN")
                self._verify(current)
            salt = secrets.token_bytes(SALT_BYTES)
            self._save(
                {
                    "version": FILE_VERSION,
                    "kdf": "scrypt",
                    "n": SCRYPT_N,
                    "r": SCRYPT_R,
                    "p": SCRYPT_P,
                    "salt": salt.hex(),
                    "hash": _hash(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex(),
                    "set_at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
                    "failures": 0,
                    "lockouts": 0,
                    "locked_until": None,
                }
            )


class AuditLog:
    """Admin actions, one JSON object per line, appended and fsynced.

    Writing never raises: an audit line that cannot be written (disk full, folder
    gone) is logged as a warning, because a failing audit must not take the kiosk's
    attendance screen down with it.
    """

    def __init__(self, path: Path, kiosk_id: str, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.kiosk_id = kiosk_id
        self.clock = clock
        self._lock = threading.Lock()

    def write(self, action: str, *, ok: bool = True, detail: str = "") -> None:
        entry = {
            "time": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            "kiosk_id": self.kiosk_id,
            "action": action,
            "ok": ok,
            "detail": detail,
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Who did what and when: readable by the kiosk's user only.
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a+b") as fh:
                    # A crash mid-line leaves a torn last line; start on a fresh one so
                    # this entry is not glued to (and lost with) the torn one.
                    end = fh.seek(0, os.SEEK_END)
                    if end > 0:
                        fh.seek(end - 1)
                        if fh.read(1) != b"\n":
                            line = b"\n" + line
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                log.warning(
                    "cannot write the audit log %s (%s): %s", self.path, exc, line.decode().strip()
                )

    def read(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` entries, oldest first; a torn line (crash mid-write) is skipped."""
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError):
                return []  # nothing audited yet (or nowhere it could have been)
            except OSError as exc:
                raise KioskError(f"cannot read the audit log {self.path}: {exc.strerror}") from exc
        entries: list[dict[str, Any]] = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries[-limit:] if limit > 0 else []
