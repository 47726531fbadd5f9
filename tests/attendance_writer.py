"""Child process for the SIGKILL test: records check-ins in a loop, printing each committed id.

Run as ``python -m tests.attendance_writer DB``. An id is printed (and flushed) only
after :meth:`AttendanceStore.record` returned, i.e. after the commit was fsynced;
the test kills this process at an arbitrary moment and then expects every printed
id in the database.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta, timezone
from pathlib import Path

from kiosk.attendance import AttendanceStore


def main() -> None:
    store = AttendanceStore(Path(sys.argv[1]), tz=timezone(timedelta(hours=1)))
    i = 0
    while True:  # until killed
        record = store.record(
            f"person-{i % 7}",
            f'Person «{i}», "quoted"',
            wall_time=time.time(),
            distance=0.5,
            threshold=0.9,
            kiosk_id="child",
            gallery_version="v1",
            model_fingerprint="abc",
        )
        print(record.id, flush=True)
        i += 1


if __name__ == "__main__":
    main()
