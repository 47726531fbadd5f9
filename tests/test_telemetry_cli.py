"""``kiosk telemetry status|flush`` and the ``kiosk doctor`` telemetry check."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.doctor import _telemetry_check
from kiosk.settings import load_settings
from kiosk.telemetry import SessionInfo, TelemetrySink
from kiosk.telemetry.spool import Spool
from tests.telemetry_helpers import event, free_port, telemetry_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def spool_offline(data_dir: Path, n: int) -> None:
    """Leave n verifications in the kiosk's spool, as a kiosk without its server would."""
    dead = f"http://127.0.0.1:{free_port()}"
    sink = TelemetrySink(telemetry_settings(data_dir, tracking_uri=dead))
    sink.start()
    sink.start_session(SessionInfo(kiosk_id="k1"))
    for i in range(n):
        sink.submit(event(i))
    sink.close(timeout=3)
    assert sink.status().spooled >= 5 * n


def test_status_json_on_the_default_sqlite_store(data_dir: Path, capsys) -> None:
    code, out, _ = run(capsys, "telemetry", "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["state"] == "ok"
    assert status["spooled"] == 0
    assert status["tracking_uri"] == f"sqlite:///{(data_dir / 'mlflow.db').resolve().as_posix()}"


def test_status_and_flush_while_the_server_is_down(
    data_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_offline(data_dir, 20)
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("KIOSK_TELEMETRY_TRACKING_URI", dead)
    started = time.monotonic()
    code, out, _ = run(capsys, "telemetry", "status")
    assert time.monotonic() - started < 5
    assert code == 0
    assert "state: offline" in out and dead in out
    assert "spooled: 107 metrics" in out  # 20 events x 5 + the 7 summary metrics

    code, out, _ = run(capsys, "telemetry", "flush", "--timeout", "5", "--json")
    assert code == 1
    assert json.loads(out)["state"] == "offline"
    assert json.loads(out)["spooled"] == 107


def test_flush_sends_the_spool_when_the_store_answers(
    data_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spool_offline(data_dir, 20)
    uri = f"sqlite:///{(tmp_path / 'central.db').as_posix()}"
    monkeypatch.setenv("KIOSK_TELEMETRY_TRACKING_URI", uri)
    code, out, _ = run(capsys, "telemetry", "flush", "--json")
    assert code == 0, out
    assert json.loads(out)["spooled"] == 0
    assert json.loads(out)["sent"] == 107

    from mlflow import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name("facekiosk").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert [m.step for m in c.get_metric_history(runs[0].info.run_id, "distance")] == list(
        range(20)
    )
    code, out, _ = run(capsys, "telemetry", "status", "--json")
    assert json.loads(out)["spooled"] == 0


def test_flush_refuses_a_spool_held_by_the_running_kiosk(data_dir: Path, capsys) -> None:
    settings = load_settings()
    held = Spool(settings.paths.data_dir / "telemetry" / "spool.jsonl", 10**6)
    held.open()
    try:
        code, _, err = run(capsys, "telemetry", "flush", "--timeout", "2")
    finally:
        held.close()
    assert code == 1
    assert "in use by another FaceKiosk process" in err


def test_doctor_warns_within_seconds_when_the_server_is_unreachable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIOSK_TELEMETRY_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    check = _telemetry_check(load_settings())
    assert time.monotonic() - started < 3
    assert check.status == "warn" and check.title == "telemetry"
    assert "cannot reach" in check.detail and "KIOSK_TELEMETRY_TRACKING_URI" in check.fix

    monkeypatch.delenv("KIOSK_TELEMETRY_TRACKING_URI")
    assert _telemetry_check(load_settings()).status == "ok"
    monkeypatch.setenv("KIOSK_TELEMETRY_ENABLED", "false")
    assert _telemetry_check(load_settings()).status == "info"
