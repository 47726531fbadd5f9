"""The attendance records: one SQLite file, crash-safe, readable while the kiosk writes.

Why SQLite in WAL mode with ``synchronous=FULL``: a check-in must survive the power
being pulled the moment the welcome screen appears. In WAL mode every commit is
appended to the write-ahead log and, with FULL, fsynced before :meth:`record`
returns; a process killed mid-write leaves at most an uncommitted tail that SQLite
discards on the next open. WAL also lets ``kiosk attendance export`` read while
the kiosk writes, without either waiting for the other.

Each record keeps its time three ways: the epoch (for ordering and range queries,
immune to time zones and DST), the ISO UTC time, and the ISO local time *with the
offset in force at that moment*, so a report reads "08:57" as the person saw it
even after the kiosk moved to another zone or DST ended.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kiosk.errors import AttendanceError, KioskError
from kiosk.fsutil import atomic_write, shared_file_mode

SCHEMA_VERSION = 1
#: How long a writer waits for another process's lock (e.g. an export) before giving up.
BUSY_TIMEOUT_MS = 5000

CSV_COLUMNS = (
    "person_id",
    "name",
    "date_local",
    "time_local",
    "time_utc",
    "distance",
    "threshold",
    "kiosk_id",
    "gallery_version",
    "model_fingerprint",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id TEXT NOT NULL,
    name TEXT NOT NULL,
    time REAL NOT NULL,
    time_utc TEXT NOT NULL,
    time_local TEXT NOT NULL,
    distance REAL NOT NULL,
    threshold REAL NOT NULL,
    kiosk_id TEXT NOT NULL,
    gallery_version TEXT,
    model_fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS checkins_person_time ON checkins (person_id, time);
CREATE INDEX IF NOT EXISTS checkins_time ON checkins (time);
"""

_COLUMNS = (
    "id, person_id, name, time, time_local, distance, threshold, kiosk_id, "
    "gallery_version, model_fingerprint"
)


@dataclass(frozen=True)
class CheckIn:
    """One recorded check-in."""

    id: int
    person_id: str
    name: str
    time_utc: datetime
    local_time: datetime
    distance: float
    threshold: float
    kiosk_id: str
    gallery_version: str | None
    model_fingerprint: str | None

    @property
    def local_hhmm(self) -> str:
        """The local time of day as the kiosk showed it, e.g. ``"08:57"``."""
        return self.local_time.strftime("%H:%M")


def _row_to_checkin(row: tuple[Any, ...]) -> CheckIn:
    (id_, person_id, name, epoch, local_iso, distance, threshold, kiosk, gallery, model) = row
    return CheckIn(
        id=int(id_),
        person_id=str(person_id),
        name=str(name),
        time_utc=datetime.fromtimestamp(float(epoch), UTC),
        local_time=datetime.fromisoformat(str(local_iso)),
        distance=float(distance),
        threshold=float(threshold),
        kiosk_id=str(kiosk),
        gallery_version=gallery,
        model_fingerprint=model,
    )


