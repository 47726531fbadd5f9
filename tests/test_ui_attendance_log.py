"""The attendance log dialog: date filter, export through the admin gate (offscreen Qt)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import QDate
from PySide6.QtWidgets import QDialog

from kiosk.admin import AdminAuth, AuditLog
from kiosk.attendance import AttendanceStore
from kiosk.settings import AdminSection, settings_for_data_dir
from kiosk.ui.admin_dialogs import AdminGate, PinDialog
from kiosk.ui.attendance_log import AttendanceLogDialog
from tests.attendance_helpers import berlin_time, fill, local_ts  # noqa: F401

TODAY = date(2026, 12, 3)


pytestmark = pytest.mark.usefixtures("berlin_time")


@pytest.fixture
def store(tmp_path: Path):
    with AttendanceStore(tmp_path / "att.sqlite3") as s:
        fill(
            s,
            [
                ("ada", "Ada Lovelace", local_ts(2026, 12, 2, 23, 59, 59)),
                ("grace", 'Grace, "Amazing" Hopper', local_ts(2026, 12, 3, 0, 0, 0)),
                ("linus", "=Linus", local_ts(2026, 12, 3, 8, 57, 0)),
                ("ada", "Ada Lovelace", local_ts(2026, 12, 4, 0, 0, 0)),
            ],
            distance=0.4321,
        )
        yield s


class PinRunner:
    """Answers the gate's PIN dialog with ``pin`` (or cancels with ``None``)."""

    def __init__(self, pin: str | None) -> None:
        self.pin = pin
        self.calls = 0

    def __call__(self, dialog: QDialog) -> int:
        self.calls += 1
        assert isinstance(dialog, PinDialog)
        if self.pin is None:
            dialog.reject()
        else:
            dialog.edit.setText(self.pin)
            dialog.submit()
        return int(dialog.result())


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl", "north")


def gate_for(tmp_path: Path, audit: AuditLog, runner: PinRunner) -> AdminGate:
    auth = AdminAuth(tmp_path / "admin.json", AdminSection())
    if not auth.is_set():
        auth.set_pin("2580")
    settings = settings_for_data_dir(tmp_path / "data")
    return AdminGate(auth, audit, settings, dialog_runner=runner)


def cells(dialog: AttendanceLogDialog, column: int) -> list[str]:
    return [dialog.table.item(r, column).text() for r in range(dialog.table.rowCount())]


def test_defaults_to_today_and_filters(qtbot, store, tmp_path: Path, audit: AuditLog) -> None:
    gate = gate_for(tmp_path, audit, PinRunner("2580"))
    dialog = AttendanceLogDialog(store, gate, today=lambda: TODAY)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.from_edit.date() == QDate(2026, 12, 3) == dialog.to_edit.date()
    assert cells(dialog, 1) == ["grace", "linus"]  # local midnight belongs to its day
    assert cells(dialog, 2) == ["2026-12-03 00:00:00", "2026-12-03 08:57:00"]
    assert cells(dialog, 3) == ["0.432", "0.432"] and cells(dialog, 4) == ["north", "north"]
    assert dialog.count_label.text() == "2 check-ins"

    dialog.from_edit.setDate(QDate(2026, 12, 2))  # editing a date refreshes
    assert cells(dialog, 1) == ["ada", "grace", "linus"]
    dialog.set_range(date(2026, 12, 4), date(2026, 12, 4))
    assert cells(dialog, 0) == ["Ada Lovelace"] and dialog.count_label.text() == "1 check-in"
    dialog.set_range(date(2026, 12, 5), date(2026, 12, 1))
    assert dialog.table.rowCount() == 0 and "'From' is after 'To'" in dialog.status.text()
    assert not dialog.export_button.isEnabled()


def test_refresh_picks_up_new_records(qtbot, store, tmp_path: Path, audit: AuditLog) -> None:
    gate = gate_for(tmp_path, audit, PinRunner("2580"))
    dialog = AttendanceLogDialog(store, gate, today=lambda: TODAY)
    qtbot.addWidget(dialog)
    store.record(
        "new",
        "Newcomer",
        wall_time=local_ts(2026, 12, 3, 12, 0, 0),
        distance=0.5,
        threshold=0.9,
        kiosk_id="south",
        gallery_version=None,
        model_fingerprint=None,
    )
    assert dialog.table.rowCount() == 2
    dialog.refresh_button.click()
    assert cells(dialog, 1) == ["grace", "linus", "new"]


def test_export_through_the_gate(qtbot, store, tmp_path: Path, audit: AuditLog) -> None:
    runner = PinRunner("2580")
    gate = gate_for(tmp_path, audit, runner)
    target = tmp_path / "exports" / "today.csv"
    dialog = AttendanceLogDialog(
        store, gate, choose_csv_path=lambda parent: target, today=lambda: TODAY
    )
    qtbot.addWidget(dialog)
    dialog.export_button.click()
    assert runner.calls == 1
    assert dialog.status.text() == f"Exported 2 check-ins to {target}."
    with target.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ['Grace, "Amazing" Hopper', "'=Linus"]
    assert [r["date_local"] for r in rows] == ["2026-12-03", "2026-12-03"]
    actions = [(e["action"], e["ok"]) for e in audit.read()]
    assert actions == [("admin.unlock", True), ("attendance.export", True)]


def test_export_refused_without_pin(qtbot, store, tmp_path: Path, audit: AuditLog) -> None:
    chosen: list[bool] = []
    gate = gate_for(tmp_path, audit, PinRunner(None))

    def chooser(parent):
        chosen.append(True)
        return tmp_path / "x.csv"

    dialog = AttendanceLogDialog(store, gate, choose_csv_path=chooser, today=lambda: TODAY)
    qtbot.addWidget(dialog)
    dialog.export()
    assert chosen == [] and not (tmp_path / "x.csv").exists()
    assert "needs the admin PIN" in dialog.status.text()


def test_export_error_is_shown_not_raised(qtbot, store, tmp_path: Path, audit: AuditLog) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    gate = gate_for(tmp_path, audit, PinRunner("2580"))
    dialog = AttendanceLogDialog(
        store, gate, choose_csv_path=lambda parent: blocker / "out.csv", today=lambda: TODAY
    )
    qtbot.addWidget(dialog)
    dialog.export()
    assert dialog.status.text().startswith("Export failed: cannot export")
    assert audit.read()[-1]["action"] == "attendance.export" and not audit.read()[-1]["ok"]


def test_unreadable_store_is_shown(qtbot, store, tmp_path: Path, audit: AuditLog) -> None:
    gate = gate_for(tmp_path, audit, PinRunner("2580"))
    dialog = AttendanceLogDialog(store, gate, today=lambda: TODAY)
    qtbot.addWidget(dialog)
    store.close()
    dialog.refresh()
    assert dialog.table.rowCount() == 0
    assert "Cannot read the attendance records" in dialog.status.text()
