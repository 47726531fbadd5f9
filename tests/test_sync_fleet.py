"""Two kiosks share a gallery through a real registry (git + DVC, local remote)."""

from __future__ import annotations

import pytest

from kiosk.sync import (
    GallerySync,
    SyncStatus,
    current_gallery_version,
    pending_changes,
    publish,
    sync_gallery,
)
from tests.sync_helpers import Fleet, other_person

pytest_plugins = ["tests.sync_support"]

pytestmark = pytest.mark.slow


def test_enrol_on_a_publish_identify_on_b_remove_on_b_forgotten_on_a(
    fleet: Fleet, make_recognizer, astronaut
) -> None:
    a, b = fleet.kiosk("north"), fleet.kiosk("south")
    assert sync_gallery(a).state == "synced"
    rec_a = make_recognizer(a)
    ada = rec_a.enroll("Ada Lovelace", [("ada.jpg", astronaut)]).person
    bob = rec_a.enroll("Bob", [("bob.jpg", other_person(astronaut))]).person
    assert pending_changes(a).added == sorted([ada.id, bob.id])
    result = publish(a, author="operator 7")
    assert result.published, result.message
    assert pending_changes(a).empty

    # Kiosk B starts: the recognizer is up at once, the sync runs in the background.
    rec_b = make_recognizer(b)
    assert rec_b.people == {}
    seen: list[SyncStatus] = []
    sync = GallerySync(b, seen.append, lambda _status: rec_b.reload_gallery())
    sync.start()
    final = sync.wait_first(120)
    assert sync.stop(5)
    assert final.state == "synced", final
    assert final.text == f"synced {final.version}"
    assert any(s.state == "syncing" and s.progress is not None for s in seen)
    assert current_gallery_version(b) == final.version
    assert set(rec_b.people) == {ada.id, bob.id}
    [face] = rec_b.identify(astronaut)
    assert face.match is not None and face.match.person_id == ada.id
    [face] = rec_b.identify(other_person(astronaut))
    assert face.match is not None and face.match.person_id == bob.id

    # B removes Bob and publishes; A syncs and no longer knows Bob.
    rec_b.remove(bob.id)
    assert pending_changes(b).removed == [bob.id]
    assert publish(b).published
    status = sync_gallery(a)
    assert status.state == "synced" and status.changed
    rec_a.reload_gallery()
    assert set(rec_a.people) == {ada.id}
    assert not (a.gallery.dir / "images" / bob.id).exists()
    [face] = rec_a.identify(other_person(astronaut))
    assert face.match is not None and face.match.person_id is None
    assert pending_changes(a).empty

    # The registry's history names who changed what.
    from kiosk.sync._git import git

    log = git(a.gallery.dir, "log", "--format=%s%n%b")
    assert f"north: enrol Ada Lovelace ({ada.id}); enrol Bob ({bob.id})" in log
    assert f"south: remove Bob ({bob.id})" in log
    assert "Changed by: operator 7" in log
