"""Shared helpers of the telemetry tests: settings, events, waiting."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.recognition.types import VerificationEvent
from kiosk.settings import Settings, TelemetrySection, settings_for_data_dir

T0 = 1_790_000_000.0  # 2026-09-21, a fixed clock for events


def telemetry_settings(data_dir: Path, **telemetry: Any) -> Settings:
    base = {"flush_interval_s": 0.2, "flush_events": 100}
    base.update(telemetry)
    return settings_for_data_dir(data_dir, telemetry=TelemetrySection(**base))


def with_telemetry(settings: Settings, **telemetry: Any) -> Settings:
    return dataclasses.replace(
        settings, telemetry=dataclasses.replace(settings.telemetry, **telemetry)
    )


def event(i: int, *, t0: float = T0, distance: float | None = None) -> VerificationEvent:
    """The i-th verification of a session: every third one a stranger."""
    match = i % 3 != 0
    return VerificationEvent(
        track_id=i,
        person_id="ada-1" if match else None,
        name="Ada" if match else None,
        distance=(0.4 + (i % 50) / 100) if distance is None else distance,
        threshold=0.9,
        is_match=match,
        face_confidence=0.99,
        latency_ms=20.0 + i % 10,
        ttv_ms=100.0,
        frame_id=i,
        wall_time=t0 + i * 0.5,
        box=(0.0, 0.0, 10.0, 10.0),
        votes=2,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
