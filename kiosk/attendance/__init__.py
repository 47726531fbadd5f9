"""Attendance: check-in records (SQLite), the cooldown recorder, CSV export (no Qt).

``kiosk attendance list|export`` (:mod:`kiosk.attendance.cli`) reads the same file
the kiosk writes; SQLite's WAL mode lets both run at once.
"""

from kiosk.attendance.recorder import AttendanceOutcome, AttendanceRecorder
from kiosk.attendance.store import (
    CSV_COLUMNS,
    AttendanceStore,
    CheckIn,
    export_csv,
    local_day_range,
)

__all__ = [
    "CSV_COLUMNS",
    "AttendanceOutcome",
    "AttendanceRecorder",
    "AttendanceStore",
    "CheckIn",
    "export_csv",
    "local_day_range",
]
