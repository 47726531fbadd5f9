"""Telemetry against real MLflow: an ``mlflow server`` on 127.0.0.1, and a SQLite URI."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kiosk.telemetry import (
    EVENT_METRICS,
    SUMMARY_METRICS,
    SessionInfo,
    TelemetrySink,
)
from kiosk.telemetry._model import SESSION_TAG
from tests.telemetry_helpers import event, free_port, telemetry_settings, wait_for

if TYPE_CHECKING:
    from tests.mlflow_server import MlflowServer

pytest_plugins = ["tests.mlflow_server"]

pytestmark = pytest.mark.slow

INFO = SessionInfo(
    kiosk_id="north-door",
    model_fingerprint="3f9a2c1d",
    device="cpu",
    gallery_version="md5:abc123",
    model_name="vggface2",
)


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def the_run(uri: str, experiment: str):
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def steps_of(uri: str, run_id: str, key: str) -> list[int]:
    return [m.step for m in client(uri).get_metric_history(run_id, key)]


@pytest.mark.parametrize("store", ["server", "sqlite"])
def test_a_session_of_2500_verifications_is_one_run(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if store == "server":
        uri = request.getfixturevalue("mlflow_server").url
    else:
        uri = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    settings = telemetry_settings(tmp_path / "data", tracking_uri=uri, experiment=f"e2e-{store}")
    sink = TelemetrySink(settings)
    sink.start()
    sink.start_session(INFO)
    n = 2500
    for i in range(n):
        sink.submit(event(i))
    sink.close(timeout=60)
    assert sink.status().spooled == 0

    run = the_run(uri, f"e2e-{store}")
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("north-door-")
    for key in EVENT_METRICS:
        history = client(uri).get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == list(range(n)), key
    distances = {m.step: m for m in client(uri).get_metric_history(run.info.run_id, "distance")}
    assert distances[7].value == pytest.approx(event(7).distance)
    assert distances[7].timestamp == int(event(7).wall_time * 1000)
    params = run.data.params
    assert params["mtcnn_min_confidence"] == "0.9"
    assert params["mtcnn_margin_ratio"] == "0.2"
    assert params["mtcnn_use_alignment"] == "True"
    assert params["facenet_use_prewhitening"] == "False"
    assert params["facenet_use_tta_flip"] == "False"  # live frames (pipeline.use_tta_flip)
    assert params["gallery_use_tta_flip"] == "True"  # enrolment (recognition.use_tta_flip)
    assert params["votes_to_decide"] == "2"
    assert params["facenet_model"] == "vggface2"
    assert params["threshold"] == "0.9"
    assert params["detection_width"] == "640"
    assert params["device"] == "cpu"
    tags = run.data.tags
    assert tags["kiosk_id"] == "north-door"
    assert tags["gallery_version"] == "md5:abc123"
    assert tags["model_fingerprint"] == "3f9a2c1d"
    assert tags["device"] == "cpu"
    assert tags["hostname"] and tags["app_version"]
    assert tags[SESSION_TAG]
    summary = run.data.metrics
    matches = sum(1 for i in range(n) if event(i).is_match)
    assert summary["total_verifications"] == n
    assert summary["successful_matches"] == matches
    assert summary["unknown_faces"] == n - matches
    assert summary["match_rate"] == pytest.approx(matches / n)
    assert summary["avg_distance"] == pytest.approx(
        statistics.fmean(event(i).distance for i in range(n))
    )
    assert summary["p50_latency_ms"] == pytest.approx(
        statistics.median(event(i).latency_ms for i in range(n))
    )
    assert 20 <= summary["p95_latency_ms"] <= 29
    assert set(SUMMARY_METRICS) - {"frames_per_second", "dropped_frames"} <= set(summary)


def test_server_down_mid_session_every_metric_arrives_once_in_order(
    own_mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    server = own_mlflow_server
    settings = telemetry_settings(
        tmp_path / "data", tracking_uri=server.url, experiment="restart", flush_events=50
    )
    sink = TelemetrySink(settings, retry_initial_s=0.2, retry_max_s=1.0)
    sink.start()
    sink.start_session(INFO)
    total = 0
    for _ in range(300):
        sink.submit(event(total))
        total += 1
    assert sink.flush(30)
    server.stop()
    for _ in range(600):
        sink.submit(event(total))
        total += 1
    status = wait_for(lambda: (s := sink.status()).state == "offline" and s.spooled and s)
    assert "offline" in status.message and str(status.spooled) in status.message
    server.start()
    for _ in range(300):
        sink.submit(event(total))
        total += 1
    assert sink.flush(60), sink.status()
    sink.close(timeout=30)
    assert sink.status().spooled == 0

    run = the_run(server.url, "restart")
    for key in EVENT_METRICS:
        steps = steps_of(server.url, run.info.run_id, key)
        duplicates = [s for s, c in Counter(steps).items() if c > 1]
        assert not duplicates, (key, duplicates[:10])
        assert sorted(steps) == list(range(total)), key
    assert run.info.status == "FINISHED"
    assert run.data.metrics["total_verifications"] == total


def test_a_closed_port_never_blocks_the_caller_and_reports_offline(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    settings = telemetry_settings(tmp_path / "data", tracking_uri=uri, flush_events=200)
    sink = TelemetrySink(settings)
    sink.start()
    sink.start_session(INFO)
    costs = []
    for i in range(20_000):
        started = time.perf_counter()
        sink.submit(event(i))
        costs.append(time.perf_counter() - started)
    assert statistics.median(costs) < 50e-6
    status = wait_for(lambda: (s := sink.status()).state == "offline" and s.spooled > 0 and s)
    assert uri in status.message
    started = time.monotonic()
    sink.close(timeout=3)
    assert time.monotonic() - started < 5
    assert sink.spool_path.stat().st_size > 0  # kept for the next start
