"""The original system's ``mlflow_utils`` functions, same names, arguments and meaning.

So the examples of the MLflow/DVC integration guide run against FaceKiosk::

    from kiosk.telemetry import start_verification_run, log_mtcnn_params, ...

    with start_verification_run(run_name="attendance_verification"):
        log_mtcnn_params(min_confidence=0.90, margin_ratio=0.2, use_alignment=True)
        log_verification_metrics(distance=0.65, threshold=0.7, is_match=True, identity="John")

The context managers start an MLflow run (``mlflow.start_run``, so ``mlflow.*`` calls
inside go to it too) in the kiosk's experiment and tracking store, and yield it. The
``log_*`` functions do not call MLflow on the caller's thread: they queue params and
metrics on a batching :class:`~kiosk.telemetry.mlflow_sink.TelemetrySink` (its own
``kiosk-telemetry-compat`` thread and spool file), and leaving the ``with`` block flushes
them, so the run's metrics are all stored when it ends. If the store stopped answering
in between, they stay in the spool and reach the run on a later flush (``kiosk telemetry
flush`` replays that spool too). ``log_facenet_model`` uploads and registers the model
synchronously, since its result (the model version) is what the caller wants.

These functions are for scripts (training, evaluation); unlike the sink they raise
:class:`~kiosk.errors.TelemetryError` when the store cannot start a run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.errors import TelemetryError
from kiosk.settings import Settings, load_settings
from kiosk.telemetry._model import artifact_dir
from kiosk.telemetry.mlflow_sink import TelemetrySink

if TYPE_CHECKING:
    import mlflow
    from mlflow.models.model import ModelInfo

log = logging.getLogger(__name__)

#: How long leaving a run's ``with`` block waits for its metrics to be stored.
FLUSH_TIMEOUT_S = 30.0
COMPAT_SPOOL = "spool-compat"


class _Compat:
    """The module's state: settings, the batching sink while a run is open, step counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings: Settings | None = None
        self.sink: TelemetrySink | None = None
        self.depth = 0
        self.steps: dict[str, int] = {}


_compat = _Compat()


def configure(settings: Settings | None) -> None:
    """Use these settings (tracking URI, experiment, data dir); None = load them as the CLI does."""
    _compat.settings = settings


def _settings() -> Settings:
    if _compat.settings is None:
        _compat.settings = load_settings()
    # Explicit calls log even where the kiosk's own session telemetry is switched off.
    return dataclasses.replace(
        _compat.settings,
        telemetry=dataclasses.replace(_compat.settings.telemetry, enabled=True),
    )


@contextmanager
def start_verification_run(
    run_name: str | None = None, **kwargs: Any
) -> Iterator[mlflow.ActiveRun]:
    """Start a verification run (tag ``run_type=verification``); yields it like
    ``mlflow.start_run``."""
    with _start_run(run_name, "verification", **kwargs) as run:
        yield run


@contextmanager
def start_training_run(run_name: str | None = None, **kwargs: Any) -> Iterator[mlflow.ActiveRun]:
    """Start a training run (tag ``run_type=training``); yields it like ``mlflow.start_run``."""
    with _start_run(run_name, "training", **kwargs) as run:
        yield run


@contextmanager
def _start_run(run_name: str | None, run_type: str, **kwargs: Any) -> Iterator[mlflow.ActiveRun]:
    import mlflow

    settings = _settings()
    with _compat.lock:
        if _compat.sink is None:
            sink = TelemetrySink(settings, spool_name=COMPAT_SPOOL, name="kiosk-telemetry-compat")
            sink.start()
            _compat.sink = sink
        sink = _compat.sink
        _compat.depth += 1
    try:
        from kiosk.telemetry.backend import MlflowBackend

        location = None
        if sink.tracking_uri.startswith("sqlite:"):
            location = artifact_dir(settings).resolve().as_uri()
        experiment_id = MlflowBackend(sink.tracking_uri).ensure_experiment(
            settings.telemetry.experiment, location
        )
        mlflow.set_tracking_uri(sink.tracking_uri)
        tags = {"run_type": run_type, "kiosk_id": settings.kiosk.id, **kwargs.pop("tags", {})}
        try:
            active = mlflow.start_run(
                run_name=run_name, experiment_id=experiment_id, tags=tags, **kwargs
            )
        except Exception as exc:
            raise TelemetryError(
                f"could not start an MLflow run at {sink.tracking_uri}: {exc}"
            ) from exc
    except BaseException:
        _release()
        raise
    status = "FINISHED"
    try:
        yield active
    except BaseException:
        status = "FAILED"
        raise
    finally:
        try:
            if not sink.flush(FLUSH_TIMEOUT_S):
                log.warning(
                    "MLflow run %s: some metrics could not be stored yet; they stay in the "
                    "spool %s and are sent by the next flush",
                    active.info.run_id,
                    sink.spool_path,
                )
            mlflow.end_run(status)
        finally:
            _release()


def _release() -> None:
    with _compat.lock:
        _compat.depth -= 1
        sink = _compat.sink if _compat.depth == 0 else None
        if sink is not None:
            _compat.sink = None
            _compat.steps.clear()
    if sink is not None:
        sink.close(timeout=5.0)


