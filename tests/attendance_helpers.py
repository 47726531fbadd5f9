"""Shared by the attendance tests: a non-UTC zone, local timestamps, filling a store."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest

from kiosk.attendance import AttendanceStore


@pytest.fixture
def berlin_time() -> Iterator[None]:
    """Run in a zone that is not UTC, so a day bound taken in UTC would show."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def local_ts(*args: int) -> float:
    """Epoch seconds of a local (system zone) wall-clock time."""
    return datetime(*args).astimezone().timestamp()  # type: ignore[misc]


def fill(store: AttendanceStore, rows: Sequence[tuple[str, str, float]], distance: float) -> None:
    """Record (person id, name, epoch seconds) rows at kiosk "north", gallery g1, model m1."""
    for person, name, ts in rows:
        store.record(
            person,
            name,
            wall_time=ts,
            distance=distance,
            threshold=0.9,
            kiosk_id="north",
            gallery_version="g1",
            model_fingerprint="m1",
        )
