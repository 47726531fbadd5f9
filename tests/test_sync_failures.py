"""Sync never leaves a kiosk on a half-updated gallery: offline, interrupted, tampered."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.sync import (
    GallerySync,
    current_gallery_version,
    pending_changes,
    publish,
    sync_gallery,
)
from kiosk.sync import sync as sync_module
from kiosk.sync._git import git
from kiosk.sync.registry import read_state
from tests.sync_helpers import Fleet, enrol_bytes, people_on_disk

pytest_plugins = ["tests.sync_support"]


@pytest.fixture
def two_kiosks(fleet: Fleet):
    """Kiosk A published Ada; kiosk B synced her. Returns (a, b, ada_id, version)."""
    a, b = fleet.kiosk("north"), fleet.kiosk("south")
    assert sync_gallery(a).state == "synced"
    ada = enrol_bytes(a, "Ada")
    assert publish(a).published
    status = sync_gallery(b)
    assert status.state == "synced"
    assert people_on_disk(b) == {ada}
    return a, b, ada, status.version


def _storage_objects(storage: str) -> list[Path]:
    return sorted(p for p in Path(storage).rglob("*") if p.is_file())


def test_no_registry_configured_is_local_only(settings) -> None:
    status = sync_gallery(settings)
    assert status.state == "local"
    assert "local-only" in status.text
    assert current_gallery_version(settings) is None


def test_registry_folder_missing_keeps_last_version_offline(fleet: Fleet, two_kiosks) -> None:
    a, b, ada, version = two_kiosks
    bob = enrol_bytes(a, "Bob")
    assert publish(a).published
    fleet.registry.rename(fleet.root / "registry-gone")
    seen = []
    sync = GallerySync(b, seen.append)
    sync.start()
    status = sync.wait_first(60)
    assert sync.stop(5)
    assert status.state == "offline"
    assert status.text == f"offline: using {version} from {status.date}"
    assert people_on_disk(b) == {ada}
    assert bob not in people_on_disk(b)
    assert current_gallery_version(b) == version
    # Back online: the next sync brings Bob.
    (fleet.root / "registry-gone").rename(fleet.registry)
    status = sync_gallery(b)
    assert status.state == "synced" and status.changed
    assert people_on_disk(b) == {ada, bob}


def test_storage_folder_missing_changes_nothing(fleet: Fleet, two_kiosks) -> None:
    a, b, ada, version = two_kiosks
    head_before = git(b.gallery.dir, "rev-parse", "HEAD")
    bob = enrol_bytes(a, "Bob")
    assert publish(a).published
    storage = Path(fleet.storage)
    storage.rename(storage.with_name("storage-gone"))
    status = sync_gallery(b)
    assert status.state == "offline", status
    assert "storage" in status.message
    assert status.version == version
    assert git(b.gallery.dir, "rev-parse", "HEAD") == head_before
    assert not (b.gallery.dir / "images" / f"{bob}.dvc").exists()
    assert people_on_disk(b) == {ada}


def test_pull_interrupted_part_way_keeps_previous_version(fleet: Fleet, two_kiosks) -> None:
    a, b, ada, version = two_kiosks
    before = set(_storage_objects(fleet.storage))
    bob = enrol_bytes(a, "Bob")
    carol = enrol_bytes(a, "Carol")
    assert publish(a).published
    new_objects = sorted(set(_storage_objects(fleet.storage)) - before)
    assert len(new_objects) >= 4
    new_objects[-1].unlink()  # the download stops part way: one object never arrives
    status = sync_gallery(b)
    assert status.state in ("offline", "error"), status
    assert status.version == version
    assert current_gallery_version(b) == version
    assert people_on_disk(b) == {ada}
    assert not {bob, carol} & {p.stem for p in (b.gallery.dir / "images").glob("*.dvc")}


def test_crash_while_switching_returns_to_previous_version(
    fleet: Fleet, two_kiosks, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, ada, version = two_kiosks
    bob = enrol_bytes(a, "Bob")
    assert publish(a).published

    class PowerCut(BaseException):
        pass

    def crash(*_args: object, **_kwargs: object) -> None:
        raise PowerCut

    monkeypatch.setattr(sync_module, "_checkout", crash)
    with pytest.raises(PowerCut):
        sync_gallery(b)
    assert not read_state(b).complete
    assert current_gallery_version(b) is None  # never reported while half-switched
    monkeypatch.undo()
    # Next start, registry unreachable: back on the last complete version.
    fleet.registry.rename(fleet.root / "registry-gone")
    status = sync_gallery(b)
    assert status.state == "offline"
    assert status.version == version
    assert read_state(b).complete
    assert people_on_disk(b) == {ada}
    assert pending_changes(b).empty
    (fleet.root / "registry-gone").rename(fleet.registry)
    assert sync_gallery(b).state == "synced"
    assert people_on_disk(b) == {ada, bob}


def _cache_file_of(settings, person_id: str) -> Path:
    import json

    import yaml

    clone = settings.gallery.dir
    md5 = yaml.safe_load((clone / "images" / f"{person_id}.dvc").read_text())["outs"][0]["md5"]
    cache = clone / ".dvc" / "cache" / "files" / "md5"
    manifest = json.loads((cache / md5[:2] / md5[2:]).read_text())
    jpg = next(e["md5"] for e in manifest if e["relpath"].endswith(".jpg"))
    return cache / jpg[:2] / jpg[2:]


def test_tampered_cache_file_is_detected_and_fetched_again(two_kiosks) -> None:
    _a, b, ada, _version = two_kiosks
    cached = _cache_file_of(b, ada)
    good = cached.read_bytes()
    cached.chmod(0o644)
    cached.write_bytes(b"tampered" + good[8:])
    status = sync_gallery(b)
    assert status.state == "synced"
    assert cached.read_bytes() == good  # found by its checksum and downloaded again


def test_tampered_cache_and_storage_is_reported(fleet: Fleet, two_kiosks) -> None:
    _a, b, ada, version = two_kiosks
    cached = _cache_file_of(b, ada)
    remote = Path(fleet.storage) / cached.relative_to(b.gallery.dir / ".dvc" / "cache")
    for path in (cached, remote):
        path.chmod(0o644)
        path.write_bytes(b"tampered")
    status = sync_gallery(b)
    assert status.state == "error"
    assert "checksum" in status.text
    assert status.version == version


def test_tampered_gallery_file_is_restored(two_kiosks) -> None:
    _a, b, ada, _version = two_kiosks
    image = next((b.gallery.dir / "images" / ada).glob("*.jpg"))
    good = image.read_bytes()
    image.write_bytes(b"not the enrolled image")
    status = sync_gallery(b)
    assert status.state == "synced"
    assert "repaired" in status.message
    assert image.read_bytes() == good


def test_publish_offline_is_queued_and_retried(fleet: Fleet, two_kiosks) -> None:
    a, b, ada, _version = two_kiosks
    bob = enrol_bytes(a, "Bob")
    fleet.registry.rename(fleet.root / "registry-gone")
    result = publish(a)
    assert not result.published
    assert result.message.startswith("queued")
    assert pending_changes(a).queued_commits == 1
    assert pending_changes(a).added == []
    (fleet.root / "registry-gone").rename(fleet.registry)
    status = sync_gallery(a)  # the next sync pushes what was queued
    assert status.state == "synced"
    assert "published" in status.message
    assert pending_changes(a).empty
    sync_gallery(b)
    assert people_on_disk(b) == {ada, bob}


def test_stop_is_prompt(fleet: Fleet) -> None:
    sync = GallerySync(fleet.kiosk("east"), interval_s=3600)
    sync.start()
    assert sync.wait_first(60).state == "synced"
    assert sync.stop(2.0)  # waiting for the next sync in an hour ends at once


def test_crash_while_switching_keeps_queued_local_commits(
    fleet: Fleet, two_kiosks, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, ada, _version = two_kiosks
    gone = fleet.root / "registry-gone"
    fleet.registry.rename(gone)
    bob = enrol_bytes(a, "Bob")
    assert publish(a).message.startswith("queued")
    gone.rename(fleet.registry)
    carol = enrol_bytes(b, "Carol")
    assert publish(b).published

    class PowerCut(BaseException):
        pass

    def crash(*_args: object, **_kwargs: object) -> None:
        raise PowerCut

    with monkeypatch.context() as patch:
        patch.setattr(sync_module, "_checkout", crash)
        with pytest.raises(PowerCut):
            sync_gallery(a)
    fleet.registry.rename(gone)
    assert sync_gallery(a).state == "offline"
    assert people_on_disk(a) == {ada, bob}
    assert pending_changes(a).queued_commits == 1
    gone.rename(fleet.registry)
    status = sync_gallery(a)
    assert status.state == "synced" and "published" in status.message
    assert people_on_disk(a) == {ada, bob, carol}
    sync_gallery(b)
    assert people_on_disk(b) == {ada, bob, carol}
