"""The admin's settings editor: every setting, where it came from, and its help.

Values are edited as text and checked exactly like ``KIOSK_*`` variables; saving
writes the settings file atomically only when the whole file is valid (see
:func:`kiosk.settings.save_settings_file`). A value set by an environment
variable cannot be changed here (the variable would win anyway) and says so.
Changes apply at the next start: the running kiosk keeps the settings it was
started with, one settings object for its whole life.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kiosk.errors import ConfigError
from kiosk.settings import Settings, save_settings_file

COLUMNS = ("Setting", "Value", "From")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SettingsDialog(QDialog):
    saved = Signal(Path)

    def __init__(
        self, settings: Settings, config_path: Path, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("FaceKiosk settings")
        self.resize(900, 640)
        self.settings = settings
        self.config_path = config_path
        self._original: dict[str, str] = {}
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter, e.g. camera or threshold")
        self.filter.textChanged.connect(self._apply_filter)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        for key, value, source, help_text in settings.describe():
            row = self.table.rowCount()
            self.table.insertRow(row)
            name = QTableWidgetItem(key)
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            name.setToolTip(help_text)
            item = QTableWidgetItem(_text(value))
            item.setToolTip(help_text)
            origin = QTableWidgetItem(source)
            origin.setFlags(origin.flags() & ~Qt.ItemFlag.ItemIsEditable)
            if source.startswith("env:"):
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(f"Set by {source[4:]}; change it there. {help_text}")
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, item)
            self.table.setItem(row, 2, origin)
            self._original[key] = item.text()
        self.table.resizeColumnToContents(0)
        self.message = QLabel(f"Saved to {config_path}; changes apply at the next start.", self)
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

    def _cell(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            key = self._cell(row, 0)
            self.table.setRowHidden(row, bool(needle) and needle not in key.lower())

    def changes(self) -> dict[str, str]:
        """Edited values, as typed ("section.key" -> text)."""
        edited = {}
        for row in range(self.table.rowCount()):
            key = self._cell(row, 0)
            value = self._cell(row, 1).strip()
            if value != self._original[key]:
                edited[key] = value
        return edited

    def save(self) -> bool:
        changes = self.changes()
        if not changes:
            self.accept()
            return True
        try:
            save_settings_file(self.config_path, changes)
        except ConfigError as exc:
            self.message.setText(f"Not saved: {exc}")
            self.message.setStyleSheet("color:#c0392b;")
            return False
        self.saved.emit(self.config_path)
        self.accept()
        return True
