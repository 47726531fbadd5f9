"""``kiosk gallery init|sync|publish|status`` and the doctor's registry check."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.settings import load_settings
from kiosk.sync.status import doctor_summary
from tests.sync_helpers import enrol_bytes

pytest_plugins = ["tests.sync_support"]


@pytest.fixture
def kiosk_env(git_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = tmp_path / "registry"
    monkeypatch.setenv("KIOSK_PATHS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KIOSK_KIOSK_ID", "north")
    monkeypatch.setenv("KIOSK_GALLERY_SYNC_INTERVAL_S", "0")
    return registry


def test_gallery_commands(kiosk_env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    registry = kiosk_env
    assert main(["gallery", "status", "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert local["configured"] is False
    assert main(["gallery", "publish"]) == 1
    assert "no gallery registry is configured" in capsys.readouterr().err

    assert main(["gallery", "init", str(registry)]) == 0
    assert "created the gallery registry" in capsys.readouterr().out
    assert main(["gallery", "init", str(registry)]) == 1
    assert "not empty" in capsys.readouterr().err

    monkeypatch.setenv("KIOSK_GALLERY_REPO", str(registry))
    assert main(["gallery", "sync"]) == 0
    assert capsys.readouterr().out.startswith("synced ")
    settings = load_settings()
    ada = enrol_bytes(settings, "Ada")
    assert main(["gallery", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending"]["added"] == [ada]
    assert status["reachable"] is True
    level, detail, fix = doctor_summary(settings)
    assert level == "warn" and "1 enrolled" in detail and "publish" in fix

    assert main(["gallery", "publish", "--author", "desk", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {
        "published": True,
        "message": "published",
        "added": [ada],
        "removed": [],
        "weights": [],
    }
    started = time.perf_counter()
    level, detail, _fix = doctor_summary(settings)
    assert time.perf_counter() - started < 3.0
    assert level == "ok", detail
    assert main(["gallery", "status"]) == 0
    out = capsys.readouterr().out
    assert "version" in out and "unpublished nothing" in out


def test_doctor_check_registry_unreachable(kiosk_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("KIOSK_GALLERY_REPO", str(kiosk_env / "nowhere"))
    level, detail, fix = doctor_summary(load_settings())
    assert level == "warn"
    assert "unreachable" in detail
    assert "last synced version" in fix
