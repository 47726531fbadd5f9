"""The Qt part of ``kiosk --self-test`` (:mod:`kiosk.selftest` loads this module by name).

It answers "can this installation show the kiosk window?" without showing one: the
self-test runs on kiosks in service (it must not flash a window over the attendance
screen) and on machines with no display at all (CI, an ssh session). So it

- creates the application on Qt's ``offscreen`` platform (unless one already exists),
  and renders a widget with text into a pixmap: PySide6's libraries, the widgets, the
  style and the fonts all load;
- reads the application icon from ``resources/``;
- *loads* the platform plugin the real window uses on this system (``xcb`` on Linux,
  ``windows``, ``cocoa``) with ``QPluginLoader``, which reports a missing system library
  (the usual ``Could not load the Qt platform plugin "xcb"``) as an error string, where
  starting a window on it would abort the process.

A plugin that cannot load is a failure when a display is there to use it
(``$DISPLAY``/``$WAYLAND_DISPLAY`` on Linux, always elsewhere), and a warning on a Linux
machine without one, where no window is expected.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import PySide6
from PySide6.QtCore import QCoreApplication, QLibraryInfo, QPluginLoader, qVersion
from PySide6.QtGui import QFontDatabase, QPixmap
from PySide6.QtWidgets import QApplication, QLabel

_SYSTEM_DEPS_FIX = (
    "install the X11 libraries Qt needs: scripts/system-deps, or apt-get install "
    "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libegl1 libfontconfig1"
)


def check_qt(icon_path: Path) -> tuple[str, str, str]:
    """``(status, detail, fix)`` with status ``ok``, ``warn`` or ``fail``."""
    app = QApplication.instance()
    if app is None:
        # The command-line option wins over $QT_QPA_PLATFORM: never a window, display or not.
        app = QApplication([sys.argv[0] if sys.argv else "FaceKiosk", "-platform", "offscreen"])
    platform = QApplication.platformName()

    label = QLabel("FaceKiosk self-test")
    try:
        label.resize(240, 60)
        rendered = label.grab()
    finally:
        label.deleteLater()
    if rendered.isNull() or rendered.width() < 240:
        return "fail", f"could not render a widget on the {platform} platform", ""
    families = len(QFontDatabase.families())
    if families == 0:
        return (
            "fail",
            "no fonts found: every text in the window would be blank",
            "install fonts (apt-get install fonts-dejavu-core) and fontconfig",
        )

    icon = QPixmap(str(icon_path))
    if icon.isNull():
        return "fail", f"cannot read the icon {icon_path}", "restore resources/icon.png"

    plugin, error = _load_platform_plugin()
    versions = f"PySide6 {PySide6.__version__} (Qt {qVersion()})"
    detail = (
        f"{versions}: widget rendered on {platform}, {families} font families, "
        f"icon {icon.width()}x{icon.height()}"
    )
    if error:
        status = "fail" if _display_expected() else "warn"
        return (
            status,
            f"{detail}; platform plugin {plugin} does not load: {error}",
            (_SYSTEM_DEPS_FIX if sys.platform.startswith("linux") else ""),
        )
    return "ok", f"{detail}, platform plugin {plugin} loads", ""


def _plugin_file() -> tuple[str, str]:
    """The window's platform plugin on this OS: (name, file name)."""
    if sys.platform == "win32":
        return "windows", "qwindows.dll"
    if sys.platform == "darwin":
        return "cocoa", "libqcocoa.dylib"
    return "xcb", "libqxcb.so"


def _load_platform_plugin() -> tuple[str, str]:
    """(plugin name, '' if it loads else why not)."""
    name, filename = _plugin_file()
    folders = [
        QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath),
        *QCoreApplication.libraryPaths(),
    ]
    for folder in folders:
        path = Path(folder) / "platforms" / filename
        if path.is_file():
            loader = QPluginLoader(str(path))
            if loader.load():
                return name, ""
            return name, loader.errorString()
    return name, f"{filename} is not in {', '.join(dict.fromkeys(folders))}"


def _display_expected() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
