"""MLflow logging for the pipeline stages: one run per stage, tagged with the gallery version.

Plain ``mlflow`` (the stages are short batch processes; the kiosk's batching
telemetry sink is for the live kiosk). The tracking URI is ``mlflow.tracking_uri``
from ``params.yaml``, else ``$MLFLOW_TRACKING_URI``, else a SQLite file in the
registry's ``.kiosk/`` folder (ignored by git and DVC).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from typing import Any

from kiosk.pipeline.params import PipelineParams

log = logging.getLogger(__name__)

#: The registered model every pipeline run's embedder becomes a version of. Versions are
#: told apart by the ``fingerprint`` tag (sha256 prefix of the weights file), never by name:
#: a file is only called the vggface2 release if it is that file.
MODEL_NAME = "facekiosk-embedder"


def tracking_uri(params: PipelineParams) -> str:
    if params.tracking_uri:
        return params.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = params.root / ".kiosk"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


def gallery_version(params: PipelineParams) -> str:
    """The registry commit the stage runs on (``+dirty`` when the tree has changes)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=8", "HEAD"],
            cwd=params.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return rev or "none"
    except (OSError, subprocess.CalledProcessError):
        return "none"


@contextlib.contextmanager
def stage_run(params: PipelineParams, stage: str) -> Iterator[Any]:
    """An MLflow run named after the stage, with the pipeline's params and version tags."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(params))
    experiment = mlflow.set_experiment(params.experiment)
    import dvc

    version = gallery_version(params)
    tags = {
        "run_type": "training" if stage != "evaluate" else "evaluation",
        "stage": stage,
        # The registry commit pins every DVC-tracked file: it is the dataset's version.
        "gallery_version": version,
        "dataset_version": version,
        "dvc_version": dvc.__version__,
        "gallery_path": str(params.root),
    }
    with mlflow.start_run(
        run_name=f"gallery-{stage}", experiment_id=experiment.experiment_id, tags=tags
    ) as run:
        flat = _flatten(params.raw)
        mlflow.log_params({k: v for k, v in flat.items() if not k.startswith("mlflow.")})
        yield run


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def log_dataset(num_images: int, num_identities: int, path: str) -> None:
    import mlflow

    mlflow.log_params(
        {"num_images": num_images, "num_identities": num_identities, "dataset_path": path}
    )


def register_embedder(model: Any, fingerprint: str, source: str, weights_file: str) -> str:
    """Log the embedder and register it as a version of :data:`MODEL_NAME` (once per
    fingerprint; a later run with the same weights reuses that version). Returns the version."""
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow import MlflowClient

    client = MlflowClient()
    with contextlib.suppress(Exception):
        for mv in client.search_model_versions(f"name='{MODEL_NAME}'"):
            if mv.tags.get("fingerprint") == fingerprint:
                mlflow.set_tag("embedder_version", mv.version)
                return str(mv.version)
    info = mlflow.pytorch.log_model(
        model,
        name="embedder",
        registered_model_name=MODEL_NAME,
        serialization_format="pickle",
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    )
    version = str(info.registered_model_version)
    for key, value in {
        "fingerprint": fingerprint,
        "weights_source": source,
        "weights_file": weights_file,
        "architecture": "InceptionResnetV1",
    }.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    client.update_model_version(
        MODEL_NAME,
        version,
        description=f"InceptionResnetV1, weights file {weights_file} (sha256 {fingerprint}...)",
    )
    mlflow.set_tag("embedder_version", version)
    return version
