"""The telemetry sink against the in-memory backend: batching, sessions, spool, shutdown."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kiosk.recognition.types import PipelineStats
from kiosk.settings import settings_for_data_dir
from kiosk.telemetry import (
    EVENT_METRICS,
    FakeBackend,
    SessionInfo,
    TelemetrySink,
    default_tracking_uri,
    resolve_tracking_uri,
)
from kiosk.telemetry.backend import BackendUnavailableError
from kiosk.telemetry.spool import Spool
from tests.telemetry_helpers import T0, event, telemetry_settings, wait_for, with_telemetry

INFO = SessionInfo(kiosk_id="k1", model_fingerprint="fp", device="cpu", gallery_version="v1")


def make_sink(
    data_dir: Path, fake: FakeBackend, **telemetry: object
) -> tuple[TelemetrySink, FakeBackend]:
    sink = TelemetrySink(
        telemetry_settings(data_dir, **telemetry),
        backend_factory=lambda uri: fake,
        retry_initial_s=0.05,
        retry_max_s=0.2,
    )
    sink.start()
    return sink, fake


def only_run(fake: FakeBackend):
    assert len(fake.runs) == 1, list(fake.runs)
    return next(iter(fake.runs.values()))


def steps(run, key: str) -> list[int]:
    return [m[3] for m in run.metrics if m[0] == key]


def test_importing_and_submitting_never_imports_mlflow(tmp_path: Path) -> None:
    code = f"""
