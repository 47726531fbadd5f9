"""``kiosk attendance list|export`` end to end through kiosk.cli.main."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kiosk.attendance import AttendanceStore
from kiosk.cli import main
from tests.attendance_helpers import berlin_time, fill, local_ts  # noqa: F401

pytestmark = pytest.mark.usefixtures("berlin_time")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(data))
    monkeypatch.setenv("KIOSK_KIOSK_ID", "north")
    with AttendanceStore(data / "attendance.sqlite3") as store:
        fill(
            store,
            [
                ("ada", "Lovelace, Ada", local_ts(2026, 12, 1, 23, 59, 59)),
                ("grace", "=cmd|' /C calc'!A0", local_ts(2026, 12, 2, 0, 0, 0)),
                ("ada", "Lovelace, Ada", local_ts(2026, 12, 2, 8, 57, 0)),
                ("linus", "Linus 🐧", local_ts(2026, 12, 3, 0, 0, 0)),
            ],
            distance=0.5,
        )
    return data


def test_export_one_day_inclusive(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.csv"
    code = main(
        ["attendance", "export", "--from", "2026-12-02", "--to", "2026-12-02", "--csv", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote 2 check-ins to {out}" in captured.out
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["person_id"], r["time_local"]) for r in rows] == [
        ("grace", "00:00:00"),
        ("ada", "08:57:00"),
    ]
    assert rows[0]["name"].startswith("'=")  # formula injection defused
    assert rows[1]["name"] == "Lovelace, Ada" and rows[1]["date_local"] == "2026-12-02"
    assert rows[0]["time_utc"] == "2026-12-01T23:00:00Z"  # Berlin is UTC+1 in December


def test_export_unbounded_and_open_ended(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "all.csv"
    assert main(["attendance", "export", "--csv", str(out)]) == 0
    assert "wrote 4 check-ins" in capsys.readouterr().out
    assert main(["attendance", "export", "--from", "2026-12-02", "--csv", str(out)]) == 0
    assert "wrote 3 check-ins" in capsys.readouterr().out
    assert main(["attendance", "export", "--to", "2026-12-01", "--csv", str(out)]) == 0
    assert "wrote 1 check-in " in capsys.readouterr().out


def test_list_json_with_datetimes(data_dir: Path, capsys) -> None:
    code = main(
        ["attendance", "list", "--from", "2026-12-02T08:00", "--to", "2026-12-02T08:57", "--json"]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["person_id"] for r in rows] == ["ada"]  # --to date-time is inclusive
    assert rows[0]["name"] == "Lovelace, Ada" and rows[0]["kiosk_id"] == "north"


def test_list_text(data_dir: Path, capsys) -> None:
    assert main(["attendance", "list", "--from", "2026-12-03"]) == 0
    out = capsys.readouterr().out
    assert "2026-12-03 00:00:00  Linus 🐧 (linus)" in out and "ada" not in out


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "03/12/2026"])
def test_bad_date_is_a_usage_error(data_dir: Path, capsys, bad: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["attendance", "list", "--from", bad])
    assert info.value.code == 2
    assert "is not a date: use YYYY-MM-DD" in capsys.readouterr().err


def test_reversed_range_is_an_error(data_dir: Path, capsys) -> None:
    assert main(["attendance", "list", "--from", "2026-12-03", "--to", "2026-12-01"]) == 1
    assert "--from is after --to" in capsys.readouterr().err


def test_no_database_yet_lists_nothing_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    data = tmp_path / "empty"
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(data))
    assert main(["attendance", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not (data / "attendance.sqlite3").exists()


def test_corrupt_database_is_exit_1(data_dir: Path, tmp_path: Path, capsys) -> None:
    db = data_dir / "attendance.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    db.write_bytes(b"garbage" * 1000)
    assert main(["attendance", "export", "--csv", str(tmp_path / "x.csv")]) == 1
    assert "is not an attendance database" in capsys.readouterr().err
