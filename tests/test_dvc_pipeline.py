"""``dvc repro`` in a registry: prepare, embed, evaluate, logged to MLflow (all real)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.pipeline.templates import DVC_YAML, PARAMS_YAML
from kiosk.recognition.gallery import GalleryStore, encode_for_storage
from kiosk.sync import publish, sync_gallery
from tests.helpers import no_face
from tests.sync_helpers import Fleet, other_person

pytest_plugins = ["tests.sync_support"]

ROOT = Path(__file__).resolve().parents[1]


def test_project_root_pipeline_is_the_registry_template() -> None:
    assert (ROOT / "dvc.yaml").read_text(encoding="utf-8") == DVC_YAML
    assert (ROOT / "params.yaml").read_text(encoding="utf-8") == PARAMS_YAML


def _variants(rgb: np.ndarray) -> list[bytes]:
    """Three slightly different photos of the same face."""
    shifted = np.ascontiguousarray(np.roll(rgb, 6, axis=1))
    brighter = np.clip(rgb.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    return [encode_for_storage(x) for x in (rgb, shifted, brighter)]


@pytest.fixture
def pipeline_env(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, facenet_weights_file: Path
):
    """A registry clone with two people (three images each, one unusable) and its weights."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    admin = fleet.kiosk("admin")
    assert sync_gallery(admin).state == "synced"
    clone = admin.gallery.dir
    store = GalleryStore(clone)
    store.add_person("Ada", None, _variants(ASTRONAUT[0]))
    store.add_person("Bob", None, _variants(other_person(ASTRONAUT[0])))
    store.add_person("Nobody", None, [encode_for_storage(no_face((240, 320)))])
    weights = clone / "weights" / facenet_weights_file.name
    weights.write_bytes(facenet_weights_file.read_bytes())
    params = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(
        params.replace('weights_path: ""', f"weights_path: weights/{weights.name}")
    )
    assert publish(admin).published
    return admin, clone


ASTRONAUT: list[np.ndarray] = []


@pytest.fixture(autouse=True)
def _astronaut(astronaut: np.ndarray) -> None:
    ASTRONAUT[:] = [astronaut]


@pytest.mark.slow
def test_repro_builds_embeddings_metrics_plots_and_mlflow_runs(
    pipeline_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.repo import Repo

    _admin, clone = pipeline_env
    monkeypatch.chdir(clone)  # as `cd registry && dvc repro`
    with Repo(str(clone)) as repo:
        stages = repo.reproduce()
    assert [s.name for s in stages] == ["prepare", "embed", "evaluate"]

    report = json.loads((clone / "reports/prepare.json").read_text())
    assert report["accepted"] == 6
    assert [r["reason"] for r in report["rejected"]] == ["no usable face"]
    with np.load(clone / "embeddings/embeddings.npz") as data:
        assert data["vectors"].shape == (6, 512)
        assert len(set(data["person_ids"].tolist())) == 2
    metrics = json.loads((clone / "metrics.json").read_text())
    for key in ("roc_auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "recommended_threshold"):
        assert metrics[key] is not None, key
    assert metrics["genuine_pairs"] == 6 and metrics["impostor_pairs"] == 6
    assert 0.0 < metrics["recommended_threshold"] < 2.0
    assert (clone / "plots/roc.csv").read_text().startswith("threshold,far,tar\n")
    assert (clone / "plots/distances.csv").read_text().startswith("distance,genuine,impostor\n")

    with Repo(str(clone)) as repo:
        shown = repo.metrics.show()
        assert shown  # `dvc metrics show`
        plots = repo.plots.show()
        assert plots  # `dvc plots show`
        assert repo.reproduce() == []  # nothing changed: nothing runs

    import mlflow

    runs = mlflow.search_runs(experiment_names=["facekiosk-gallery"], output_format="list")
    by_stage = {r.data.tags["stage"]: r for r in runs}
    assert set(by_stage) == {"prepare", "embed", "evaluate"}
    assert by_stage["prepare"].data.tags["dataset_version"] != "none"
    assert by_stage["prepare"].data.params["num_identities"] == "3"
    assert by_stage["evaluate"].data.metrics["roc_auc"] == pytest.approx(metrics["roc_auc"])
    embed = by_stage["embed"].data.tags
    version = mlflow.MlflowClient().get_model_version(
        "facekiosk-embedder", embed["embedder_version"]
    )
    assert "vggface2" not in (version.description or "")
    assert version.tags["fingerprint"] == embed["model_fingerprint"]


@pytest.mark.slow
def test_kiosks_use_the_pipeline_embeddings_and_its_recommended_threshold(
    pipeline_env, fleet: Fleet, make_recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.repo import Repo

    from tests.helpers import with_recognition

    admin, clone = pipeline_env
    monkeypatch.chdir(clone)
    with Repo(str(clone)) as repo:
        repo.reproduce()
    monkeypatch.chdir(ROOT)
    result = publish(admin, author="pipeline")
    assert result.published, result.message
    assert result.changes.pipeline
    recommended = json.loads((clone / "metrics.json").read_text())["recommended_threshold"]

    kiosk = with_recognition(fleet.kiosk("south"), threshold="auto")
    assert sync_gallery(kiosk).state == "synced"
    assert (kiosk.gallery.dir / "embeddings" / "embeddings.npz").is_file()
    rec = make_recognizer(kiosk, reload=False)

    def no_embedding(_faces: object) -> np.ndarray:
        raise AssertionError("the kiosk recomputed embeddings the pipeline had made")

    with monkeypatch.context() as patch:
        patch.setattr(rec.embedder, "embed", no_embedding)
        rec.reload_gallery()
    assert rec.index.size == 6
    assert rec.index.threshold == pytest.approx(recommended)
    [face] = rec.identify(ASTRONAUT[0])
    assert face.match is not None and face.match.name == "Ada"

    # `dvc exp run -S evaluate.target_far=0.2`: only evaluate runs again, with the new value.
    monkeypatch.chdir(clone)
    with Repo(str(clone)) as repo:
        results = repo.experiments.run(params=["params.yaml:evaluate.target_far=0.2"])
        assert results
        shown = repo.metrics.show()
    metrics = json.loads((clone / "metrics.json").read_text())
    assert metrics["target_far"] == 0.2
    assert shown


def test_threshold_auto_without_a_recommendation_falls_back(settings, caplog) -> None:
    from kiosk.recognition.recognizer import effective_threshold
    from kiosk.settings import DEFAULT_THRESHOLD, load_settings
    from tests.helpers import with_recognition

    assert effective_threshold(with_recognition(settings, threshold=0.5)) == 0.5
    auto = with_recognition(settings, threshold="auto")
    assert effective_threshold(auto) == DEFAULT_THRESHOLD
    assert "no recommended threshold" in caplog.text
    (auto.gallery.dir).mkdir(parents=True, exist_ok=True)
    (auto.gallery.dir / "metrics.json").write_text('{"recommended_threshold": 0.42}')
    assert effective_threshold(auto) == 0.42
    loaded = load_settings({"KIOSK_RECOGNITION_THRESHOLD": "auto"}, Path("/nonexistent"))
    assert loaded.recognition.threshold == "auto"
    loaded = load_settings({"KIOSK_RECOGNITION_THRESHOLD": "0.7"}, Path("/nonexistent"))
    assert loaded.recognition.threshold == 0.7
