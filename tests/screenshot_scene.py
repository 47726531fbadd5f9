"""Real X11 screenshots of the kiosk: main window, registration dialog, attendance mode.

Run under a virtual X server (``scripts/screenshots`` does, and so does
tests/test_ui_screenshots.py)::

    xvfb-run -a -s "-screen 0 1280x800x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python -m tests.screenshot_scene OUT_DIR

The scene is the test suite's: a video written with OpenCV of two faces made
from ``skimage.data.astronaut()`` (one enrolled as "Ada Lovelace", one with its
colours swapped, a stranger) and FaceNet with seeded random weights (the real
ones cannot be downloaded here), so the names and distances in the pictures
come from the real pipeline but not from a trained model. Each picture is
taken with ImageMagick's ``import -window root``: what the X server shows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SIZE = (1280, 720)
SHOTS = ("main-window.png", "registration.png", "attendance.png")


def make_video(path: Path, astronaut: np.ndarray, *, stranger: bool, frames: int = 60) -> Path:
    """Ada walking in from the left and, with ``stranger``, someone unknown on the right."""
    from tests.video import face_patch, scene, write_video

    ada = face_patch(astronaut, 300)
    other = face_patch(astronaut, 240, swapped=True)
    return write_video(
        path,
        [
            scene(SIZE, [(ada, 330 + 3 * i, 180)] + [(other, 900 - 2 * i, 300)] * stranger)
            for i in range(frames)
        ],
        fps=15,
    )


def pump(app: object, condition: Callable[[], bool], timeout: float, what: str) -> None:
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app: object, seconds: float) -> None:
    end = time.monotonic() + seconds
    pump(app, lambda: time.monotonic() > end, seconds + 1, "the screen to settle")


KNOWN_RGB, UNKNOWN_RGB = (46, 204, 113), (243, 156, 18)  # kiosk.ui.video.STATE_COLOURS


def colour_pixels(path: Path, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the picture at ``path`` are (nearly) ``rgb``."""
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
    return int((np.abs(image - rgb).sum(axis=2) < 30).sum())


def screenshot(path: Path) -> None:
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=30)
    print(f"wrote {path}", flush=True)


def screenshot_until(
    app: object, path: Path, good: Callable[[Path], bool], tries: int = 10
) -> None:
    """Take the picture again (the video keeps playing) until ``good`` says it shows
    what it should: a live screen changes between deciding to take it and taking it."""
    for _ in range(tries):
        screenshot(path)
        if good(path):
            return
        settle(app, 0.3)
    raise TimeoutError(f"{path.name}: not once in {tries} tries did it show what it should")


def main(out: Path) -> int:
    from skimage import data

    from kiosk.admin import AdminAuth
    from kiosk.recognition.recognizer import Recognizer
    from kiosk.settings import (
        CameraSection,
        KioskSection,
        RecognitionSection,
        settings_for_data_dir,
    )
    from kiosk.ui.app import application
    from kiosk.ui.main_window import MainWindow
    from kiosk.ui.registration import RegistrationDialog
    from tests.video import face_patch, scene
    from tests.weights import write_random_facenet

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kiosk-shots-"))
    astronaut = np.ascontiguousarray(data.astronaut())
    settings = settings_for_data_dir(
        work / "data",
        kiosk=KioskSection(id="front-door"),
        recognition=RecognitionSection(
            weights_path=write_random_facenet(work / "facenet.pt"), threshold=0.15
        ),
        camera=CameraSection(loop_files=True),
    )
    AdminAuth(settings.admin_file, settings.admin).set_pin("2468")
    recognizer = Recognizer.create(settings)
    still = scene(SIZE, [(face_patch(astronaut, 300), 420, 180)])
    recognizer.enroll("Ada Lovelace", [("still", still)], staff_id="E-17")

    app = application()
    door = make_video(work / "door.avi", astronaut, stranger=True)
    window = MainWindow(settings, source=str(door), recognizer=recognizer)
    window.setGeometry(0, 0, 1280, 800)
    window.show()
    window.start()
    try:
        pump(app, lambda: window.recent.count() >= 2, 120, "two verifications")
        pump(
            app,
            lambda: window.status_labels["telemetry"].text() == "Telemetry: ok",
            120,
            "telemetry to connect",
        )
        window.refresh_status()

        def both_overlays() -> bool:
            result = window.video.result
            return result is not None and {f.state for f in result.faces} >= {"known", "unknown"}

        pump(app, both_overlays, 60, "a known and an unknown face on screen")
        screenshot_until(
            app,
            out / SHOTS[0],
            lambda p: colour_pixels(p, KNOWN_RGB) > 300 and colour_pixels(p, UNKNOWN_RGB) > 300,
        )

        # Registration and check-in: one person in front of the camera.
        window.switch_source(str(make_video(work / "ada.avi", astronaut, stranger=False)))
        pump(app, lambda: window.camera_state == "live", 60, "the new source")

        dialog = RegistrationDialog(
            settings, window.controller.submit, window.controller.latest_frame, window
        )
        dialog.name_edit.setText("Grace Hopper")
        dialog.staff_edit.setText("E-42")
        dialog.setGeometry(160, 40, 960, 720)
        dialog.show()
        for _ in range(3):
            pump(app, dialog.can_capture, 60, "a face good enough to capture")
            dialog.capture()
        pump(app, dialog.can_capture, 60, "the guidance to settle")
        settle(app, 0.5)
        screenshot(out / SHOTS[1])
        dialog.reject()

        window.enter_attendance_mode()
        screen = window.attendance_window
        assert screen is not None
        pump(app, lambda: screen.banner_kind == "checked_in", 120, "a welcome")
        settle(app, 0.5)
        screenshot(out / SHOTS[2])
        window.leave_attendance_mode()
    finally:
        window.shutdown(timeout=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