def _describe(exc: sqlite3.Error | OSError, path: Path, doing: str) -> str:
    """One sentence a person can act on, from a sqlite3 or OS error."""
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return f"the disk is full while {doing} {path}; free some space and try again"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (
                f"no permission to write the attendance database {path} ({exc.strerror}); "
                "make its folder writable or set paths.data_dir"
            )
        return (
            f"cannot use the attendance database {path} ({exc.strerror or exc}); "
            "check that its folder exists and is a writable directory (paths.data_dir)"
        )
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", "")
    if code == sqlite3.SQLITE_FULL or "full" in str(exc):
        return f"the disk is full while {doing} {path}; free some space and try again"
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) or "not a database" in str(exc):
        return (
            f"{path} is not an attendance database (the file is corrupt or something else); "
            "move it aside and the kiosk starts a new one"
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM) or "readonly" in str(exc):
        return (
            f"the attendance database {path} is read-only; make the file and its folder "
            "writable for the kiosk's user"
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return (
            f"cannot open the attendance database {path}; check that its folder exists "
            "and is writable (paths.data_dir)"
        )
    if code == sqlite3.SQLITE_BUSY:
        return (
            f"the attendance database {path} stayed locked by another program for "
            f"{BUSY_TIMEOUT_MS // 1000} s; try again"
        )
    return f"error while {doing} the attendance database {path}: {exc} {name}".rstrip()


def _create_private(path: Path) -> None:
    """Create an empty database file readable by this user only (names and times are
    personal data); SQLite gives its -wal and -shm files the same permissions."""
    with contextlib.suppress(FileExistsError):  # an existing one keeps its permissions
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class AttendanceStore:
    """The check-ins of one kiosk, in a SQLite file; safe to share between threads.

    One connection guarded by a lock: writes are tiny (one row), so a connection
    pool would only add the risk of two writers racing for SQLite's lock.
    """

    def __init__(self, path: Path, *, tz: tzinfo | None = None) -> None:
        """Open (or create) the database at ``path``.

        ``tz`` is the zone for the local times recorded; ``None`` = the system's zone at
        the moment of each check-in (tests pass a fixed zone).
        """
        self.path = Path(path)
        self._tz = tz
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=0
            )
        except (sqlite3.Error, OSError) as exc:
            raise AttendanceError(_describe(exc, self.path, "opening")) from exc
        try:
            self._setup(conn)
        except AttendanceError:
            conn.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            conn.close()
            raise AttendanceError(_describe(exc, self.path, "opening")) from exc
        self._conn = conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AttendanceError(
                f"cannot put the attendance database {self.path} into WAL mode (got {mode}); "
                "keep it on a local disk, not a network share"
            )
        conn.execute("PRAGMA synchronous=FULL")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(r[0]).startswith("sqlite_")
        }
        if version > SCHEMA_VERSION:
            raise AttendanceError(
                f"{self.path} was written by a newer FaceKiosk (schema {version}, this one "
                f"reads {SCHEMA_VERSION}); upgrade FaceKiosk on this kiosk"
            )
        if version == 0 and tables:
            raise AttendanceError(
                f"{self.path} is not an attendance database (it holds other tables: "
                f"{', '.join(sorted(tables))}); move it aside or set paths.data_dir"
            )
        if version == 0:
            conn.execute("BEGIN IMMEDIATE")
            try:  # statement by statement: executescript() would COMMIT first
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        elif "checkins" not in tables:
            raise AttendanceError(
                f"{self.path} is not an attendance database (no check-in table); "
                "move it aside and the kiosk starts a new one"
            )

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> AttendanceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent). SQLite checkpoints the WAL on the last close."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.close()
                except sqlite3.Error as exc:  # pragma: no cover - close failing is rare
                    raise AttendanceError(_describe(exc, self.path, "closing")) from exc

    @contextmanager
    def _connection(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise AttendanceError(f"the attendance database {self.path} is closed")
            try:
                yield self._conn
            except KioskError:
                raise
            except (sqlite3.Error, OSError) as exc:
                if self._conn.in_transaction:
                    with suppress(sqlite3.Error):  # the original error is the one to report
                        self._conn.execute("ROLLBACK")
                raise AttendanceError(_describe(exc, self.path, doing)) from exc

    # -- writes ---------------------------------------------------------------------

    def record(
        self,
        person_id: str,
        name: str,
        *,
        wall_time: float,
        distance: float,
        threshold: float,
        kiosk_id: str,
        gallery_version: str | None,
        model_fingerprint: str | None,
    ) -> CheckIn:
        """Store one check-in; it is committed and fsynced when this returns."""
        utc = datetime.fromtimestamp(wall_time, UTC)
        local = utc.astimezone(self._tz) if self._tz is not None else utc.astimezone()
        with self._connection("writing to") as conn:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                "INSERT INTO checkins (person_id, name, time, time_utc, time_local, distance, "
                "threshold, kiosk_id, gallery_version, model_fingerprint) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    person_id,
                    name,
                    float(wall_time),
                    utc.isoformat(),
                    local.isoformat(),
                    float(distance),
                    float(threshold),
                    kiosk_id,
                    gallery_version,
                    model_fingerprint,
                ),
            )
            conn.execute("COMMIT")
            row_id = cur.lastrowid
        assert row_id is not None
        return CheckIn(
            id=row_id,
            person_id=person_id,
            name=name,
            time_utc=utc,
            local_time=datetime.fromisoformat(local.isoformat()),
            distance=float(distance),
            threshold=float(threshold),
            kiosk_id=kiosk_id,
            gallery_version=gallery_version,
            model_fingerprint=model_fingerprint,
        )

    # -- reads ----------------------------------------------------------------------

    def last_for(self, person_id: str) -> CheckIn | None:
        """The person's latest check-in (by time), or ``None``."""
        with self._connection("reading") as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM checkins WHERE person_id = ? "
                "ORDER BY time DESC, id DESC LIMIT 1",
                (person_id,),
            ).fetchone()
        return None if row is None else _row_to_checkin(row)

    def between(self, start: datetime | None, end: datetime | None) -> list[CheckIn]:
        """Check-ins with ``start <= time < end``, oldest first; ``None`` = unbounded.

        Both bounds must be time-zone aware: a naive datetime is ambiguous (whose
        midnight?) and would silently shift a report by hours.
        """
        clauses, params = [], []
        for bound, op in ((start, ">="), (end, "<")):
            if bound is None:
                continue
            if bound.tzinfo is None or bound.utcoffset() is None:
                raise ValueError(f"between() needs time-zone aware datetimes, got {bound!r}")
            clauses.append(f"time {op} ?")
            params.append(bound.timestamp())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connection("reading") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM checkins {where} ORDER BY time, id", params
            ).fetchall()
        return [_row_to_checkin(r) for r in rows]

    def count(self) -> int:
        with self._connection("reading") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM checkins").fetchone()[0])

    def integrity_ok(self) -> bool:
        """SQLite's full ``PRAGMA integrity_check`` (reads every page; seconds on big files)."""
        with self._connection("checking") as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return [str(r[0]) for r in rows] == ["ok"]


