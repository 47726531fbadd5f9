"""``kiosk attendance list|export``: the check-ins from the command line.

Dates are local calendar days (``2026-12-03``), both ends inclusive, because that
is how people ask ("everyone from Monday to Friday"); full ISO date-times
(``2026-12-03T08:00``, naive = local time, or with an offset) narrow it further.
Registered by :mod:`kiosk.cli`; errors are :class:`~kiosk.errors.KioskError` and
become exit status 1 there; a malformed date is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from kiosk.attendance.store import AttendanceStore, CheckIn, export_csv, local_day_range
from kiosk.errors import AttendanceError
from kiosk.settings import Settings

EXIT_OK, EXIT_ERROR = 0, 1


@dataclass(frozen=True)
class Bound:
    """A ``--from``/``--to`` value: a whole local day, or an exact moment."""

    day: date | None = None
    moment: datetime | None = None


def parse_bound(text: str) -> Bound:
    """argparse ``type=``: ``YYYY-MM-DD`` or an ISO date-time; anything else is a usage error."""
    value = text.strip()
    if len(value) == 10:
        try:
            return Bound(day=date.fromisoformat(value))
        except ValueError:
            pass
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return Bound(moment=moment if moment.tzinfo else moment.astimezone())
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a date: use YYYY-MM-DD (a local day) or an ISO date-time "
        "like 2026-12-03T08:00"
    )


def resolve_range(
    start: Bound | None, end: Bound | None
) -> tuple[datetime | None, datetime | None]:
    """Aware [start, end) bounds: ``--from`` at its day's midnight, ``--to`` inclusive."""
    lo = hi = None
    if start is not None:
        lo = start.moment if start.moment is not None else local_day_range(start.day, None)[0]
    if end is not None:
        if end.moment is not None:
            hi = end.moment + timedelta(microseconds=1)  # inclusive: that moment too
        else:
            hi = local_day_range(None, end.day)[1]
    if lo is not None and hi is not None and lo >= hi:
        raise AttendanceError("--from is after --to; swap them")
    return lo, hi


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    att = sub.add_parser("attendance", help="list or export the recorded check-ins")
    asub = att.add_subparsers(dest="attendance_command", metavar="ACTION", required=True)
    dates = argparse.ArgumentParser(add_help=False)
    dates.add_argument(
        "--from",
        dest="start",
        type=parse_bound,
        metavar="DATE",
        help="first local day (YYYY-MM-DD) or ISO date-time; default: the first record",
    )
    dates.add_argument(
        "--to",
        dest="end",
        type=parse_bound,
        metavar="DATE",
        help="last local day, inclusive (YYYY-MM-DD) or ISO date-time; default: the last record",
    )
    p = asub.add_parser("list", parents=[dates], help="print the check-ins")
    p.add_argument("--json", action="store_true", help="one JSON array of check-ins")
    p = asub.add_parser("export", parents=[dates], help="write the check-ins to a CSV file")
    p.add_argument("--csv", required=True, type=Path, metavar="FILE", help="the CSV to write")


def _rows(settings: Settings, start: Bound | None, end: Bound | None) -> list[CheckIn]:
    lo, hi = resolve_range(start, end)
    path = settings.attendance_db
    if not path.exists():  # reading must not create an empty database as a side effect
        return []
    with AttendanceStore(path) as store:
        return store.between(lo, hi)


def as_dict(r: CheckIn) -> dict[str, object]:
    return {
        "id": r.id,
        "person_id": r.person_id,
        "name": r.name,
        "time_utc": r.time_utc.isoformat(),
        "time_local": r.local_time.isoformat(),
        "distance": r.distance,
        "threshold": r.threshold,
        "kiosk_id": r.kiosk_id,
        "gallery_version": r.gallery_version,
        "model_fingerprint": r.model_fingerprint,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    rows = _rows(settings, args.start, args.end)
    if args.attendance_command == "export":
        target = args.csv.expanduser().resolve()
        written = export_csv(rows, target)
        print(f"wrote {written} check-in{'' if written == 1 else 's'} to {target}")
        return EXIT_OK
    if args.json:
        print(json.dumps([as_dict(r) for r in rows], ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print(f"no check-ins in that range (database: {settings.attendance_db})", file=sys.stderr)
    for r in rows:
        when = r.local_time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{when}  {r.name} ({r.person_id})  distance {r.distance:.3f}  kiosk {r.kiosk_id}")
    return EXIT_OK
