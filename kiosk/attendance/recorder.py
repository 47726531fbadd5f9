"""From verification events to check-ins: one record per person per cooldown.

The live worker emits a :class:`~kiosk.recognition.types.VerificationEvent` each
time it decides who a tracked face is, and again when it changes its mind or the
person walks out and back in. Someone who lingers in front of the kiosk must still
count once, so a person is recorded at most once per ``attendance.cooldown_s``; a
second decision inside that window answers "already checked in" with the earlier
record (the screen can then say "already checked in at 08:57").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kiosk.attendance.store import AttendanceStore, CheckIn
from kiosk.recognition.types import VerificationEvent
from kiosk.settings import Settings

OutcomeKind = Literal["checked_in", "already", "unknown"]


@dataclass(frozen=True)
class AttendanceOutcome:
    """What :meth:`AttendanceRecorder.handle` did with one event.

    ``record`` is the new check-in for ``checked_in``, the earlier one for
    ``already``, and ``None`` for ``unknown`` (strangers are never recorded).
    """

    kind: OutcomeKind
    event: VerificationEvent
    record: CheckIn | None


class AttendanceRecorder:
    """Turns verification events into check-ins; safe to call from any thread."""

    def __init__(
        self,
        store: AttendanceStore,
        settings: Settings,
        *,
        gallery_version: Callable[[], str | None] = lambda: None,
        model_fingerprint: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._store = store
        self._cooldown_s = settings.attendance.cooldown_s
        self._kiosk_id = settings.kiosk.id
        self._gallery_version = gallery_version
        self._model_fingerprint = model_fingerprint
        # The check and the insert must be one step: two events of the same person
        # handled at once on two threads would otherwise both see "no recent record".
        self._lock = threading.Lock()

    def handle(self, event: VerificationEvent) -> AttendanceOutcome:
        """Record a matched person unless they checked in within the cooldown.

        The cooldown compares the event's ``wall_time`` with the person's latest
        record in both directions (``|Δt| < cooldown_s``), so a clock stepped back a
        little does not produce a duplicate either. Raises
        :class:`~kiosk.errors.AttendanceError` when the database cannot be written;
        the caller shows that, the kiosk keeps running.
        """
        if not event.is_match or not event.person_id:
            return AttendanceOutcome("unknown", event, None)
        person_id = event.person_id
        with self._lock:
            last = self._store.last_for(person_id)
            if (
                last is not None
                and abs(event.wall_time - last.time_utc.timestamp()) < self._cooldown_s
            ):
                return AttendanceOutcome("already", event, last)
            record = self._store.record(
                person_id,
                event.name or person_id,
                wall_time=event.wall_time,
                distance=event.distance,
                threshold=event.threshold,
                kiosk_id=self._kiosk_id,
                gallery_version=self._gallery_version(),
                model_fingerprint=self._model_fingerprint(),
            )
        return AttendanceOutcome("checked_in", event, record)