import sys
from pathlib import Path
from kiosk.settings import settings_for_data_dir
from kiosk.telemetry import TelemetrySink, SessionInfo
from tests.telemetry_helpers import event
sink = TelemetrySink(settings_for_data_dir(Path({str(tmp_path)!r})))
sink.start_session(SessionInfo(kiosk_id="k"))
sink.submit(event(0))
sink.update_stats(__import__("kiosk.recognition.types").recognition.types.PipelineStats())
assert "mlflow" not in sys.modules, "mlflow imported on the caller's thread"
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_tracking_uri_setting_then_environment_then_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = settings_for_data_dir(tmp_path / "data")
    default = resolve_tracking_uri(settings, env={})
    assert default == default_tracking_uri(settings)
    assert default == f"sqlite:///{(tmp_path / 'data' / 'mlflow.db').resolve().as_posix()}"
    assert Path(default.removeprefix("sqlite:///")).is_absolute()
    env = {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000"}
    assert resolve_tracking_uri(settings, env=env) == "http://mlflow.example:5000"
    explicit = with_telemetry(settings, tracking_uri="http://central:5000")
    assert resolve_tracking_uri(explicit, env=env) == "http://central:5000"


def test_a_session_is_one_run_with_steps_params_tags_and_summary(tmp_path: Path) -> None:
    sink, fake = make_sink(tmp_path, FakeBackend(), flush_events=100)
    sink.start_session(INFO)
    n = 2500
    for i in range(n):
        sink.submit(event(i))
    sink.update_stats(PipelineStats(processing_fps=12.5, dropped_frames=7))
    sink.close()
    run = only_run(fake)
    for key in EVENT_METRICS:
        assert steps(run, key) == list(range(n)), key
    assert all(len(m) == 4 for m in run.metrics)
    d7 = next(m for m in run.metrics if m[0] == "distance" and m[3] == 7)
    assert d7 == ("distance", event(7).distance, int(event(7).wall_time * 1000), 7)
    assert run.params["facenet_model"] == "vggface2"
    assert run.params["threshold"] == "0.9"
    assert run.tags["gallery_version"] == "v1" and run.tags["model_fingerprint"] == "fp"
    summary = {m[0]: m[1] for m in run.metrics if m[3] == n}
    matches = sum(event(i).is_match for i in range(n))
    assert summary["total_verifications"] == n
    assert summary["successful_matches"] == matches
    assert summary["unknown_faces"] == n - matches
    assert summary["frames_per_second"] == 12.5
    assert summary["dropped_frames"] == 7
    assert run.status == "FINISHED"
    # batched: no log_batch call carries more than MLflow's 1000 metrics, and far fewer
    # calls than events were made
    assert fake.calls.count("log_batch") < n / 50


def test_an_infinite_distance_is_not_logged_and_not_averaged(tmp_path: Path) -> None:
    sink, fake = make_sink(tmp_path, FakeBackend())
    sink.start_session(INFO)
    sink.submit(event(1, distance=0.5))
    sink.submit(event(2, distance=float("inf")))
    sink.close()
    run = only_run(fake)
    assert steps(run, "distance") == [0]
    assert steps(run, "is_match") == [0, 1]
    assert {m[0]: m[1] for m in run.metrics}["avg_distance"] == 0.5


def test_n_events_are_sent_before_the_interval(tmp_path: Path) -> None:
    sink, fake = make_sink(tmp_path, FakeBackend(), flush_interval_s=3600, flush_events=20)
    sink.start_session(INFO)
    for i in range(20):
        sink.submit(event(i))
    wait_for(lambda: fake.runs and len(steps(only_run(fake), "distance")) == 20)
    sink.close()


def test_the_interval_sends_a_few_events(tmp_path: Path) -> None:
    sink, fake = make_sink(tmp_path, FakeBackend(), flush_interval_s=0.2, flush_events=1000)
    sink.start_session(INFO)
    for i in range(3):
        sink.submit(event(i))
    wait_for(lambda: fake.runs and len(steps(only_run(fake), "distance")) == 3, timeout=5)
    sink.close()


def test_offline_spools_then_replays_in_order_exactly_once(tmp_path: Path) -> None:
    fake = FakeBackend()
    sink, _ = make_sink(tmp_path, fake, flush_events=10)
    sink.start_session(INFO)
    for i in range(50):
        sink.submit(event(i))
    assert sink.flush(5)
    fake.offline = True
    for i in range(50, 150):
        sink.submit(event(i))
    status = wait_for(lambda: (s := sink.status()).state == "offline" and s.spooled == 500 and s)
    assert status.spooled_batches > 0
    assert "500 metrics" in status.message and "offline" in status.message
    assert sink.spool_path.stat().st_size > 0
    # the server comes back, but the first replayed batch "times out" after being stored
    fake.fail_after_apply = 1
    fake.offline = False
    assert not sink.flush(5)  # that attempt failed...
    assert sink.flush(5)  # ...and the retry sends only what is missing
    sink.close()
    run = only_run(fake)
    for key in EVENT_METRICS:
        assert steps(run, key) == list(range(150)), key
    assert sink.status().state == "ok"
    assert sink.spool_path.stat().st_size == 0


def test_the_spool_survives_a_restart_and_the_run_is_created_later(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.offline = True
    sink, _ = make_sink(tmp_path, fake)
    sink.start_session(INFO)
    for i in range(30):
        sink.submit(event(i))
    sink.close(timeout=2)
    assert sink.status().state == "offline"
    assert not fake.runs  # not even the run exists yet
    assert sink.spool_path.stat().st_size > 0

    fake.offline = False
    sink2, _ = make_sink(tmp_path, fake)
    assert sink2.flush(5)
    sink2.close()
    run = only_run(fake)
    assert run.start_ms == int(T0 * 1000) or run.start_ms > 0
    assert steps(run, "distance") == list(range(30))
    assert run.status == "FINISHED"
    assert run.params["device"] == "cpu"


def test_a_session_start_that_landed_is_not_created_twice(tmp_path: Path) -> None:
    fake = FakeBackend()
    sink, _ = make_sink(tmp_path, fake)
    sink.start_session(INFO)
    sink.submit(event(0))
    assert sink.flush(5)
    run_id = only_run(fake).run_id
    sink.close()
    # a new sink that replays a "start" for the same session finds the run by its tag
    spool = Spool(sink.spool_path, 10**6)
    spool.open()
    spool.append({"t": "start", "s": fake.runs[run_id].tags["kiosk.session_id"], "name": "x",
                  "ts": 1, "tags": {}, "params": {"device": "cpu"}})  # fmt: skip
    spool.close()
    sink2, _ = make_sink(tmp_path, fake)
    assert sink2.flush(5)
    sink2.close()
    assert list(fake.runs) == [run_id]


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_a_full_spool_drops_by_policy_and_counts(tmp_path: Path, policy: str) -> None:
    fake = FakeBackend()
    fake.offline = True
    # 10 events per batch = 50 metrics, about 2.5 kB; the spool holds about 4 batches
    sink, _ = make_sink(
        tmp_path, fake, flush_events=10, spool_max_mb=0.01, spool_full_policy=policy
    )
    sink.start_session(INFO)
    for i in range(200):
        sink.submit(event(i))
        if i % 10 == 9:
            sink.flush(2)
    sink.close(timeout=2)
    status = sink.status()
    assert status.dropped > 0
    assert f"{status.dropped} metrics were dropped" in status.message
    assert status.spooled + status.dropped == 1000 + 7  # + the summary at the session end
    fake.offline = False
    sink2, _ = make_sink(tmp_path, fake)
    assert sink2.flush(5)
    sink2.close()
    kept = steps(only_run(fake), "distance")
    assert kept == sorted(kept) and 0 < len(kept) < 200
    if policy == "drop_oldest":
        assert kept[-1] == 199 and kept[0] > 0
    else:
        assert kept[0] == 0 and kept[-1] < 199


def test_a_corrupt_spool_is_reported_and_the_rest_recovered(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.offline = True
    sink, _ = make_sink(tmp_path, fake, flush_events=10)
    sink.start_session(INFO)
    for i in range(40):
        sink.submit(event(i))
        if i % 10 == 9:
            sink.flush(2)
    sink.close(timeout=2)
    lines = sink.spool_path.read_text().splitlines()
    metric_lines = [n for n, line in enumerate(lines) if '"t":"m"' in line]
    damaged = metric_lines[1]  # the second batch: events 10..19
    lines[damaged] = lines[damaged].replace('"distance",0.', '"distance",9.')  # bad checksum
    sink.spool_path.write_text("\n".join(lines) + "\n" + '{"seq":99,"crc":1,"op":{"t":"m"')

    fake.offline = False
    sink2, _ = make_sink(tmp_path, fake)
    assert sink2.flush(5)
    status = sink2.status()
    sink2.close()
    assert status.last_error is not None
    assert "2 damaged record(s), skipped" in status.last_error
    assert str(sink.spool_path) in status.last_error
    kept = steps(only_run(fake), "distance")
    assert kept == [*range(10), *range(20, 40)]
    # reported once: the damaged lines are gone from the file
    sink3, _ = make_sink(tmp_path, fake)
    assert sink3.flush(5)
    assert sink3.status().last_error is None
    sink3.close()


def test_close_waits_at_most_its_timeout_and_keeps_the_rest(tmp_path: Path) -> None:
    class SlowBackend(FakeBackend):
        delay = 0.25

        def log_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            time.sleep(self.delay)
            super().log_batch(*args, **kwargs)

    fake = SlowBackend()
    sink, _ = make_sink(tmp_path, fake, flush_events=1, flush_interval_s=3600)
    sink.start_session(INFO)
    assert sink.flush(5)
    for i in range(60):
        sink.log_to_run(only_run(fake).run_id, metrics=[("x", 1.0, 1, i)])
    started = time.monotonic()
    sink.close(timeout=1.0)
    assert time.monotonic() - started < 1.6
    sent = len(steps(only_run(fake), "x"))
    assert 0 < sent < 60
    assert sink.status().spooled >= 60 - sent - 1

    fake.delay = 0.0
    sink2, _ = make_sink(tmp_path, fake)
    assert sink2.flush(30)
    sink2.close()
    assert steps(only_run(fake), "x") == list(range(60))


def test_daily_rollover_starts_a_new_run(tmp_path: Path) -> None:
    day1 = datetime(2026, 11, 27, 23, 59).timestamp()
    now = [day1]
    fake = FakeBackend()
    sink = TelemetrySink(
        telemetry_settings(tmp_path), backend_factory=lambda uri: fake, clock=lambda: now[0]
    )
    sink.start()
    sink.start_session(INFO)
    for i in range(5):
        sink.submit(event(i, t0=day1))
    midnight = (datetime(2026, 11, 28, 0, 0, 30)).timestamp()
    for i in range(3):
        sink.submit(event(i, t0=midnight))
    assert sink.flush(5)
    now[0] = midnight + timedelta(days=1).total_seconds()  # an idle kiosk rolls over too
    assert sink.flush(5)
    sink.close()
    runs = sorted(fake.runs.values(), key=lambda r: r.start_ms)
    assert len(runs) == 3
    assert [len(steps(r, "distance")) for r in runs] == [5, 3, 0]
    assert runs[0].name.startswith("k1-20261127-") and runs[1].name.startswith("k1-20261128-")
    assert [r.status for r in runs] == ["FINISHED"] * 3
    assert steps(runs[1], "distance") == [0, 1, 2]  # steps restart with the run


def test_enqueue_is_cheap_and_never_raises(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.offline = True
    sink, _ = make_sink(tmp_path, fake, flush_events=500)
    sink.start_session(INFO)
    events = [event(i) for i in range(20_000)]
    costs = []
    for e in events:
        started = time.perf_counter()
        sink.submit(e)
        costs.append(time.perf_counter() - started)
    assert statistics.median(costs) < 50e-6
    sink.close(timeout=2)
    sink.submit(events[0])  # after close: ignored, no error


def test_a_backend_that_cannot_even_start_is_offline_not_fatal(tmp_path: Path) -> None:
    def broken(uri: str) -> FakeBackend:
        raise BackendUnavailableError("no route to host")

    sink = TelemetrySink(telemetry_settings(tmp_path), backend_factory=broken)
    sink.start()
    sink.start_session(INFO)
    sink.submit(event(0))
    wait_for(lambda: sink.status().state == "offline")
    assert not sink.flush(2)
    sink.close(timeout=2)
    assert sink.status().spooled > 0


def test_a_refused_batch_is_dropped_with_an_error_state(tmp_path: Path) -> None:
    sink, fake = make_sink(tmp_path, FakeBackend())
    sink.start_session(INFO)
    assert sink.flush(5)
    run_id = only_run(fake).run_id
    sink.log_to_run(run_id, params={"threshold": "0.5"})  # params cannot change in MLflow
    assert sink.flush(5)
    status = sink.status()
    assert status.state == "error"
    assert "threshold" in (status.last_error or "")
    sink.submit(event(0))
    assert sink.flush(5)
    assert sink.status().state == "ok"  # later batches go through again
    sink.close()


def test_a_disabled_sink_does_nothing(tmp_path: Path) -> None:
    fake = FakeBackend()
    before = set(threading.enumerate())
    sink = TelemetrySink(
        telemetry_settings(tmp_path, enabled=False), backend_factory=lambda uri: fake
    )
    sink.start()
    sink.start_session(INFO)
    sink.submit(event(0))
    assert not sink.flush(1)
    sink.close()
    assert sink.status().state == "disabled"
    assert "off" in sink.status().message
    assert not fake.calls
    assert set(threading.enumerate()) <= before


def test_a_spool_held_by_another_process_falls_back_to_memory(tmp_path: Path) -> None:
    fake = FakeBackend()
    first, _ = make_sink(tmp_path, fake)
    wait_for(lambda: first.status().state == "ok")  # its thread holds the spool now
    second, _ = make_sink(tmp_path, fake)
    second.start_session(INFO)
    second.submit(event(0))
    assert second.flush(5)
    assert "in use by another FaceKiosk process" in (second.status().last_error or "")
    first.close()
    second.close()


def test_status_dict_is_json(tmp_path: Path) -> None:
    sink, _ = make_sink(tmp_path, FakeBackend())
    wait_for(lambda: sink.status().state == "ok")
    sink.close()
    data = json.loads(json.dumps(sink.status().as_dict()))
    assert data["state"] == "ok" and data["spooled"] == 0


def test_a_sink_that_was_never_started_holds_a_bounded_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiosk.telemetry import mlflow_sink

    monkeypatch.setattr(mlflow_sink, "MAX_QUEUED", 100)
    sink = TelemetrySink(telemetry_settings(tmp_path), backend_factory=lambda uri: FakeBackend())
    for i in range(150):
        sink.submit(event(i))
    assert sink.status().dropped == 50 * len(EVENT_METRICS)


def test_an_unexpected_failure_costs_one_cycle_not_the_thread(tmp_path: Path) -> None:
    class BuggyBackend(FakeBackend):
        bugs = 1

        def log_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.bugs:
                self.bugs -= 1
                raise RuntimeError("a bug")
            super().log_batch(*args, **kwargs)

    sink, fake = make_sink(tmp_path, BuggyBackend())
    sink.start_session(INFO)
    sink.flush(5)
    assert sink.status().state == "error"
    assert "a bug" in (sink.status().last_error or "")
    sink.start_session(INFO)
    sink.submit(event(0))
    assert sink.flush(5)
    assert sink.status().state == "ok"
    sink.close()
    assert [len(steps(r, "distance")) for r in fake.runs.values()] == [0, 1]


def test_closing_while_mlflow_still_opens_loses_nothing_if_the_process_waits(
    tmp_path: Path,
) -> None:
    opened = threading.Event()
    release = threading.Event()
    fake = FakeBackend()

    def slow_first_connection(uri: str) -> FakeBackend:  # like importing MLflow + migrations
        opened.set()
        release.wait(10)
        return fake

    sink = TelemetrySink(
        telemetry_settings(tmp_path, flush_events=1), backend_factory=slow_first_connection
    )
    sink.start()
    sink.start_session(INFO)
    for i in range(5):
        sink.submit(event(i))
    assert opened.wait(10)
    sink.close(timeout=0.3)  # the window closes; the connection cannot be interrupted
    assert not sink.wait_closed(0.1)
    release.set()
    assert sink.wait_closed(10)  # what the app does before exiting
    assert sink.status().spooled > 0

    sink2, _ = make_sink(tmp_path, fake)
    assert sink2.flush(30)
    sink2.close()
    assert steps(only_run(fake), "distance") == [0, 1, 2, 3, 4]
