"""Entry script of the PyInstaller bundle (``pyinstaller.spec``): the ``kiosk`` command.

``FaceKiosk`` with no arguments opens the kiosk window, ``FaceKiosk --self-test`` checks
the bundle, and every ``kiosk`` command works the same (``FaceKiosk doctor``).
"""

import multiprocessing
import sys

from kiosk.cli import main

if __name__ == "__main__":
    # A frozen program that starts worker processes (multiprocessing's spawn, on Windows and
    # macOS) re-runs this script in the child; freeze_support() turns that run into the
    # worker instead of a second kiosk. A no-op elsewhere.
    multiprocessing.freeze_support()
    sys.exit(main())
