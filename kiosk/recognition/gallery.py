"""The gallery on disk: enrolled people and their images (no torch, no Qt).

Layout under ``gallery.dir``::

    images/<person_id>/person.json      id, display name, staff id, images and their sha256
    images/<person_id>/<sha16>.jpg      enrolment images (EXIF applied, 8-bit RGB, JPEG q95)
    .staging/                           enrolments being written (removed on start-up)
    .lock                               serialises writers across processes

One self-contained folder per person means a person is added or removed by one
directory rename (atomic: a crash never leaves half a person), and two kiosks
that enrol different people touch disjoint paths, which is what lets a fleet
merge their changes (see the gallery sync issue).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import EnrollmentError, GalleryError, PersonNotFoundError
from kiosk.fsutil import atomic_write_bytes, describe_os_error, file_lock, fsync_dir

log = logging.getLogger(__name__)

PERSON_FILE = "person.json"
MAX_STORED_SIDE = 1600
JPEG_QUALITY = 95
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")


@dataclass(frozen=True)
class StoredImage:
    file: str
    sha256: str


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    staff_id: str | None
    created: str
    images: tuple[StoredImage, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "schema": 1,
            "id": self.id,
            "name": self.name,
            "staff_id": self.staff_id,
            "created": self.created,
            "images": [{"file": i.file, "sha256": i.sha256} for i in self.images],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Person:
        images = data["images"]
        if not isinstance(images, list):
            raise ValueError("images must be a list")
        staff = data.get("staff_id")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            staff_id=None if staff is None else str(staff),
            created=str(data.get("created", "")),
            images=tuple(StoredImage(str(i["file"]), str(i["sha256"])) for i in images),
        )


def validate_name(name: str, max_length: int, what: str = "name") -> str:
    """Return the cleaned display name (or staff id: ``what``), or raise saying why not."""

    def refuse(why: str) -> EnrollmentError:
        return EnrollmentError(f"the {what} cannot be used; nothing was enrolled", [(what, why)])

    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise refuse(f"the {what} is empty")
    if len(cleaned) > max_length:
        raise refuse(f"the {what} is {len(cleaned)} characters long; the limit is {max_length}")
    if "/" in cleaned or "\\" in cleaned:
        raise refuse(f"the {what} contains a path separator ('/' or '\\')")
    for ch in cleaned:
        if unicodedata.category(ch).startswith("C"):
            raise refuse(f"the {what} contains a control or invisible character (U+{ord(ch):04X})")
    return cleaned


def new_person_id(name: str) -> str:
    """A safe, unique-enough folder name: an ASCII slug of the name plus 6 random hex digits."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return f"{slug or 'person'}-{secrets.token_hex(3)}"


def encode_for_storage(rgb: np.ndarray) -> bytes:
    """The bytes the gallery stores for an enrolment image (downscaled if huge, JPEG)."""
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_STORED_SIDE:
        f = MAX_STORED_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise GalleryError("OpenCV could not encode the image as JPEG")
    return bytes(buf)


def decode_stored(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise GalleryError("a stored gallery image cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class GalleryStore:
    """Reads and atomically writes the people under one gallery directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images_dir = root / "images"
        self._staging = root / ".staging"
        self._lock_path = root / ".lock"

    def person_dir(self, person_id: str) -> Path:
        if not _ID_RE.match(person_id):
            raise PersonNotFoundError(f"'{person_id}' is not a valid person id")
        return self.images_dir / person_id

    def recover(self) -> None:
        """Remove what a crashed enrolment or removal left behind (never a whole person)."""
        for leftover in (self._staging, self.root / ".trash"):
            if leftover.exists():
                with file_lock(self._lock_path):
                    shutil.rmtree(leftover, ignore_errors=True)

    def list_people(self) -> list[Person]:
        people: list[Person] = []
        if not self.images_dir.is_dir():
            return people
        for entry in sorted(self.images_dir.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                people.append(self._read_person(entry))
            except GalleryError as exc:
                log.warning("skipping %s: %s", entry, exc)
        return people

    def get(self, person_id: str) -> Person:
        folder = self.person_dir(person_id)
        if not folder.is_dir():
            raise PersonNotFoundError(f"no enrolled person has the id '{person_id}'")
        return self._read_person(folder)

    def _read_person(self, folder: Path) -> Person:
        meta = folder / PERSON_FILE
        try:
            person = Person.from_json(json.loads(meta.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise GalleryError(f"{folder} has no {PERSON_FILE}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GalleryError(f"{meta} is unreadable or invalid: {exc}") from exc
        if person.id != folder.name:
            raise GalleryError(f"{meta} names id '{person.id}' but lives in '{folder.name}'")
        return person

    def image_path(self, person: Person, image: StoredImage) -> Path:
        return self.images_dir / person.id / image.file

    def add_person(self, name: str, staff_id: str | None, encoded: list[bytes]) -> Person:
        """Write a new person with these (already encoded) images in one atomic step."""
        if not encoded:
            raise EnrollmentError("no images to enrol")
        with file_lock(self._lock_path):
            person_id = new_person_id(name)
            while (self.images_dir / person_id).exists():
                person_id = new_person_id(name)
            work = self._staging / f"{person_id}.{secrets.token_hex(4)}"
            try:
                work.mkdir(parents=True)
                images = []
                for data in encoded:
                    digest = sha256_hex(data)
                    stored = StoredImage(f"{digest[:16]}.jpg", digest)
                    if stored not in images:
                        atomic_write_bytes(work / stored.file, data)
                        images.append(stored)
                person = Person(
                    id=person_id,
                    name=name,
                    staff_id=staff_id or None,
                    created=datetime.now(UTC).isoformat(timespec="seconds"),
                    images=tuple(images),
                )
                text = json.dumps(person.to_json(), indent=2, ensure_ascii=False) + "\n"
                atomic_write_bytes(work / PERSON_FILE, text.encode("utf-8"))
                self.images_dir.mkdir(parents=True, exist_ok=True)
                work.rename(self.images_dir / person_id)
                fsync_dir(self.images_dir)
            except OSError as exc:
                raise GalleryError(describe_os_error(exc, f"the gallery at {self.root}")) from exc
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return person

    def remove_person(self, person_id: str) -> Person:
        """Delete a person and their images (one rename, then the files)."""
        with file_lock(self._lock_path):
            person = self.get(person_id)
            trash = self.root / ".trash" / f"{person_id}.{secrets.token_hex(4)}"
            try:
                trash.parent.mkdir(parents=True, exist_ok=True)
                self.person_dir(person_id).rename(trash)
                fsync_dir(self.images_dir)
            except OSError as exc:
                raise GalleryError(describe_os_error(exc, f"the gallery at {self.root}")) from exc
            shutil.rmtree(trash, ignore_errors=True)
        return person