def local_day_range(
    first: date | None, last: date | None, tz: tzinfo | None = None
) -> tuple[datetime | None, datetime | None]:
    """Aware [start, end) bounds covering the local days ``first`` .. ``last`` inclusive.

    ``tz`` = ``None`` uses the system zone, with the offset in force on each day (so
    a range across a DST change still starts and ends at local midnight).
    """

    def midnight(day: date) -> datetime:
        naive = datetime.combine(day, time())
        return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()

    start = midnight(first) if first is not None else None
    end = midnight(last + timedelta(days=1)) if last is not None else None
    return start, end


#: A cell starting with one of these is a formula to Excel/LibreOffice (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(rows: Sequence[CheckIn], path: Path) -> int:
    """Write ``rows`` to ``path`` as CSV (atomically); returns the number of rows.

    UTF-8 with a byte-order mark, because Excel otherwise reads UTF-8 as the local
    code page and mangles every accented name; the csv module reads it back with
    ``encoding="utf-8-sig"``. Text cells that a spreadsheet would run as a formula
    (starting with = + - @) get a leading apostrophe.
    """

    def write(fh: IO[bytes]) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    _safe_cell(r.person_id),
                    _safe_cell(r.name),
                    r.local_time.date().isoformat(),
                    r.local_time.strftime("%H:%M:%S"),
                    r.time_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"{r.distance:.4f}",
                    f"{r.threshold:.4f}",
                    _safe_cell(r.kiosk_id),
                    _safe_cell(r.gallery_version),
                    _safe_cell(r.model_fingerprint),
                ]
            )
        text.flush()
        text.detach()  # leave fh open: atomic_write fsyncs and closes it

    try:
        # An export is for people (HR, a shared folder): a normal file, not a private one.
        atomic_write(Path(path), write, mode=shared_file_mode(Path(path)))
    except KioskError as exc:  # atomic_write reports OS errors as GalleryError
        raise AttendanceError(f"cannot export attendance: {exc}") from exc
    except OSError as exc:
        raise AttendanceError(f"cannot export attendance to {path}: {exc.strerror}") from exc
    return len(rows)
