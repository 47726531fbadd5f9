"""The attendance log: check-ins of a range of days, and their export to CSV.

Viewing is for whoever operates the kiosk; exporting (the data leaves the kiosk)
goes through the admin gate. Every failure (database unreadable, disk full,
folder not writable) is shown in the dialog's status line, never raised into Qt's
event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kiosk.attendance.store import AttendanceStore, CheckIn, export_csv, local_day_range
from kiosk.errors import KioskError
from kiosk.ui.admin_dialogs import AdminGate

log = logging.getLogger(__name__)

COLUMNS = ("Name", "Person ID", "Date / time (local)", "Distance", "Kiosk")
CsvChooser = Callable[[QWidget], Path | None]


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def _pydate(qdate: QDate) -> date:
    return date(qdate.year(), qdate.month(), qdate.day())


def ask_csv_path(parent: QWidget) -> Path | None:
    """Ask where to save the CSV (a file dialog); ``None`` when cancelled."""
    name, _ = QFileDialog.getSaveFileName(
        parent, "Export attendance", "attendance.csv", "CSV files (*.csv)"
    )
    if not name:
        return None
    path = Path(name)
    return path if path.suffix.lower() == ".csv" else path.with_suffix(path.suffix + ".csv")


class AttendanceLogDialog(QDialog):
    """Check-ins between two local days (both inclusive), with a CSV export."""

    def __init__(
        self,
        store: AttendanceStore,
        gate: AdminGate,
        parent: QWidget | None = None,
        *,
        choose_csv_path: CsvChooser | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._gate = gate
        self._choose = choose_csv_path or ask_csv_path
        self._rows: list[CheckIn] = []
        self.setWindowTitle("Attendance")
        self.resize(760, 480)

        self.from_edit = QDateEdit(_qdate(today()))
        self.to_edit = QDateEdit(_qdate(today()))
        for edit in (self.from_edit, self.to_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.dateChanged.connect(self.refresh)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.count_label = QLabel()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.export)
        self.status = QLabel()
        self.status.setObjectName("attendanceStatus")
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel("From"))
        top.addWidget(self.from_edit)
        top.addWidget(QLabel("To"))
        top.addWidget(self.to_edit)
        top.addWidget(self.refresh_button)
        top.addStretch(1)
        top.addWidget(self.count_label)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addLayout(bottom)
        self.refresh()

    @property
    def rows(self) -> list[CheckIn]:
        """The check-ins shown now."""
        return list(self._rows)

    def set_range(self, first: date, last: date) -> None:
        """Show the local days ``first`` .. ``last`` (the date edits follow)."""
        for edit, day in ((self.from_edit, first), (self.to_edit, last)):
            edit.blockSignals(True)
            edit.setDate(_qdate(day))
            edit.blockSignals(False)
        self.refresh()

    def refresh(self) -> None:
        first, last = _pydate(self.from_edit.date()), _pydate(self.to_edit.date())
        self._set_status("")
        if first > last:
            self._fill([])
            self._set_status("'From' is after 'To'.", error=True)
            return
        start, end = local_day_range(first, last)
        try:
            rows = self._store.between(start, end)
        except KioskError as exc:
            log.warning("cannot read attendance: %s", exc)
            self._fill([])
            self._set_status(f"Cannot read the attendance records: {exc}", error=True)
            return
        self._fill(rows)

    def _fill(self, rows: list[CheckIn]) -> None:
        self._rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (
                r.name,
                r.person_id,
                r.local_time.strftime("%Y-%m-%d %H:%M:%S"),
                f"{r.distance:.3f}",
                r.kiosk_id,
            )
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        n = len(rows)
        self.count_label.setText(f"{n} check-in{'' if n == 1 else 's'}")
        self.export_button.setEnabled(n > 0)

    def export(self) -> None:
        """Export the rows shown, after the admin PIN, to a CSV chosen by the admin."""
        if not self._rows:
            self._set_status("Nothing to export in this range.", error=True)
            return
        if not self._gate.require(self, "export attendance"):
            self._set_status("Export cancelled: it needs the admin PIN.", error=True)
            return
        path = self._choose(self)
        if path is None:
            return
        try:
            written = export_csv(self._rows, path)
        except KioskError as exc:
            log.warning("attendance export failed: %s", exc)
            self._gate.audit.write("attendance.export", ok=False, detail=str(exc))
            self._set_status(f"Export failed: {exc}", error=True)
            return
        self._gate.audit.write("attendance.export", detail=f"{written} check-ins to {path}")
        self._set_status(f"Exported {written} check-in{'' if written == 1 else 's'} to {path}.")

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "")
