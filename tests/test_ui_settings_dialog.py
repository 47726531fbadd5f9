"""The admin's settings editor: edits are validated, saved atomically, env values locked."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from kiosk.settings import load_settings


def row_of(dialog, key: str) -> int:
    for row in range(dialog.table.rowCount()):
        if dialog.table.item(row, 0).text() == key:
            return row
    raise AssertionError(key)


def test_edit_save_and_refuse_a_wrong_value(qtbot, tmp_path: Path) -> None:
    from kiosk.ui.settings_dialog import SettingsDialog

    config = tmp_path / "config.toml"
    env = {"KIOSK_PATHS_DATA_DIR": str(tmp_path / "data"), "KIOSK_CAMERA_SOURCE": "door.mp4"}
    settings = load_settings(env=env, config_path=config)
    dialog = SettingsDialog(settings, config)
    qtbot.addWidget(dialog)

    source = dialog.table.item(row_of(dialog, "camera.source"), 1)
    assert not source.flags() & Qt.ItemFlag.ItemIsEditable  # set by KIOSK_CAMERA_SOURCE
    assert "KIOSK_CAMERA_SOURCE" in source.toolTip()

    dialog.table.item(row_of(dialog, "attendance.cooldown_s"), 1).setText("-5")
    assert not dialog.save()
    assert "out of range" in dialog.message.text() and not config.exists()

    dialog.table.item(row_of(dialog, "attendance.cooldown_s"), 1).setText("600")
    dialog.table.item(row_of(dialog, "ui.screen"), 1).setText("1")
    with qtbot.waitSignal(dialog.saved, timeout=1000):
        assert dialog.save()
    saved = load_settings(env={}, config_path=config)
    assert saved.attendance.cooldown_s == 600.0 and saved.ui.screen == 1
    assert saved.camera.source == "0"  # the environment's value was not written

    dialog.filter.setText("attendance")
    hidden = [dialog.table.isRowHidden(r) for r in range(dialog.table.rowCount())]
    assert hidden.count(False) == 1
