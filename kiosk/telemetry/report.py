"""Telemetry for people: ``kiosk telemetry status|flush`` and the ``kiosk doctor`` check.

``probe`` is quick (at most ``timeout`` seconds on an unreachable server) and imports
no MLflow: it asks an HTTP server's ``/health`` endpoint, checks that a SQLite store's
folder is writable, and counts the spool files without touching them.
``flush_spools`` replays the spools now, through the same sink the kiosk uses.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from kiosk.settings import Settings
from kiosk.telemetry._model import (
    State,
    TelemetryStatus,
    display_uri,
    resolve_tracking_uri,
    spool_dir,
)
from kiosk.telemetry.compat import COMPAT_SPOOL
from kiosk.telemetry.mlflow_sink import TelemetrySink
from kiosk.telemetry.spool import Spool, SpoolContents, inspect_spool

SPOOL_NAMES = ("spool", COMPAT_SPOOL)
CheckStatus = Literal["ok", "warn", "fail", "info"]


def spool_paths(settings: Settings) -> list[Path]:
    return [spool_dir(settings) / f"{name}.jsonl" for name in SPOOL_NAMES]


def _spooled(settings: Settings) -> SpoolContents:
    found = [inspect_spool(p) for p in spool_paths(settings)]
    return SpoolContents(
        records=sum(c.records for c in found),
        metrics=sum(c.metrics for c in found),
        damaged=sum(c.damaged for c in found),
        nbytes=sum(c.nbytes for c in found),
    )


def _reachable(uri: str, timeout: float) -> str | None:
    """None if the tracking store looks usable, else why not (one sentence)."""
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
                if r.status == 200:
                    return None
                return f"{display_uri(uri)} answered HTTP {r.status}"
        except urllib.error.HTTPError as exc:
            return f"{display_uri(uri)} answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"cannot reach {display_uri(uri)}: {reason}"
    if scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            return f"the SQLite store's folder {folder} is not writable"
        return None
    return None  # other stores (postgresql, databricks...) are only checked by sending


def probe(settings: Settings, timeout: float = 3.0) -> TelemetryStatus:
    """The telemetry state as far as it can be known in ``timeout`` seconds, without MLflow."""
    uri = resolve_tracking_uri(settings)
    spooled = _spooled(settings)
    state: State
    problem = None
    if not settings.telemetry.enabled:
        state = "disabled"
        message = "Telemetry is off (telemetry.enabled = false)."
    else:
        problem = _reachable(uri, timeout)
        state = "offline" if problem else "ok"
        message = (
            f"Telemetry offline: {problem}."
            if problem
            else f"MLflow at {display_uri(uri)} answers."
        )
    if spooled.metrics or spooled.records:
        message += (
            f" {spooled.metrics} metrics ({spooled.records} records) wait in the spool; "
            "the kiosk sends them when MLflow answers, or run 'kiosk telemetry flush'."
        )
    if spooled.damaged:
        message += f" {spooled.damaged} damaged spool records will be skipped."
    return TelemetryStatus(
        state=state,
        tracking_uri=display_uri(uri),
        spooled=spooled.metrics,
        spooled_batches=spooled.records,
        message=message,
        last_error=problem,
    )


def flush_spools(settings: Settings, timeout: float = 30.0) -> TelemetryStatus:
    """Replay every spool now; the returned status says what is left (``spooled``).

    Raises :class:`TelemetryError` if a running kiosk holds a spool (it replays it itself).
    """
    settings = dataclasses.replace(
        settings, telemetry=dataclasses.replace(settings.telemetry, enabled=True)
    )
    for path in spool_paths(settings):  # fail clearly instead of flushing an empty copy
        spool = Spool(path, max_bytes=1 << 62)
        try:
            spool.open()
        finally:
            spool.close()
    sent = spooled = spooled_batches = dropped = 0
    last: TelemetryStatus | None = None
    for name in SPOOL_NAMES:
        if (
            name != SPOOL_NAMES[0]
            and not inspect_spool(spool_dir(settings) / f"{name}.jsonl").records
        ):
            continue
        sink = TelemetrySink(settings, spool_name=name, name=f"kiosk-telemetry-flush-{name}")
        sink.start()
        ok = sink.flush(timeout)
        sink.close(timeout=5.0)
        status = sink.status()
        sent += status.sent
        spooled += status.spooled
        spooled_batches += status.spooled_batches
        dropped += status.dropped
        if last is None or not ok:
            last = status
    assert last is not None
    message = (
        f"sent {sent} metrics to {last.tracking_uri}; {spooled} metrics still spooled."
        if last.state != "offline"
        else f"{last.message}"
    )
    return dataclasses.replace(
        last,
        sent=sent,
        spooled=spooled,
        spooled_batches=spooled_batches,
        dropped=dropped,
        message=message,
    )


def doctor_check(settings: Settings) -> tuple[CheckStatus, str, str, str]:
    """(status, title, detail, fix) for ``kiosk doctor``; waits at most ~2 s."""
    status = probe(settings, timeout=2.0)
    uri = status.tracking_uri
    if status.state == "disabled":
        return ("info", "telemetry", status.message, "")
    if status.state == "offline":
        return (
            "warn",
            "telemetry",
            f"{status.message} Tracking URI {uri}.",
            "start the MLflow server, or set KIOSK_TELEMETRY_TRACKING_URI (or "
            "MLFLOW_TRACKING_URI) to one that answers; metrics are kept in the spool meanwhile",
        )
    spool_limit = settings.telemetry.spool_max_mb * 1024 * 1024
    nbytes = _spooled(settings).nbytes
    if nbytes > 0.8 * spool_limit:
        return (
            "warn",
            "telemetry",
            f"{status.message} The spool is {nbytes / spool_limit:.0%} full.",
            "run 'kiosk telemetry flush', or raise telemetry.spool_max_mb",
        )
    return (
        "ok",
        "telemetry",
        f"{status.message} Experiment {settings.telemetry.experiment!r}.",
        "",
    )


__all__ = ["doctor_check", "flush_spools", "probe", "spool_paths"]
