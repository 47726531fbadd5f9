"""The kiosk window end to end (offscreen Qt): live picture, overlays, status, closing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from kiosk.settings import Settings
from tests.video import ada_video, face_patch, scene

pytestmark = pytest.mark.slow


def kiosk_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kiosk")]


def test_window_streams_the_video_with_overlays_and_closes_every_thread(
    qtbot, ui_settings: Settings, make_recognizer, astronaut: np.ndarray, tmp_path: Path
) -> None:
    from kiosk.ui.main_window import MainWindow

    rec = make_recognizer(ui_settings)
    rec.enroll("Ada", [("still", scene((640, 480), [(face_patch(astronaut, 170), 220, 120)]))])
    video = ada_video(tmp_path / "ada.avi", astronaut)
    # No recognizer given: the window loads MTCNN and the random FaceNet state dict from
    # recognition.weights_path through the real loader, on its own threads.
    window = MainWindow(ui_settings, source=str(video))
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: window.video.painted_frames >= 10, timeout=30_000)
    qtbot.waitUntil(lambda: window.video.overlays_drawn > 0, timeout=30_000)
    qtbot.waitUntil(lambda: window.recent.count() >= 1, timeout=30_000)
    assert "Ada" in window.recent.item(0).text()
    # MLflow's first connection takes seconds (import, SQLite migrations); once it is up,
    # closing must not wait for it.
    qtbot.waitUntil(
        lambda: window.status_labels["telemetry"].text() == "Telemetry: ok", timeout=90_000
    )
    window.refresh_status()
    status = {k: label.text() for k, label in window.status_labels.items()}
    assert status["camera"].startswith("Camera: live")
    assert "CPU" in status["recognition"]
    assert status["gallery"].startswith("Gallery: 1 people")
    assert kiosk_threads(), "the pipeline runs on kiosk-* threads"

    window.close()  # closeEvent stops everything (2 s budget)
    assert window.controller.session is None
    qtbot.waitUntil(lambda: not kiosk_threads(), timeout=2_000)


def test_window_without_a_camera_says_so_and_offers_a_file(
    qtbot, ui_settings: Settings, make_recognizer, tmp_path: Path
) -> None:
    from kiosk.ui.main_window import MainWindow

    missing = tmp_path / "no-such-video.avi"
    window = MainWindow(ui_settings, source=str(missing), recognizer=make_recognizer(ui_settings))
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: window.source_panel.isVisible(), timeout=10_000)
    assert "no-such-video.avi" in window.source_message.text()
    assert window.status_labels["camera"].text() == "Camera: not available"
    window.close()
    assert not kiosk_threads()


def test_window_shows_before_torch_or_mlflow_are_imported(tmp_path: Path) -> None:
    code = f"""
import sys
from kiosk.settings import settings_for_data_dir
from kiosk.ui.app import application
from kiosk.ui.main_window import MainWindow
app = application()
window = MainWindow(settings_for_data_dir(__import__("pathlib").Path({str(tmp_path)!r})))
window.show()
app.processEvents()
heavy = sorted(m for m in ("torch", "mlflow", "dvc", "facenet_pytorch") if m in sys.modules)
print("visible", window.isVisible(), "heavy", heavy)
window.shutdown()
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert out.returncode == 0, out.stderr
    assert "visible True heavy []" in out.stdout


def test_a_saved_enrolment_is_audited_reloaded_and_published_to_the_fleet(
    qtbot, ui_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kiosk.sync
    from kiosk.admin import AuditLog
    from kiosk.recognition.gallery import Person
    from kiosk.recognition.recognizer import EnrollResult
    from kiosk.ui.main_window import MainWindow

    published = []

    def fake_publish(settings: Settings, *, author: str = "", stop=None) -> str:
        published.append((threading.current_thread().name, author))
        return "published 1 change as v2"

    monkeypatch.setattr(kiosk.sync, "publish", fake_publish)
    settings = dataclasses.replace(
        ui_settings, gallery=dataclasses.replace(ui_settings.gallery, repo="/srv/registry")
    )
    window = MainWindow(settings)  # not started: only the enrolment's follow-up runs
    qtbot.addWidget(window)
    reloads = []
    monkeypatch.setattr(window.controller, "request_reload", lambda **kw: reloads.append(kw))
    window._on_person_saved(EnrollResult(Person("ada-1", "Ada", None, "2026-12-03", ())))
    qtbot.waitUntil(lambda: "Published" in window.statusBar().currentMessage(), timeout=5000)
    assert published == [("kiosk-publish", f"{settings.kiosk.id} admin")]
    assert reloads == [{"reset_tracks": True}]
    audit = AuditLog(settings.audit_log, settings.kiosk.id).read()
    assert [(a["action"], a["detail"]) for a in audit] == [("person.enrol", "Ada (ada-1)")]
    window.close()
