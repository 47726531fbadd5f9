"""Plain data of the telemetry sink: session description, status, tracking URI, metric names.

Nothing here imports MLflow: the pipeline and the UI import these types on their own
threads, and MLflow's import plus its first SQLite connection cost seconds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from kiosk.recognition.types import VerificationEvent
from kiosk.settings import Settings

State = Literal["ok", "offline", "error", "disabled", "starting"]

#: Metrics logged once per verification, at the event's step and timestamp.
EVENT_METRICS = ("distance", "threshold", "is_match", "latency_ms", "face_confidence")
#: Metrics of the session summary (at its end and periodically), at step = verifications so far.
SUMMARY_METRICS = (
    "total_verifications",
    "successful_matches",
    "unknown_faces",
    "match_rate",
    "avg_distance",
    "p50_latency_ms",
    "p95_latency_ms",
    "frames_per_second",
    "dropped_frames",
)
#: The tag that ties an MLflow run to the sink's own session id (idempotent run creation).
SESSION_TAG = "kiosk.session_id"

# MLflow's limits for one log_batch request.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100


@dataclass(frozen=True)
class SessionInfo:
    """What a kiosk session runs with; becomes the run's tags and params."""

    kiosk_id: str
    model_fingerprint: str | None = None
    device: str = "cpu"
    gallery_version: str | None = None
    model_name: str = "vggface2"
    threshold: float | None = None  # the one in effect (recognition.threshold may be "auto")


@dataclass(frozen=True)
class TelemetryStatus:
    """The sink's state for the status bar and ``kiosk doctor``.

    ``spooled`` counts metrics (and ``spooled_batches`` the records) kept on disk
    until MLflow answers; ``dropped`` counts metrics lost to the spool-full policy or
    refused by the server.
    """

    state: State
    tracking_uri: str
    spooled: int = 0
    spooled_batches: int = 0
    sent: int = 0
    dropped: int = 0
    message: str = ""
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "tracking_uri": self.tracking_uri,
            "spooled": self.spooled,
            "spooled_batches": self.spooled_batches,
            "sent": self.sent,
            "dropped": self.dropped,
            "message": self.message,
            "last_error": self.last_error,
        }


def default_tracking_uri(settings: Settings) -> str:
    """``sqlite:///<absolute data_dir>/mlflow.db`` (MLflow 3 refuses ``./mlruns``)."""
    return f"sqlite:///{(settings.paths.data_dir / 'mlflow.db').resolve().as_posix()}"


def resolve_tracking_uri(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The setting, else ``$MLFLOW_TRACKING_URI``, else a SQLite file in the data dir."""
    env = os.environ if env is None else env
    if settings.telemetry.tracking_uri:
        return settings.telemetry.tracking_uri
    if env.get("MLFLOW_TRACKING_URI"):
        return env["MLFLOW_TRACKING_URI"]
    return default_tracking_uri(settings)


def display_uri(uri: str) -> str:
    """The URI without a password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def spool_dir(settings: Settings) -> Path:
    return settings.paths.data_dir / "telemetry"


def artifact_dir(settings: Settings) -> Path:
    """Where a SQLite store's experiment keeps artifacts (logged models)."""
    return settings.paths.data_dir / "telemetry" / "artifacts"


def event_metrics(event: VerificationEvent, step: int) -> list[list[Any]]:
    """One verification as [key, value, timestamp_ms, step] rows.

    A non-finite distance (``inf`` for an empty gallery) is not logged at all: MLflow
    would store it as the largest float and ruin every chart; the other four metrics of
    that event are still logged.
    """
    ts = int(event.wall_time * 1000)
    rows: list[list[Any]] = []
    if math.isfinite(event.distance):
        rows.append(["distance", float(event.distance), ts, step])
    rows.append(["threshold", float(event.threshold), ts, step])
    rows.append(["is_match", 1.0 if event.is_match else 0.0, ts, step])
    if math.isfinite(event.latency_ms):
        rows.append(["latency_ms", float(event.latency_ms), ts, step])
    if math.isfinite(event.face_confidence):
        rows.append(["face_confidence", float(event.face_confidence), ts, step])
    return rows


def session_params(settings: Settings, info: SessionInfo) -> dict[str, str]:
    rec, live = settings.recognition, settings.pipeline
    threshold = info.threshold if info.threshold is not None else rec.threshold
    return {
        "mtcnn_min_confidence": str(rec.min_confidence),
        "mtcnn_margin_ratio": str(rec.margin_ratio),
        "mtcnn_use_alignment": str(rec.use_alignment),
        "facenet_use_prewhitening": str(rec.use_prewhitening),
        # Live faces are embedded with the pipeline's flip-TTA setting; the gallery's
        # templates with recognition.use_tta_flip.
        "facenet_use_tta_flip": str(live.use_tta_flip),
        "gallery_use_tta_flip": str(rec.use_tta_flip),
        "facenet_model": info.model_name,
        "threshold": str(threshold),
        "threshold_setting": str(rec.threshold),
        "detection_width": str(live.detection_width or "auto"),
        "min_face_px": str(rec.min_face_px),
        "full_detect_every": str(live.full_detect_every),
        "reembed_every": str(live.reembed_every),
        "vote_window": str(live.vote_window),
        "votes_to_decide": str(live.votes_to_decide),
        "device": info.device,
    }


def session_tags(info: SessionInfo, hostname: str, app_version: str) -> dict[str, str]:
    return {
        "kiosk_id": info.kiosk_id,
        "hostname": hostname,
        "app_version": app_version,
        "gallery_version": info.gallery_version or "unknown",
        "model_fingerprint": info.model_fingerprint or "unknown",
        "device": info.device,
    }
