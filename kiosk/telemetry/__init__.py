"""Verification metrics to MLflow, batched per kiosk session, spooled while offline (no Qt).

The live pipeline hands each :class:`~kiosk.recognition.types.VerificationEvent` to a
:class:`TelemetrySink`, which logs it from its own ``kiosk-telemetry`` thread into one
MLflow run per kiosk session (see :mod:`kiosk.telemetry.mlflow_sink`). The functions
of the original system's ``mlflow_utils`` module (``start_verification_run``,
``log_verification_metrics``, ...) are here too, with the same names and arguments,
and go through the same batching sink (see :mod:`kiosk.telemetry.compat`).

Importing this package does not import MLflow; the compat functions import it when
called.
"""

from kiosk.telemetry._model import (
    EVENT_METRICS,
    SUMMARY_METRICS,
    SessionInfo,
    TelemetryStatus,
    default_tracking_uri,
    resolve_tracking_uri,
)
from kiosk.telemetry.backend import Backend, FakeBackend, MlflowBackend
from kiosk.telemetry.compat import (
    log_attendance_metrics,
    log_dataset_info,
    log_facenet_model,
    log_facenet_params,
    log_mtcnn_params,
    log_verification_metrics,
    start_training_run,
    start_verification_run,
)
from kiosk.telemetry.mlflow_sink import TelemetrySink

__all__ = [
    "EVENT_METRICS",
    "SUMMARY_METRICS",
    "Backend",
    "FakeBackend",
    "MlflowBackend",
    "SessionInfo",
    "TelemetrySink",
    "TelemetryStatus",
    "default_tracking_uri",
    "log_attendance_metrics",
    "log_dataset_info",
    "log_facenet_model",
    "log_facenet_params",
    "log_mtcnn_params",
    "log_verification_metrics",
    "resolve_tracking_uri",
    "start_training_run",
    "start_verification_run",
]
