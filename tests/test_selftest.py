"""``kiosk --self-test``: passes on a working installation, fails with one clear line each.

The checks run for real (MTCNN, a FaceNet of random weights, MLflow's SQLite store, DVC,
SQLite, PySide6 offscreen); the failure cases break one thing each and assert that exactly
that check fails, that the others still run, and that the exit status says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiosk import cli, selftest
from kiosk.settings import Settings, TelemetrySection, settings_for_data_dir

pytestmark = pytest.mark.slow

TITLES = ["resources", "MTCNN", "FaceNet", "MLflow store", "DVC", "attendance database", "Qt"]


def run_lines(settings: Settings, *, require_facenet: bool = False) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = selftest.run(settings, require_facenet=require_facenet, print_line=lines.append)
    return ok, lines


def line_for(lines: list[str], title: str) -> str:
    found = [line for line in lines if line[5:].startswith(f"{title}:")]
    assert len(found) == 1, (title, lines)
    return found[0]


def test_self_test_passes_with_every_part_working(settings: Settings) -> None:
    ok, lines = run_lines(settings, require_facenet=True)

    assert ok, lines
    assert [line[5:].split(":")[0] for line in lines[:-1]] == TITLES
    for title in TITLES[:-1]:  # Qt may warn on a machine without the xcb libraries
        assert line_for(lines, title).startswith("OK   "), lines
    assert not any(line.startswith("FAIL") for line in lines)
    assert str(settings.recognition.weights_path) in line_for(lines, "FaceNet")
    assert "embedded the test face" in line_for(lines, "FaceNet")
    assert "found the face in selftest_face.jpg" in line_for(lines, "MTCNN")
    # The default store is the SQLite file in the data dir, created by MLflow's migrations.
    assert (settings.paths.data_dir / "mlflow.db").is_file()
    assert "0 check-ins, integrity ok" in line_for(lines, "attendance database")
    assert "widget rendered" in line_for(lines, "Qt")
    assert lines[-1].startswith("self-test passed: 7 checks")


def test_cli_flag_prints_one_line_per_check_and_exits_0(
    tmp_path: Path,
    facenet_weights_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KIOSK_RECOGNITION_WEIGHTS_PATH", str(facenet_weights_file))

    status = cli.main(["--self-test", "--require-facenet"])

    out = capsys.readouterr().out.splitlines()
    assert status == cli.EXIT_OK, out
    assert len(out) == len(TITLES) + 1
    assert out[-1].startswith("self-test passed")


def test_detection_only_mode_warns_and_fails_only_when_facenet_is_required(
    tmp_path: Path,
) -> None:
    settings = settings_for_data_dir(tmp_path / "data")  # no weights anywhere

    ok, lines = run_lines(settings)
    assert ok, lines
    facenet = line_for(lines, "FaceNet")
    assert facenet.startswith("WARN ")
    assert "detection-only mode" in facenet
    assert "KIOSK_RECOGNITION_WEIGHTS_PATH" in facenet  # the fix is on the line
    assert "1 warning" in lines[-1]

    ok, lines = run_lines(settings, require_facenet=True)
    assert not ok
    assert line_for(lines, "FaceNet").startswith("FAIL ")
    assert lines[-1] == "self-test FAILED: FaceNet (1 of 7 checks)"


def test_unusable_mlflow_store_fails_with_exit_1(
    tmp_path: Path,
    facenet_weights_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KIOSK_RECOGNITION_WEIGHTS_PATH", str(facenet_weights_file))
    monkeypatch.setenv("KIOSK_TELEMETRY_TRACKING_URI", f"sqlite:///{blocker}/mlflow.db")

    status = cli.main(["--self-test"])

    out = capsys.readouterr().out.splitlines()
    assert status == cli.EXIT_ERROR
    mlflow = line_for(out, "MLflow store")
    assert mlflow.startswith("FAIL ")
    assert str(blocker) in mlflow
    assert "fix: check telemetry.tracking_uri" in mlflow
    # Every other check still ran and passed.
    assert [line[:4] for line in out[:-1]].count("FAIL") == 1
    assert out[-1] == "self-test FAILED: MLflow store (1 of 7 checks)"


def test_corrupt_attendance_database_fails(settings: Settings) -> None:
    settings.attendance_db.parent.mkdir(parents=True, exist_ok=True)
    settings.attendance_db.write_bytes(b"this is not a database, it only sits there " * 200)

    ok, lines = run_lines(settings)

    assert not ok
    line = line_for(lines, "attendance database")
    assert line.startswith("FAIL ")
    assert str(settings.attendance_db) in line
    assert "move the damaged file aside" in line
    assert lines[-1] == "self-test FAILED: attendance database (1 of 7 checks)"


def test_telemetry_off_still_proves_mlflow_in_a_temporary_store(settings: Settings) -> None:
    settings = dataclasses.replace(settings, telemetry=TelemetrySection(enabled=False))

    ok, lines = run_lines(settings)

    assert ok, lines
    assert "telemetry is off: a temporary store" in line_for(lines, "MLflow store")
    assert not (settings.paths.data_dir / "mlflow.db").exists()


def test_a_check_that_crashes_is_a_failed_line_and_the_rest_still_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_dvc() -> selftest.Check:
        raise ModuleNotFoundError("No module named 'dvc_objects'")

    monkeypatch.setattr(selftest, "_dvc_check", broken_dvc)

    ok, lines = run_lines(settings)

    assert not ok
    dvc = line_for(lines, "DVC")
    assert dvc.startswith("FAIL DVC: ModuleNotFoundError: No module named 'dvc_objects'")
    assert "rebuild the bundle with scripts/build-bundle" in dvc
    assert line_for(lines, "Qt")  # ran after the crash


def test_missing_resources_fail(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "resources"
    empty.mkdir()
    monkeypatch.setattr(selftest, "resources_dir", lambda: empty)
    monkeypatch.setattr(selftest, "resource", lambda name: empty / name)

    ok, lines = run_lines(settings)

    assert not ok
    line = line_for(lines, "resources")
    assert line.startswith("FAIL ")
    assert "selftest_face.jpg, icon.png" in line
