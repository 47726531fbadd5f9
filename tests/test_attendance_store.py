"""The attendance store (SQLite), the cooldown recorder and the CSV export."""

from __future__ import annotations

import csv
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.attendance import (
    CSV_COLUMNS,
    AttendanceRecorder,
    AttendanceStore,
    CheckIn,
    export_csv,
    local_day_range,
)
from kiosk.errors import AttendanceError
from kiosk.recognition.types import VerificationEvent
from kiosk.settings import AttendanceSection, KioskSection, settings_for_data_dir

REPO = Path(__file__).resolve().parents[1]
CET = timezone(timedelta(hours=1), "CET")
# 2026-12-03 08:57:03 in CET (UTC+1) = 07:57:03 UTC
T0 = datetime(2026, 12, 3, 8, 57, 3, tzinfo=CET).timestamp()


def record(store: AttendanceStore, person: str, t: float, name: str | None = None) -> CheckIn:
    return store.record(
        person,
        name or person.title(),
        wall_time=t,
        distance=0.42,
        threshold=0.9,
        kiosk_id="north",
        gallery_version="g1",
        model_fingerprint="m1",
    )


@pytest.fixture
def store(tmp_path: Path):
    with AttendanceStore(tmp_path / "nested" / "att.sqlite3", tz=CET) as s:
        yield s


def test_wal_and_full_sync_are_really_set(store: AttendanceStore) -> None:
    record(store, "ada", T0)
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in file
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        indexes = {r[1] for r in raw.execute("PRAGMA index_list(checkins)")}
        assert "checkins_person_time" in indexes
    finally:
        raw.close()
    # synchronous is per connection: ask the store's own connection
    conn = store._conn
    assert conn is not None
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_records_are_readable_by_this_user_only(store: AttendanceStore) -> None:
    import stat

    record(store, "ada", T0)
    for suffix in ("", "-wal", "-shm"):
        path = store.path.with_name(store.path.name + suffix)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_record_and_read_back_with_times(store: AttendanceStore) -> None:
    rec = record(store, "ada", T0, name="Ada Lovelace")
    assert rec.id >= 1 and rec.person_id == "ada" and rec.name == "Ada Lovelace"
    assert rec.time_utc == datetime(2026, 12, 3, 7, 57, 3, tzinfo=UTC)
    assert rec.local_time.utcoffset() == timedelta(hours=1)
    assert rec.local_hhmm == "08:57"
    again = store.last_for("ada")
    assert again == rec
    assert store.last_for("nobody") is None
    assert store.count() == 1 and store.integrity_ok()


def test_last_for_is_by_time_not_insertion(store: AttendanceStore) -> None:
    late = record(store, "ada", T0 + 100)
    record(store, "ada", T0)  # recorded later, but earlier in time
    last = store.last_for("ada")
    assert last is not None and last.id == late.id


def test_between_boundaries_and_zones(store: AttendanceStore) -> None:
    day_start = datetime(2026, 12, 3, tzinfo=CET).timestamp()
    r_mid = record(store, "a", day_start)  # exactly local midnight: belongs to the 3rd
    r_prev = record(store, "b", day_start - 0.001)  # last moment of the 2nd
    r_late = record(store, "c", day_start + 86_400 - 1)  # 23:59:59 on the 3rd
    r_next = record(store, "d", day_start + 86_400)  # midnight of the 4th
    start, end = local_day_range(date(2026, 12, 3), date(2026, 12, 3), CET)
    assert [r.id for r in store.between(start, end)] == [r_mid.id, r_late.id]
    # the same instant written in another zone is the same bound
    assert start is not None and end is not None
    utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)
    assert [r.id for r in store.between(utc_start, utc_end)] == [r_mid.id, r_late.id]
    assert [r.id for r in store.between(None, start)] == [r_prev.id]
    assert [r.id for r in store.between(end, None)] == [r_next.id]
    assert [r.id for r in store.between(None, None)] == [r_prev.id, r_mid.id, r_late.id, r_next.id]
    with pytest.raises(ValueError, match="aware"):
        store.between(datetime(2026, 12, 3), None)


