"""FaceKiosk's exception hierarchy.

Every error the kiosk raises on purpose derives from :class:`KioskError`, carries
one sentence a person can act on, and is raised ``from`` the library error
(OpenCV, Pillow, torch, ...) that caused it, so logs keep the full chain::

    KioskError
     ├── ConfigError            a settings file or KIOSK_* variable is wrong
     ├── ImageError             an image cannot be used
     │    ├── ImageDecodeError      not an image, corrupt, truncated, empty
     │    └── ImageTooLargeError    over the pixel or byte limit (refused before decoding)
     ├── ModelLoadError         a network's weights cannot be found or loaded
     ├── DetectionOnlyError     an operation needs FaceNet but only detection is available
     ├── EnrollmentError        enrolment refused; nothing was written
     │    └── DuplicateFaceError    the face is already enrolled under another name
     ├── GalleryError           the gallery on disk cannot be read or written
     │    ├── PersonNotFoundError
     │    └── GallerySyncError      the gallery registry (git/DVC) cannot be synced or published
     ├── CameraError            a frame source cannot be opened or read
     ├── TelemetryError         MLflow cannot be reached or refused the metrics
     ├── AttendanceError        the attendance records cannot be read, written or exported
     └── AdminAuthError         the admin PIN is wrong, not set, or cannot be stored
          └── AdminLockedError      too many wrong PINs; locked for a while

The CLI (and later the UI) is the edge that turns these into messages; the core
never prints.
"""

from __future__ import annotations

from collections.abc import Sequence


class KioskError(Exception):
    """Base class of every error FaceKiosk raises on purpose."""


class ConfigError(KioskError):
    """A setting is unknown, of the wrong type, or out of range."""


class ImageError(KioskError):
    """An image cannot be used."""


class ImageDecodeError(ImageError):
    """The file is not an image we can decode (corrupt, truncated, empty, unknown format)."""


class ImageTooLargeError(ImageError):
    """The image is over the configured pixel or byte limit; it was not decoded."""


class _ItemisedError(KioskError):
    """An error with a list of (what, why) pairs, printed one per line under the message."""

    def __init__(self, message: str, items: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.items = list(items)

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  - {what}: {why}" for what, why in self.items)])


class ModelLoadError(_ItemisedError):
    """A model's weights could not be found or loaded.

    ``tried`` lists every place that was looked at, each with why it failed, so
    ``kiosk doctor`` and the UI can show the whole search and the fix.
    """

    @property
    def tried(self) -> list[tuple[str, str]]:
        return self.items


class DetectionOnlyError(KioskError):
    """Recognition was asked for, but FaceNet weights are not loaded."""


class EnrollmentError(_ItemisedError):
    """Enrolment was refused; the gallery is unchanged.

    ``problems`` maps each rejected input (an image path or ``"name"``) to its reason.
    """

    @property
    def problems(self) -> list[tuple[str, str]]:
        return self.items


class DuplicateFaceError(EnrollmentError):
    """The face already matches someone enrolled, and the policy is to refuse."""


class GalleryError(KioskError):
    """The gallery on disk cannot be read or written."""


class PersonNotFoundError(GalleryError):
    """No enrolled person has that id."""


class GallerySyncError(GalleryError):
    """The gallery registry (git + DVC) could not be cloned, pulled or published."""


class CameraError(KioskError):
    """A frame source (camera, video file, stream URL) cannot be opened or read."""


class TelemetryError(KioskError):
    """MLflow could not be reached, or it refused the metrics."""


class AttendanceError(KioskError):
    """The attendance database cannot be opened, written, queried or exported."""


class AdminAuthError(KioskError):
    """The admin PIN is wrong or not set, or the PIN file cannot be read or written."""


class AdminLockedError(AdminAuthError):
    """Too many wrong PINs in a row; admin access is locked until ``until`` (epoch s)."""

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message)
        self.until = until