def _active() -> tuple[TelemetrySink, str]:
    import mlflow

    run = mlflow.active_run()
    sink = _compat.sink
    if run is None or sink is None:
        raise TelemetryError(
            "no MLflow run is active: call this inside "
            "'with start_verification_run(...)' or 'with start_training_run(...)'"
        )
    return sink, run.info.run_id


def _now_ms() -> int:
    return int(time.time() * 1000)


def log_mtcnn_params(min_confidence: float, margin_ratio: float, use_alignment: bool) -> None:
    """MTCNN settings as params ``mtcnn_min_confidence``, ``mtcnn_margin_ratio`` and
    ``mtcnn_use_alignment``."""
    sink, run_id = _active()
    sink.log_to_run(
        run_id,
        params={
            "mtcnn_min_confidence": str(min_confidence),
            "mtcnn_margin_ratio": str(margin_ratio),
            "mtcnn_use_alignment": str(use_alignment),
        },
    )


def log_facenet_params(use_prewhitening: bool, use_tta_flip: bool) -> None:
    """FaceNet settings as params ``facenet_use_prewhitening``, ``facenet_use_tta_flip``."""
    sink, run_id = _active()
    sink.log_to_run(
        run_id,
        params={
            "facenet_use_prewhitening": str(use_prewhitening),
            "facenet_use_tta_flip": str(use_tta_flip),
        },
    )


def log_verification_metrics(
    distance: float, threshold: float, is_match: bool, identity: str | None = None
) -> None:
    """One verification: metrics ``distance``, ``threshold``, ``is_match`` (1/0) at the next step.

    Steps count the calls within the run (0, 1, 2, ...). A non-finite distance (an empty
    gallery) is not logged; ``identity``, when given, becomes the run's ``identity`` tag
    (the latest one wins).
    """
    sink, run_id = _active()
    with _compat.lock:
        step = _compat.steps.get(run_id, 0)
        _compat.steps[run_id] = step + 1
    ts = _now_ms()
    metrics = [
        ("threshold", float(threshold), ts, step),
        ("is_match", 1.0 if is_match else 0.0, ts, step),
    ]
    if math.isfinite(distance):
        metrics.insert(0, ("distance", float(distance), ts, step))
    sink.log_to_run(run_id, metrics=metrics, tags={"identity": identity} if identity else None)


def log_attendance_metrics(
    total_verifications: int, successful_matches: int, avg_distance: float
) -> None:
    """A session summary: ``total_verifications``, ``successful_matches``, ``avg_distance``,
    plus ``unknown_faces`` and ``match_rate`` derived from them."""
    sink, run_id = _active()
    ts, step = _now_ms(), _compat.steps.get(run_id, 0)
    values = {
        "total_verifications": float(total_verifications),
        "successful_matches": float(successful_matches),
        "unknown_faces": float(total_verifications - successful_matches),
        "match_rate": successful_matches / total_verifications if total_verifications else 0.0,
    }
    if math.isfinite(avg_distance):
        values["avg_distance"] = float(avg_distance)
    sink.log_to_run(run_id, metrics=[(k, v, ts, step) for k, v in values.items()])


def log_dataset_info(
    num_images: int, num_identities: int, dataset_path: Path | str | None = None
) -> None:
    """The dataset as params ``num_images``, ``num_identities`` and ``dataset_path``."""
    sink, run_id = _active()
    params = {"num_images": str(num_images), "num_identities": str(num_identities)}
    if dataset_path is not None:
        params["dataset_path"] = str(dataset_path)
    sink.log_to_run(run_id, params=params)


def log_facenet_model(
    model: Any,
    model_name: str = "facenet",
    *,
    alias: str = "candidate",
    artifact_name: str = "model",
    input_example: Any = None,
) -> ModelInfo:
    """Log ``model`` (a torch module) to the active run and register it as a new version
    of the registered model ``model_name``, pointed to by ``alias`` ("candidate" by default;
    promote it with ``MlflowClient().set_registered_model_alias(name, "production", version)``).

    Without ``input_example`` the module is pickled (any module works, as in the original
    system; loading it needs its class importable, and runs pickle: load only your own
    models). With one (e.g. ``torch.rand(1, 3, 160, 160)`` for FaceNet) it is saved in
    PyTorch's safe exported-graph format ("pt2") with a signature inferred from it.

    Returns MLflow's ``ModelInfo`` (``registered_model_version`` is the new version).
    Runs on the caller's thread: it uploads the weights and waits for the registration.
    """
    _sink, run_id = _active()
    try:
        import mlflow.pytorch
        import torch
        from mlflow import MlflowClient

        info: ModelInfo = mlflow.pytorch.log_model(
            model,
            name=artifact_name,
            registered_model_name=model_name,
            input_example=input_example,
            serialization_format="pickle" if input_example is None else "pt2",
            # Stated, so MLflow does not spend seconds inferring requirements in a subprocess.
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
        version = info.registered_model_version
        if version is None:
            raise TelemetryError(f"MLflow did not register {model_name!r} for run {run_id}")
        MlflowClient().set_registered_model_alias(model_name, alias, str(version))
    except TelemetryError:
        raise
    except Exception as exc:
        raise TelemetryError(f"could not log and register model {model_name!r}: {exc}") from exc
    return info
