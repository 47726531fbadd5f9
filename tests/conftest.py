"""Shared fixtures.

Every test runs with its own temporary data, config, cache and torch-home
directories and without the caller's ``KIOSK_*`` variables, so the suite never
reads or writes the user's real kiosk. FaceNet tests use an InceptionResnetV1
with random weights that the suite creates itself and loads through the real
loader (the vggface2 release cannot be downloaded here); such weights make
embeddings deterministic but meaningless, so tests assert plumbing (the same
image matches itself, a different one is farther), never recognition quality.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kiosk.settings import RecognitionSection, Settings, settings_for_data_dir


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KIOSK_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
        ("TORCH_HOME", "torch"),
    ):
        monkeypatch.setenv(var, str(home / sub))


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail any test that leaves a thread running.

    Every thread FaceKiosk starts is named ``kiosk-*`` and counts even when it is a
    daemon; other libraries' daemon threads (MLflow's, DVC's) are theirs to manage.
    """
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and (not t.daemon or t.name.startswith("kiosk"))
    ]
    for t in leaked:
        t.join(timeout=2.0)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def facenet_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An InceptionResnetV1 state dict with random (seeded) weights, saved like the release."""
    from tests.weights import write_random_facenet

    return write_random_facenet(tmp_path_factory.mktemp("weights") / "random-facenet.pt")


@pytest.fixture
def settings(tmp_path: Path, facenet_weights_file: Path) -> Settings:
    return settings_for_data_dir(
        tmp_path / "data", recognition=RecognitionSection(weights_path=facenet_weights_file)
    )


@pytest.fixture(scope="session")
def shared_models(facenet_weights_file: Path):
    """MTCNN and the random FaceNet, loaded once for the whole session (seconds each)."""
    import torch

    from kiosk.recognition import DetectorConfig, FaceDetector, load_weights_file

    device = torch.device("cpu")
    detector = FaceDetector(DetectorConfig(), device)
    facenet = load_weights_file(facenet_weights_file, device, source="test")
    return detector, facenet


@pytest.fixture
def make_recognizer(shared_models):
    """Build Recognizers on a test's settings, reusing the session's loaded models.

    The shared detector's config is reset from those settings every time, so no test
    inherits another's detection limits.
    """
    from kiosk.recognition import DetectorConfig, Recognizer

    detector, facenet = shared_models

    def make(settings: Settings, *, reload: bool = True) -> Recognizer:
        detector.config = DetectorConfig.from_settings(settings.recognition)
        rec = Recognizer(settings, detector, facenet)
        if reload:
            rec.reload_gallery()
        return rec

    return make


@pytest.fixture
def recognizer(settings: Settings, make_recognizer):
    """A Recognizer on the test's own data dir."""
    return make_recognizer(settings)


@pytest.fixture
def ui_settings(settings: Settings) -> Settings:
    """Settings for window tests: live threshold for random weights, looping files."""
    import dataclasses

    from kiosk.settings import CameraSection, PipelineSection, TelemetrySection

    return dataclasses.replace(
        settings,
        recognition=dataclasses.replace(settings.recognition, threshold=0.15),  # test_worker.py
        camera=CameraSection(loop_files=True),
        pipeline=PipelineSection(torch_threads=2),
        telemetry=TelemetrySection(flush_interval_s=0.5),
    )
