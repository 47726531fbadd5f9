"""The ``kiosk`` command line, in process (fast) and as real subprocesses (entry points)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.cli import main
from tests.helpers import no_face, two_faces, write_image


@pytest.fixture
def kiosk_env(tmp_path: Path, facenet_weights_file: Path, monkeypatch: pytest.MonkeyPatch):
    env = {
        "KIOSK_PATHS_DATA_DIR": str(tmp_path / "data"),
        "KIOSK_RECOGNITION_WEIGHTS_PATH": str(facenet_weights_file),
        "KIOSK_RECOGNITION_THRESHOLD": "0.1",  # random test weights: see test_enrollment.py
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_enrol_identify_list_remove_round_trip(
    kiosk_env, capsys, tmp_path: Path, astronaut: np.ndarray
) -> None:
    ada = write_image(tmp_path / "ada.jpg", astronaut)
    other = write_image(tmp_path / "grace.png", np.ascontiguousarray(astronaut[:, :, ::-1]))
    group = write_image(tmp_path / "group.jpg", two_faces(astronaut))

    code, out, err = run(capsys, "enroll", "--name", "Ada Lovelace", str(ada), "--json")
    assert code == 0, err
    enrolled = json.loads(out)
    assert enrolled["name"] == "Ada Lovelace" and enrolled["images"] == 1

    code, out, err = run(capsys, "identify", str(ada), str(other), str(group), "--json")
    assert code == 0, err
    faces = [json.loads(line) for line in out.splitlines()]
    assert [f["image"] for f in faces] == [str(ada), str(other), str(group), str(group)]
    first = faces[0]
    assert first["identity"] == "Ada Lovelace" and first["person_id"] == enrolled["id"]
    assert first["match"] is True and first["distance"] < 0.1 and first["confidence"] > 0.9
    assert len(first["box"]) == 4
    assert faces[1]["identity"] is None and faces[1]["match"] is False
    assert faces[1]["distance"] > 0.1
    assert sorted(f["match"] for f in faces[2:]) == [True, True]

    code, out, _ = run(capsys, "people", "list", "--json")
    assert code == 0
    assert [(p["id"], p["name"]) for p in json.loads(out)] == [(enrolled["id"], "Ada Lovelace")]

    caches = list((Path(kiosk_env["KIOSK_PATHS_DATA_DIR"]) / "cache" / "embeddings").glob("*.npz"))
    assert len(caches) == 1 and len(np.load(caches[0])["hashes"]) == 1
    code, out, _ = run(capsys, "people", "remove", enrolled["id"])
    assert code == 0 and "removed Ada Lovelace" in out
    assert len(np.load(caches[0])["hashes"]) == 0  # the embedding went with the images
    code, out, _ = run(capsys, "people", "list", "--json")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "identify", str(ada), "--json")
    assert json.loads(out)["identity"] is None


def test_bad_enrolment_names_each_image_and_writes_nothing(
    kiosk_env, capsys, tmp_path: Path, astronaut: np.ndarray
) -> None:
    good = write_image(tmp_path / "good.jpg", astronaut)
    wall = write_image(tmp_path / "wall.png", no_face())
    pair = write_image(tmp_path / "pair.jpg", two_faces(astronaut))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:2000])
    code, out, err = run(
        capsys, "enroll", "--name", "Ada", str(good), str(wall), str(pair), str(broken)
    )
    assert code == 1 and out == ""
    assert "Ada was not enrolled; nothing was written" in err
    for path, reason in (
        (wall, "no usable face"),
        (pair, "2 faces found"),
        (broken, "corrupt or truncated"),
    ):
        line = next(x for x in err.splitlines() if str(path) in x)
        assert reason in line
    assert str(good) not in err
    assert not (Path(kiosk_env["KIOSK_PATHS_DATA_DIR"]) / "gallery" / "images").exists()

    code, _, err = run(capsys, "enroll", "--name", "a/b", str(good))
    assert code == 1 and "path separator" in err


def test_identify_bad_file_reports_and_continues(
    kiosk_env, capsys, tmp_path: Path, astronaut: np.ndarray
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    good = write_image(tmp_path / "good.jpg", astronaut)
    code, out, err = run(capsys, "identify", str(empty), str(good), "--json")
    assert code == 1
    assert "empty (0 bytes)" in err
    assert json.loads(out)["image"] == str(good)


def test_identify_without_weights_says_how_to_fix_it(
    capsys, tmp_path: Path, astronaut: np.ndarray, monkeypatch
) -> None:
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    image = write_image(tmp_path / "a.jpg", astronaut)
    code, out, err = run(capsys, "identify", str(image))
    assert code == 1 and out == ""
    assert "FaceNet weights (vggface2) are not available" in err
    assert "KIOSK_RECOGNITION_WEIGHTS_PATH" in err


def test_doctor_reports_weights_and_detection_only_mode(
    kiosk_env, capsys, monkeypatch, tmp_path: Path, astronaut: np.ndarray
) -> None:
    from tests.video import write_video

    video = write_video(tmp_path / "door.avi", [astronaut[:240, :320]] * 3, 12.0)
    monkeypatch.setenv("KIOSK_CAMERA_SOURCE", str(video))
    code, out, _ = run(capsys, "doctor", "--json")
    assert code == 0
    checks = {c["title"]: c for c in json.loads(out)}
    assert checks["camera"]["status"] == "ok"
    assert checks["camera"]["detail"] == f"{video}: 320x240 at 12 fps"
    assert checks["MTCNN self-test"]["status"] == "ok"
    assert checks["FaceNet weights"]["status"] == "ok"
    assert kiosk_env["KIOSK_RECOGNITION_WEIGHTS_PATH"] in checks["FaceNet weights"]["detail"]
    assert checks["device"]["detail"].startswith("cpu")
    assert "torch 2." in checks["versions"]["detail"]

    monkeypatch.delenv("KIOSK_RECOGNITION_WEIGHTS_PATH")
    code, out, _ = run(capsys, "doctor")
    assert code == 0  # degraded, not broken
    assert "WARN  FaceNet weights: not found: the kiosk runs in detection-only mode" in out
    assert "facenet-pytorch cache" in out


def test_doctor_fails_when_the_camera_cannot_be_opened(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KIOSK_CAMERA_SOURCE", "97")
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL  camera: camera 97 cannot be opened" in out
    assert "KIOSK_CAMERA_SOURCE" in out


def test_doctor_fails_on_an_unwritable_data_dir(capsys, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(blocker / "data"))
    monkeypatch.setenv("KIOSK_PATHS_LOG_DIR", str(tmp_path / "logs"))
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL  data dir" in out and "KIOSK_PATHS_DATA_DIR" in out


def test_doctor_fails_on_a_damaged_attendance_database(capsys, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "attendance.sqlite3").write_bytes(b"this is not SQLite" * 100)
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(data))
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL  attendance database" in out and "move the damaged file aside" in out


def test_config_show_prints_values_and_sources(capsys, tmp_path: Path, monkeypatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[recognition]\nmin_confidence = 0.95\n")
    monkeypatch.setenv("KIOSK_CONFIG", str(cfg))
    monkeypatch.setenv("KIOSK_RECOGNITION_THRESHOLD", "0.8")
    code, out, _ = run(capsys, "config", "show")
    assert code == 0
    assert f"# settings file: {cfg}" in out
    assert "threshold = 0.8  # env:KIOSK_RECOGNITION_THRESHOLD" in out
    assert f"min_confidence = 0.95  # file:{cfg}" in out
    assert "margin_ratio = 0.2  # default" in out
    code, out, _ = run(capsys, "config", "show", "--json")
    data = json.loads(out)["settings"]
    assert data["recognition.threshold"] == {
        "value": 0.8,
        "source": "env:KIOSK_RECOGNITION_THRESHOLD",
    }
    assert data["recognition.weights_path"]["value"] == ""


def test_settings_errors_exit_2_with_the_key(capsys, monkeypatch) -> None:
    monkeypatch.setenv("KIOSK_RECOGNITION_THRESHOLD", "5")
    code, out, err = run(capsys, "config", "show")
    assert code == 2 and out == ""
    assert "settings error: recognition.threshold = 5.0" in err


@pytest.mark.slow
def test_console_script_and_python_dash_m(tmp_path: Path, kiosk_env) -> None:
    env = {**os.environ, **kiosk_env}
    script = Path(sys.executable).with_name("kiosk")
    for cmd in ([str(script)], [sys.executable, "-m", "kiosk"]):
        done = subprocess.run(
            [*cmd, "people", "list"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "no one is enrolled yet" in done.stdout
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.startswith("FaceKiosk ")
