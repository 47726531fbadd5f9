"""Timings of the gallery registry: publishing and syncing a gallery of N people.

Builds, in a temp dir, a registry (bare git repo + local DVC storage folder) and
N synthetic people (``--images`` small random JPEGs each, about 3 KB, plus
person.json), then times, on this machine:

1. **publish N**: kiosk A's first publish (``dvc add`` of N folders, ``dvc push``,
   git commit and push);
2. **first sync**: kiosk B's start-up with no clone yet (clone, ``dvc fetch``,
   checksum every file, checkout, switch);
3. **sync, nothing new**: B again (fetch, verify, workspace check);
4. **publish 1 / sync 1**: one more person on A, then B's sync that brings it.

Examples::

    python benchmarks/sync.py                 # 1,000 people, 2 images each
    python benchmarks/sync.py --people 200 --json

Everything runs against local folders, so the times are the registry's own cost
(git, DVC, hashing, file copies), not the network's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kiosk.recognition.gallery import GalleryStore
from kiosk.settings import GallerySection, KioskSection, Settings, settings_for_data_dir


def _isolate(tmp: Path) -> None:
    """Keep git and DVC away from the user's own configuration and caches."""
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("")
    os.environ.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(tmp / "dvc-site"),
        DVC_GLOBAL_CONFIG_DIR=str(tmp / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(tmp / "dvc-system"),
    )


def _kiosk(tmp: Path, name: str, registry: Path) -> Settings:
    return settings_for_data_dir(
        tmp / name,
        kiosk=KioskSection(id=name),
        gallery=GallerySection(repo=str(registry), sync_interval_s=0.0),
    )


def _jpeg(rng: np.random.Generator) -> bytes:
    small = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
    image = cv2.resize(small, (96, 96), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(buf)


def _timed(label: str, fn: Callable[[], Any], rows: list[dict[str, Any]]) -> Any:
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    rows.append({"step": label, "seconds": round(seconds, 2)})
    return result


def run(people: int, images: int) -> dict[str, Any]:
    from kiosk.sync import init_registry, publish, sync_gallery

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-sync-") as tmp_name:
        tmp = Path(tmp_name)
        _isolate(tmp)
        registry = tmp / "registry.git"
        init_registry(registry)
        a, b = _kiosk(tmp, "north", registry), _kiosk(tmp, "south", registry)
        assert sync_gallery(a).state == "synced"
        rng = np.random.default_rng(0)
        store = GalleryStore(a.gallery.dir)
        started = time.perf_counter()
        for i in range(people):
            store.add_person(f"Person {i}", None, [_jpeg(rng) for _ in range(images)])
        enrol_s = time.perf_counter() - started
        size = sum(f.stat().st_size for f in (a.gallery.dir / "images").rglob("*") if f.is_file())

        result = _timed(f"publish {people} people", lambda: publish(a), rows)
        assert result.published, result.message
        status = _timed(
            "first sync (clone + fetch + verify + checkout)", lambda: sync_gallery(b), rows
        )
        assert status.state == "synced", status
        assert len(GalleryStore(b.gallery.dir).list_people()) == people
        status = _timed("sync, nothing new", lambda: sync_gallery(b), rows)
        assert status.state == "synced" and not status.changed, status
        store.add_person("One more", None, [_jpeg(rng) for _ in range(images)])
        result = _timed("publish 1 more person", lambda: publish(a), rows)
        assert result.published, result.message
        status = _timed("sync that brings 1 person", lambda: sync_gallery(b), rows)
        assert status.changed, status
    return {
        "people": people,
        "images_per_person": images,
        "gallery_mb": round(size / 1e6, 1),
        "write_people_s": round(enrol_s, 1),
        "steps": rows,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--images", type=int, default=2, help="images per person")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.people, args.images)
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"gallery: {report['people']} people x {report['images_per_person']} images "
        f"({report['gallery_mb']} MB) on {report['machine']}"
    )
    for row in report["steps"]:
        print(f"  {row['step']:<50} {row['seconds']:>7.2f} s")


if __name__ == "__main__":
    main()
