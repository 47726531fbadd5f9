"""What a check-in and a PIN check cost: the work the kiosk does on a decision.

    .venv/bin/python benchmarks/attendance.py [--checkins 500] [--pins 20] [--dir PATH]

A check-in is one committed SQLite row (WAL, synchronous=FULL: an fsync each) plus the
cooldown lookup, as AttendanceRecorder.handle does it on the recognition thread. A PIN
check is one scrypt (n=2^14, r=8, p=1). ``--dir`` puts the database on another disk.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kiosk.admin import AdminAuth
from kiosk.attendance import AttendanceRecorder, AttendanceStore
from kiosk.errors import AdminAuthError
from kiosk.recognition.types import VerificationEvent
from kiosk.settings import AdminSection, settings_for_data_dir


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, max {ms[-1]:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkins", type=int, default=500)
    parser.add_argument("--pins", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="where the database goes (default: a temp dir)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="kiosk-attendance-"))
    settings = settings_for_data_dir(work)
    with AttendanceStore(settings.attendance_db) as store:
        recorder = AttendanceRecorder(store, settings)
        times = []
        for i in range(args.checkins):
            ev = VerificationEvent(
                track_id=i,
                person_id=f"p{i}",  # a new person each time: every event is a new row
                name=f"Person {i}",
                distance=0.5,
                threshold=0.9,
                is_match=True,
                face_confidence=0.99,
                latency_ms=50.0,
                ttv_ms=250.0,
                frame_id=i,
                wall_time=1.7e9 + i,
                box=(0.0, 0.0, 100.0, 100.0),
                votes=2,
            )
            started = time.perf_counter()
            outcome = recorder.handle(ev)
            times.append((time.perf_counter() - started) * 1000)
            assert outcome.kind == "checked_in"
        print(f"check-in (cooldown lookup + committed row), {args.checkins}: {summary(times)}")

    auth = AdminAuth(work / "admin.json", AdminSection(max_attempts=10**6))
    auth.set_pin("2580")
    right, wrong = [], []
    for _ in range(args.pins):
        started = time.perf_counter()
        auth.verify("2580")
        right.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with contextlib.suppress(AdminAuthError):
            auth.verify("9999")
        wrong.append((time.perf_counter() - started) * 1000)
    print(f"right PIN, {args.pins}: {summary(right)}")
    print(f"wrong PIN (counted and saved), {args.pins}: {summary(wrong)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
