"""FaceKiosk: a face-recognition attendance kiosk.

The package is split so that everything but :mod:`kiosk.ui` runs headless:
:mod:`kiosk.recognition` (detect, align, embed, match), :mod:`kiosk.settings`
(one typed settings object) and :mod:`kiosk.imaging` (safe image decoding).
Importing :mod:`kiosk` itself is cheap: torch is only imported by the modules
that need it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("facekiosk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