def test_threads_share_one_store(store: AttendanceStore) -> None:
    def work(k: int) -> None:
        for i in range(25):
            record(store, f"p{k}", T0 + i)

    threads = [threading.Thread(target=work, args=(k,), name=f"kiosk-test-{k}") for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert store.count() == 100
    assert len({r.id for r in store.between(None, None)}) == 100


def test_reopen_keeps_records(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    with AttendanceStore(path, tz=CET) as s:
        first = record(s, "ada", T0)
    with AttendanceStore(path, tz=CET) as s:
        assert s.last_for("ada") == first
        assert record(s, "ada", T0 + 1).id > first.id


def test_corrupt_file_is_an_attendance_error(tmp_path: Path) -> None:
    path = tmp_path / "att.sqlite3"
    path.write_bytes(b"this is certainly not SQLite\n" * 100)
    with pytest.raises(AttendanceError, match="is not an attendance database") as info:
        AttendanceStore(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_other_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE invoices (x)")
    raw.commit()
    raw.close()
    with pytest.raises(AttendanceError, match=r"not an attendance database.*invoices"):
        AttendanceStore(path)


def test_unwritable_location_is_an_attendance_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(AttendanceError, match="attendance database") as info:
        AttendanceStore(blocker / "att.sqlite3")
    assert isinstance(info.value.__cause__, OSError)


def test_closed_store_raises(tmp_path: Path) -> None:
    s = AttendanceStore(tmp_path / "a.sqlite3")
    s.close()
    s.close()  # idempotent
    with pytest.raises(AttendanceError, match="closed"):
        s.count()


# -- CSV ----------------------------------------------------------------------------

ODD_NAMES = [
    "Lovelace, Ada",
    'Grace "Amazing" Hopper',
    "Line\nbreak",
    "Émile Zoë 😀 李小龍",
    '=HYPERLINK("http://evil")',
    "+1 caller",
    "-minus",
    "@at",
]


def test_csv_round_trip_of_odd_names(store: AttendanceStore, tmp_path: Path) -> None:
    rows = [record(store, f"id-{i}", T0 + i, name=n) for i, n in enumerate(ODD_NAMES)]
    out = tmp_path / "out" / "export.csv"
    assert export_csv(rows, out) == len(rows)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as fh:
        read = list(csv.reader(fh))
    assert tuple(read[0]) == CSV_COLUMNS
    names = [line[1] for line in read[1:]]
    expected = [("'" + n if n[0] in "=+-@" else n) for n in ODD_NAMES]
    assert names == expected
    first = dict(zip(CSV_COLUMNS, read[1], strict=True))
    assert first["date_local"] == "2026-12-03" and first["time_local"] == "08:57:03"
    assert first["time_utc"] == "2026-12-03T07:57:03Z"
    assert first["kiosk_id"] == "north" and first["distance"] == "0.4200"
    assert list(tmp_path.joinpath("out").iterdir()) == [out]  # no temp file left behind


def test_an_export_is_a_normal_file_and_an_overwrite_keeps_its_mode(
    store: AttendanceStore, tmp_path: Path
) -> None:
    import os
    import stat

    record(store, "ada", T0)
    old = os.umask(0o027)  # a site's umask: group may read, others not
    try:
        fresh = tmp_path / "fresh.csv"
        export_csv(store.between(None, None), fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # not mkstemp's private 0600
        shared = tmp_path / "shared.csv"
        shared.write_text("old")
        shared.chmod(0o664)
        export_csv(store.between(None, None), shared)
        assert stat.S_IMODE(shared.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_csv_export_to_unwritable_place(store: AttendanceStore, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AttendanceError, match="cannot export"):
        export_csv([record(store, "a", T0)], blocker / "out.csv")


# -- recorder -----------------------------------------------------------------------


def event(person: str | None, t: float, *, match: bool = True) -> VerificationEvent:
    return VerificationEvent(
        track_id=1,
        person_id=person if match else None,
        name=person.title() if (person and match) else None,
        distance=0.4 if match else 1.3,
        threshold=0.9,
        is_match=match,
        face_confidence=0.99,
        latency_ms=10.0,
        ttv_ms=20.0,
        frame_id=5,
        wall_time=t,
        box=(0.0, 0.0, 10.0, 10.0),
        votes=2,
    )


@pytest.fixture
def recorder(store: AttendanceStore, tmp_path: Path) -> AttendanceRecorder:
    settings = settings_for_data_dir(
        tmp_path, attendance=AttendanceSection(cooldown_s=300), kiosk=KioskSection(id="north")
    )
    return AttendanceRecorder(
        store, settings, gallery_version=lambda: "g7", model_fingerprint=lambda: "fp9"
    )


def test_cooldown(recorder: AttendanceRecorder, store: AttendanceStore) -> None:
    first = recorder.handle(event("ada", T0))
    assert first.kind == "checked_in" and first.record is not None
    assert first.record.kiosk_id == "north" and first.record.gallery_version == "g7"
    assert first.record.model_fingerprint == "fp9" and first.record.distance == 0.4
    inside = recorder.handle(event("ada", T0 + 299))
    assert inside.kind == "already" and inside.record == first.record
    after = recorder.handle(event("ada", T0 + 300))
    assert after.kind == "checked_in" and after.record is not None
    assert after.record.id != first.record.id
    assert store.count() == 2


def test_unknown_faces_are_not_recorded(
    recorder: AttendanceRecorder, store: AttendanceStore
) -> None:
    out = recorder.handle(event("ada", T0, match=False))
    assert out.kind == "unknown" and out.record is None
    assert store.count() == 0


def test_people_are_independent(recorder: AttendanceRecorder, store: AttendanceStore) -> None:
    assert recorder.handle(event("ada", T0)).kind == "checked_in"
    assert recorder.handle(event("grace", T0 + 1)).kind == "checked_in"
    assert recorder.handle(event("ada", T0 + 2)).kind == "already"
    again = recorder.handle(event("grace", T0 + 3))
    assert again.kind == "already" and again.record is not None
    assert again.record.person_id == "grace"
    assert store.count() == 2


def test_concurrent_events_record_once(
    recorder: AttendanceRecorder, store: AttendanceStore
) -> None:
    kinds: list[str] = []
    lock = threading.Lock()

    def go() -> None:
        out = recorder.handle(event("ada", T0))
        with lock:
            kinds.append(out.kind)

    threads = [threading.Thread(target=go, name=f"kiosk-test-{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(kinds) == ["already"] * 7 + ["checked_in"]
    assert store.count() == 1


# -- crash safety -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_sigkill_mid_write_loses_no_committed_record(tmp_path: Path, round_: int) -> None:
    path = tmp_path / "att.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.attendance_writer", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[int] = []
    try:
        assert child.stdout is not None
        want = 20 + 15 * round_
        while len(printed) < want:
            line = child.stdout.readline()
            assert line, f"writer died early: {child.stderr.read() if child.stderr else ''}"
            printed.append(int(line))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # lines that reached the pipe before the kill were committed too; a torn last one not
    lines = rest.split("\n")
    printed += [int(x) for x in lines[:-1] if x]
    with AttendanceStore(path, tz=CET) as s:
        stored = {r.id for r in s.between(None, None)}
        assert set(printed) <= stored
        assert s.integrity_ok()
        new = record(s, "after", T0)
        assert new.id > max(stored)
        assert s.count() == len(stored) + 1


def test_disk_full_is_reported_as_such(tmp_path: Path) -> None:
    """SQLite's max_page_count makes a real SQLITE_FULL without filling the disk."""
    with AttendanceStore(tmp_path / "a.sqlite3", tz=CET) as s:
        first = record(s, "ada", T0)
        conn = s._conn
        assert conn is not None
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(AttendanceError, match="the disk is full") as info:
            for i in range(10_000):
                record(s, f"p{i}", T0 + i, name="x" * 500)
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert s.last_for("ada") == first  # the failed write was rolled back cleanly
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert record(s, "bob", T0).person_id == "bob"  # and the store still works


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (sqlite3.SQLITE_READONLY, "attempt to write a readonly database", "is read-only"),
        (sqlite3.SQLITE_CANTOPEN, "unable to open database file", "cannot open"),
        (sqlite3.SQLITE_BUSY, "database is locked", "stayed locked by another program"),
        (sqlite3.SQLITE_FULL, "database or disk is full", "the disk is full"),
        (sqlite3.SQLITE_NOTADB, "file is not a database", "is not an attendance database"),
    ],
)
def test_sqlite_errors_become_sentences(code: int, text: str, expected: str) -> None:
    """Errors that need a read-only disk or a second process to provoke, mapped by code."""
    from kiosk.attendance.store import _describe

    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    message = _describe(exc, Path("/data/attendance.sqlite3"), "writing to")
    assert expected in message and "/data/attendance.sqlite3" in message


def test_directory_in_the_way_is_an_attendance_error(tmp_path: Path) -> None:
    (tmp_path / "att.sqlite3").mkdir()
    with pytest.raises(AttendanceError, match="attendance database"):
        AttendanceStore(tmp_path / "att.sqlite3")
