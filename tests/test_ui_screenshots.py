"""Real windows on a real (virtual) X server: the kiosk's three screens, photographed.

Runs tests/screenshot_scene.py under Xvfb with Qt's xcb platform (not offscreen),
so this is the X11 path a kiosk uses: the xcb plugin and its libraries load, the
windows map, fullscreen covers the screen, and ``import -window root`` sees them.
scripts/system-deps installs Xvfb and ImageMagick; scripts/screenshots writes the
README's pictures with the same scene.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.screenshot_scene import KNOWN_RGB, SHOTS, UNKNOWN_RGB, colour_pixels

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_screenshots_of_main_window_registration_and_attendance(tmp_path: Path) -> None:
    missing = [tool for tool in ("xvfb-run", "import") if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: run scripts/system-deps"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env |= {"QT_QPA_PLATFORM": "xcb", "HOME": str(tmp_path)}
    out = subprocess.run(
        [
            *("xvfb-run", "-a", "-s", "-screen 0 1280x800x24"),
            *(sys.executable, "-m", "tests.screenshot_scene", str(tmp_path / "shots")),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    pictures = {}
    for name in SHOTS:
        image = np.asarray(Image.open(tmp_path / "shots" / name).convert("RGB"))
        assert image.shape == (800, 1280, 3), name
        assert image.std() > 20, f"{name} is blank"
        pictures[name] = image.astype(np.int16)
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        diff = np.abs(pictures[SHOTS[a]] - pictures[SHOTS[b]]).mean()
        assert diff > 10, f"{SHOTS[a]} and {SHOTS[b]} look the same"
    # The main window draws a green "known" box and an amber "unknown" one; the attendance
    # screen's welcome card is a large green area.
    shots = tmp_path / "shots"
    assert colour_pixels(shots / "main-window.png", KNOWN_RGB) > 300
    assert colour_pixels(shots / "main-window.png", UNKNOWN_RGB) > 300
    assert colour_pixels(shots / "attendance.png", (30, 132, 73)) > 50_000
