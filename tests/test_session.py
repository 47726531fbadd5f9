"""The live pipeline end to end: camera -> recognition -> telemetry, and ``kiosk live``."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kiosk.camera.capture import CameraState
from kiosk.camera.source import ArraySource
from kiosk.cli import main
from kiosk.live import LivePipeline
from kiosk.recognition import Recognizer
from kiosk.recognition.types import VerificationEvent
from kiosk.session import KioskSession
from kiosk.settings import PipelineSection, Settings, TelemetrySection
from kiosk.telemetry import FakeBackend, TelemetrySink
from tests.helpers import wait_until, with_recognition, write_image
from tests.video import face_patch, scene, two_people_walking, write_video

pytestmark = pytest.mark.slow
THRESHOLD = 0.15  # see tests/test_worker.py


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        with_recognition(settings, threshold=THRESHOLD),
        pipeline=PipelineSection(torch_threads=2),
        telemetry=TelemetrySection(flush_interval_s=0.2),
    )


@pytest.fixture
def still(astronaut: np.ndarray) -> np.ndarray:
    return scene((640, 480), [(face_patch(astronaut, 150), 200, 100)])


def test_session_sends_each_verification_to_one_telemetry_run(
    live_settings: Settings, make_recognizer, astronaut: np.ndarray, still: np.ndarray
) -> None:
    rec: Recognizer = make_recognizer(live_settings)
    rec.enroll("Ada", [("still", still)])
    fake = FakeBackend()
    sink = TelemetrySink(live_settings, tracking_uri="fake://", backend_factory=lambda uri: fake)
    heard: list[VerificationEvent] = []
    source = ArraySource(two_people_walking(astronaut, 30, step=3), fps=15.0)
    session = KioskSession(
        live_settings,
        rec,
        source=source,
        telemetry=sink,
        gallery_version=lambda: "abc1234",
        on_event=heard.append,
    )
    session.start()
    try:
        assert wait_until(lambda: session.pipeline.camera.status.state is CameraState.STOPPED)
        worker, buffer = session.pipeline.worker, session.pipeline.camera.buffer
        assert wait_until(lambda: not buffer.pending and worker.handled == buffer.taken_count)
    finally:
        assert session.stop(timeout=10.0)
    assert sorted(e.name or "?" for e in heard) == ["?", "Ada"], heard
    assert len({e.track_id for e in heard}) == 2
    (run,) = fake.runs.values()
    assert run.tags["kiosk_id"] == live_settings.kiosk.id
    assert run.tags["gallery_version"] == "abc1234"
    assert run.tags["model_fingerprint"] == rec.model_fingerprint
    assert run.status == "FINISHED"
    assert run.params["threshold"] == str(THRESHOLD)  # the one in effect
    distances = [row for row in run.metrics if row[0] == "distance"]
    assert sorted(row[3] for row in distances) == [0, 1]  # one step per verification
    matches = sorted(row[1] for row in run.metrics if row[0] == "is_match")
    assert matches == [0.0, 1.0]  # Ada, and a stranger
    summary = {row[0]: row[1] for row in run.metrics}
    assert summary["total_verifications"] == 2 and summary["successful_matches"] == 1


def test_pipeline_stops_promptly_even_while_the_models_are_loading(
    live_settings: Settings, rec_factory_gate
) -> None:
    build, gate = rec_factory_gate
    pipeline = LivePipeline(
        live_settings, build, source=ArraySource([np.zeros((48, 64, 3), np.uint8)], loop=True)
    )
    pipeline.start()
    start = time.monotonic()
    pipeline.stop(timeout=2.0)  # the load cannot be interrupted; stop must not hang on it
    assert time.monotonic() - start < 2.5
    gate.set()
    assert pipeline.worker.join(timeout=10)
    assert pipeline.camera.status.state is CameraState.STOPPED


@pytest.fixture
def rec_factory_gate(live_settings: Settings, make_recognizer):
    gate = threading.Event()

    def build() -> Recognizer:
        gate.wait(10)
        return make_recognizer(live_settings)

    return build, gate


def test_kiosk_live_cli_prints_each_verification_and_logs_them_to_mlflow(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    facenet_weights_file: Path,
    astronaut: np.ndarray,
    still: np.ndarray,
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(data))
    monkeypatch.setenv("KIOSK_RECOGNITION_WEIGHTS_PATH", str(facenet_weights_file))
    monkeypatch.setenv("KIOSK_RECOGNITION_THRESHOLD", str(THRESHOLD))
    monkeypatch.setenv("KIOSK_PIPELINE_TORCH_THREADS", "2")
    assert main(["enroll", "--name", "Ada", str(write_image(tmp_path / "ada.png", still))]) == 0
    video = write_video(tmp_path / "door.avi", two_people_walking(astronaut, 30, step=3), 15.0)
    capsys.readouterr()
    assert main(["live", "--source", str(video), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events, summary = lines[:-1], lines[-1]["summary"]
    assert sorted(e["name"] or "?" for e in events) == ["?", "Ada"], events
    assert len({e["track_id"] for e in events}) == 2
    assert summary["frames_captured"] == 30 and summary["verifications"] == 2
    # On a loaded machine MLflow may still be starting when the session ends; what was not
    # sent is spooled, and the flush command sends it (it is a no-op when all was sent).
    assert main(["telemetry", "flush", "--timeout", "120"]) == 0
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{data / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "facekiosk"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert len(client.get_metric_history(run.info.run_id, "distance")) == 2
    assert run.data.metrics["total_verifications"] == 2


def test_kiosk_live_cli_reports_a_missing_video_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    assert main(["live", "--source", str(tmp_path / "nope.mp4")]) == 1
    err = capsys.readouterr().err
    assert "nope.mp4 does not exist" in err and "camera.source" in err


def test_a_person_published_by_another_kiosk_is_recognised_without_a_restart(
    request: pytest.FixtureRequest, make_recognizer, astronaut: np.ndarray, still: np.ndarray
) -> None:
    """Kiosk B runs live on an empty gallery; its background sync brings Ada from A."""
    from kiosk.sync import publish, sync_gallery
    from kiosk.sync.sync import SyncStatus

    request.getfixturevalue("git_env")
    fleet = request.getfixturevalue("fleet")
    a = fleet.kiosk("north")
    assert sync_gallery(a).state == "synced"
    make_recognizer(a).enroll("Ada", [("still", still)])
    assert publish(a).published

    b = fleet.kiosk("south")
    b = dataclasses.replace(
        with_recognition(b, threshold=THRESHOLD), pipeline=PipelineSection(torch_threads=2)
    )
    rec_b: Recognizer = make_recognizer(b)
    assert rec_b.people == {}
    fake = FakeBackend()
    sink = TelemetrySink(b, tracking_uri="fake://", backend_factory=lambda uri: fake)
    heard: list[VerificationEvent] = []
    statuses: list[SyncStatus] = []
    source = ArraySource(two_people_walking(astronaut, 12, step=3), fps=10.0, loop=True)
    session = KioskSession(
        b,
        rec_b,
        source=source,
        telemetry=sink,
        on_event=heard.append,
        on_sync_status=statuses.append,
    )
    assert session.gallery_sync is not None
    session.start()
    try:
        assert wait_until(lambda: any(e.name == "Ada" for e in heard), timeout=180), heard
    finally:
        assert session.stop(timeout=10.0)
    assert any(s.state == "synced" for s in statuses)
    assert [p.name for p in rec_b.people.values()] == ["Ada"]


pytest_plugins = ["tests.sync_support"]
