"""Two kiosks publishing different people at about the same time: both changes land."""

from __future__ import annotations

import threading

from kiosk.sync import pending_changes, publish, sync_gallery
from kiosk.sync._git import git
from tests.sync_helpers import Fleet, enrol_bytes, people_on_disk

pytest_plugins = ["tests.sync_support"]


def test_publish_after_another_kiosk_published_rebases_and_lands(fleet: Fleet) -> None:
    a, b, c = fleet.kiosk("north"), fleet.kiosk("south"), fleet.kiosk("west")
    for k in (a, b):
        assert sync_gallery(k).state == "synced"
    ada = enrol_bytes(a, "Ada")
    bob = enrol_bytes(b, "Bob")
    assert publish(a).published
    result = publish(b)  # git refuses the first push; B syncs (gets Ada) and pushes again
    assert result.published, result.message
    assert people_on_disk(b) == {ada, bob}
    assert sync_gallery(c).state == "synced"
    assert people_on_disk(c) == {ada, bob}


def test_simultaneous_publishes_of_different_people_both_land(fleet: Fleet) -> None:
    kiosks = [fleet.kiosk(name) for name in ("north", "south", "east")]
    for k in kiosks:
        assert sync_gallery(k).state == "synced"
    enrolled = {enrol_bytes(k, f"Person of {k.kiosk.id}") for k in kiosks}
    removed_later = enrol_bytes(kiosks[0], "Temp")
    assert publish(kiosks[0]).published
    enrolled.discard(next(iter(enrolled & people_on_disk(kiosks[0]))))  # published above
    results: dict[str, str] = {}
    start = threading.Barrier(len(kiosks) - 1)

    def run(k) -> None:  # type: ignore[no-untyped-def]
        start.wait(30)
        results[k.kiosk.id] = publish(k).message

    threads = [
        threading.Thread(target=run, args=(k,), name=f"kiosk-sync-test-{k.kiosk.id}")
        for k in kiosks[1:]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(m == "published" for m in results.values()), results
    check = fleet.kiosk("check")
    assert sync_gallery(check).state == "synced"
    assert enrolled | {removed_later} <= people_on_disk(check)
    assert len(people_on_disk(check)) == 4
    for k in kiosks:
        sync_gallery(k)
        assert pending_changes(k).empty
    # History is linear: every kiosk's commit sits on the one before it.
    log = git(check.gallery.dir, "log", "--format=%s")
    assert log.count("enrol Person of") == 3
