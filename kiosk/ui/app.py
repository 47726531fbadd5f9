"""Start the kiosk window: ``kiosk``, ``kiosk --fullscreen``, ``kiosk --source FILE``.

The window is shown before anything heavy is imported (torch, MLflow, DVC load
on ``kiosk-loader`` and the recognition thread), so it appears in about a
second. SIGTERM and SIGINT close it cleanly, attendance mode included: a
service manager or the packaged app's test asks the process to stop, not a
person at the door.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType, TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from kiosk.resources import resources_dir
from kiosk.settings import Settings

log = logging.getLogger(__name__)
TELEMETRY_EXIT_WAIT_S = 15.0


def application() -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    app.setApplicationName("FaceKiosk")
    app.setOrganizationName("FaceKiosk")
    icon = resources_dir() / "icon.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def show_fatal(title: str, message: str) -> None:
    """A message box for errors before the window exists (settings, display)."""
    application()
    QMessageBox.critical(None, title, message)


def run(
    settings: Settings,
    *,
    source: str | None = None,
    fullscreen: bool = False,
    config_path: Path | None = None,
) -> int:
    """Show the main window (or attendance mode) and run Qt's event loop."""
    from kiosk.ui.main_window import MainWindow

    app = application()
    window = MainWindow(settings, source=source, config_path=config_path)
    window.show()
    app.processEvents()  # paint the window before anything else happens
    window.start()  # loads in the background while the admin sets a PIN on first run
    if not window.gate.ensure_pin_set(window) and (fullscreen or settings.ui.fullscreen):
        window.shutdown()
        show_fatal(
            "FaceKiosk",
            "Attendance mode needs an admin PIN (so that only an admin can leave it). "
            "Start FaceKiosk once without --fullscreen and set the PIN.",
        )
        return 1
    if fullscreen or settings.ui.fullscreen:
        window.enter_attendance_mode()

    stop_requested: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop_requested.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    poll = QTimer()
    poll.timeout.connect(lambda: _stop_if_asked(stop_requested, window, app))
    poll.start(200)  # Python signal handlers run only when the interpreter gets control

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error(
            "unexpected error in the window:\n%s",
            "".join(traceback.format_exception(kind, exc, tb)),
        )
        window.show_unexpected_error(f"{kind.__name__}: {exc}")

    old_hook, sys.excepthook = sys.excepthook, excepthook
    try:
        return app.exec()
    finally:
        sys.excepthook = old_hook
        poll.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        window.shutdown()
        # The window is gone; a telemetry thread still opening MLflow gets a little longer
        # to spool its records before the process exits (daemon threads die with it).
        window.controller.finish_telemetry(timeout=TELEMETRY_EXIT_WAIT_S)


def _stop_if_asked(stop_requested: list[int], window: object, app: QApplication) -> None:
    from kiosk.ui.main_window import MainWindow

    if not stop_requested or not isinstance(window, MainWindow):
        return
    log.info("signal %d: closing the kiosk", stop_requested[0])
    stop_requested.clear()
    if window.attendance_window is not None:
        window.leave_attendance_mode()
    window.close()
    app.quit()
