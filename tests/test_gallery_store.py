"""The gallery store on its own: atomic add/remove and the writers' lock (no models)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kiosk.recognition import gallery as gallery_module
from kiosk.recognition.gallery import GalleryStore, new_person_id


def test_person_ids_are_safe_folder_names() -> None:
    for name in ("Ada Lovelace", "李小龍", "../../etc/passwd", "Zoë", "   ", "a" * 300):
        pid = new_person_id(name)
        assert pid.isascii() and "/" not in pid and ".." not in pid
        assert len(pid) <= 47
    assert new_person_id("Ada Lovelace").startswith("ada-lovelace-")
    assert new_person_id("李小龍").startswith("person-")
    assert new_person_id("Ada") != new_person_id("Ada")


def test_add_and_remove_leave_no_temporary_files(tmp_path: Path) -> None:
    store = GalleryStore(tmp_path / "g")
    person = store.add_person("Ada", "E-1", [b"jpeg-1", b"jpeg-2", b"jpeg-1"])
    assert [i.file for i in person.images] == [
        f"{gallery_module.sha256_hex(b)[:16]}.jpg" for b in (b"jpeg-1", b"jpeg-2")
    ]  # the duplicate image is stored once
    assert store.get(person.id) == person
    store.remove_person(person.id)
    leftovers = [p for p in (tmp_path / "g").rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []


def test_start_up_recovery_waits_for_an_enrolment_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (here a thread) enrolling must not lose its half-written folder to
    the clean-up a starting kiosk does: both take the gallery lock."""
    root = tmp_path / "g"
    writing = threading.Event()
    real_write = gallery_module.atomic_write_bytes

    def slow_write(path: Path, data: bytes) -> None:
        writing.set()
        time.sleep(0.3)  # the recovery below starts while this enrolment is mid-write
        real_write(path, data)

    monkeypatch.setattr(gallery_module, "atomic_write_bytes", slow_write)
    result: list[object] = []
    enrol = threading.Thread(
        target=lambda: result.append(GalleryStore(root).add_person("Ada", None, [b"x", b"y"]))
    )
    enrol.start()
    assert writing.wait(5)
    assert (root / ".staging").exists()
    GalleryStore(root).recover()  # blocks on the lock until the enrolment is done
    enrol.join(5)
    assert not enrol.is_alive()
    (person,) = result
    assert [p.name for p in GalleryStore(root).list_people()] == ["Ada"]
    assert not (root / ".staging").exists()
    assert person is not None
