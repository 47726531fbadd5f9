"""The original ``mlflow_utils`` functions, run as the integration guide shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from kiosk.errors import TelemetryError
from kiosk.telemetry import (
    compat,
    log_attendance_metrics,
    log_dataset_info,
    log_facenet_model,
    log_facenet_params,
    log_mtcnn_params,
    log_verification_metrics,
    start_training_run,
    start_verification_run,
)
from tests.telemetry_helpers import telemetry_settings

pytestmark = pytest.mark.slow


class TinyEmbedder(torch.nn.Module):
    """A stand-in for InceptionResnetV1: same contract (images in, unit vectors out)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(12, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.proj(x.flatten(1)), dim=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    compat.configure(telemetry_settings(tmp_path / "data", tracking_uri=uri, experiment="guide"))
    yield uri
    compat.configure(None)


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_the_guides_verification_example(store: str, tmp_path: Path) -> None:
    import mlflow

    with start_verification_run(run_name="test_verification") as run:
        assert mlflow.active_run() is not None
        assert mlflow.active_run().info.run_id == run.info.run_id
        log_mtcnn_params(min_confidence=0.90, margin_ratio=0.2, use_alignment=True)
        log_facenet_params(use_prewhitening=False, use_tta_flip=True)
        log_verification_metrics(distance=0.65, threshold=0.7, is_match=True, identity="John")
        log_verification_metrics(distance=0.95, threshold=0.7, is_match=False)
        log_verification_metrics(distance=float("inf"), threshold=0.7, is_match=False)
        log_attendance_metrics(total_verifications=3, successful_matches=1, avg_distance=0.8)
        model = TinyEmbedder()
        info = log_facenet_model(model, model_name="facenet_v1")
    assert mlflow.active_run() is None

    # everything is stored once the with block is left
    c = client(store)
    stored = c.get_run(run.info.run_id)
    assert stored.info.run_name == "test_verification"
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {
        "mtcnn_min_confidence": "0.9",
        "mtcnn_margin_ratio": "0.2",
        "mtcnn_use_alignment": "True",
        "facenet_use_prewhitening": "False",
        "facenet_use_tta_flip": "True",
    }
    assert stored.data.tags["run_type"] == "verification"
    assert stored.data.tags["identity"] == "John"
    assert [(m.step, m.value) for m in c.get_metric_history(run.info.run_id, "distance")] == [
        (0, 0.65),
        (1, 0.95),
    ]
    assert [m.value for m in c.get_metric_history(run.info.run_id, "is_match")] == [1, 0, 0]
    assert [m.step for m in c.get_metric_history(run.info.run_id, "threshold")] == [0, 1, 2]
    metrics = stored.data.metrics
    assert metrics["total_verifications"] == 3 and metrics["successful_matches"] == 1
    assert metrics["avg_distance"] == pytest.approx(0.8)
    assert metrics["match_rate"] == pytest.approx(1 / 3)

    # the model is a registered version, behind the "candidate" alias
    version = c.get_model_version_by_alias("facenet_v1", "candidate")
    assert str(version.version) == str(info.registered_model_version)
    assert version.run_id == run.info.run_id
    loaded = mlflow.pytorch.load_model("models:/facenet_v1@candidate")
    x = torch.rand(2, 3, 2, 2)
    assert torch.allclose(loaded(x), model(x))
    # artifacts live in the kiosk's data dir, not in the working directory
    assert str((tmp_path / "data").resolve()) in c.get_run(run.info.run_id).info.artifact_uri

    # a second model version moves the alias
    with start_training_run(run_name="retrain"):
        second = log_facenet_model(TinyEmbedder(), model_name="facenet_v1", alias="candidate")
    assert int(second.registered_model_version) == int(info.registered_model_version) + 1
    moved = c.get_model_version_by_alias("facenet_v1", "candidate")
    assert str(moved.version) == str(second.registered_model_version)


def test_the_guides_training_example(store: str) -> None:
    with start_training_run(run_name="facenet_training") as run:
        log_dataset_info(num_images=120, num_identities=12, dataset_path=Path("images/"))
    stored = client(store).get_run(run.info.run_id)
    assert stored.data.tags["run_type"] == "training"
    assert stored.data.params == {
        "num_images": "120",
        "num_identities": "12",
        "dataset_path": "images",
    }


def test_a_failing_block_marks_the_run_failed_and_still_stores_its_metrics(store: str) -> None:
    with pytest.raises(ValueError), start_verification_run(run_name="boom") as run:
        log_verification_metrics(distance=0.5, threshold=0.9, is_match=True)
        raise ValueError("boom")
    stored = client(store).get_run(run.info.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.metrics["distance"] == 0.5


def test_logging_outside_a_run_says_what_to_do(store: str) -> None:
    with pytest.raises(TelemetryError, match="start_verification_run"):
        log_verification_metrics(distance=0.5, threshold=0.9, is_match=True)
