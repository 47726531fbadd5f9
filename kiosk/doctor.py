"""``kiosk doctor``: what this kiosk runs on, what works, and how to fix what does not.

Each check returns a :class:`Check`; ``fail`` means the kiosk cannot do its job
(the command exits 1), ``warn`` means it runs degraded (e.g. detection-only
mode without FaceNet weights) and says the fix.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kiosk import __version__
from kiosk.errors import KioskError
from kiosk.resources import resource
from kiosk.settings import Settings

Status = Literal["ok", "warn", "fail", "info"]


@dataclass(frozen=True)
class Check:
    status: Status
    title: str
    detail: str = ""
    fix: str = ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _writable(path: Path) -> str | None:
    """None if we can create files in ``path`` (creating it if needed), else why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def run_checks(settings: Settings) -> Iterator[Check]:
    """Yield checks one by one, so the CLI can print each as soon as it is known."""
    yield Check(
        "info",
        f"FaceKiosk {__version__}",
        f"Python {platform.python_version()} on {platform.platform()}",
    )
    cfg = settings.config_file
    yield Check(
        "info",
        "settings",
        f"file {cfg}" if cfg else "no settings file; defaults and KIOSK_* variables",
    )
    for label, path, variable in (
        ("data dir", settings.paths.data_dir, "KIOSK_PATHS_DATA_DIR"),
        ("log dir", settings.paths.log_dir, "KIOSK_PATHS_LOG_DIR"),
        ("gallery dir", settings.gallery.dir, "KIOSK_GALLERY_DIR"),
    ):
        why = _writable(path)
        yield (
            Check("ok", label, str(path))
            if why is None
            else Check(
                "fail",
                label,
                f"{path} is not writable: {why}",
                f"make it writable, or set {variable} to another folder",
            )
        )
    yield _camera_check(settings)
    yield _telemetry_check(settings)
    yield attendance_check(settings)
    yield _gallery_registry_check(settings)
    yield from _model_checks(settings)


def attendance_check(settings: Settings) -> Check:
    """The attendance records open, are counted and pass SQLite's integrity check."""
    from kiosk.attendance.store import AttendanceStore

    path = settings.attendance_db
    fix = (
        "move the damaged file aside (the kiosk starts a new one) and restore a backup; "
        f"or set KIOSK_PATHS_DATA_DIR to another folder ({path})"
    )
    try:
        store = AttendanceStore(path)
    except KioskError as exc:
        return Check("fail", "attendance database", str(exc), fix)
    try:
        count = store.count()
        intact = store.integrity_ok()
    except KioskError as exc:
        return Check("fail", "attendance database", str(exc), fix)
    finally:
        store.close()
    if not intact:
        return Check("fail", "attendance database", f"{path} fails SQLite's integrity check", fix)
    return Check("ok", "attendance database", f"{path}: {count} check-ins, integrity ok")


def _camera_check(settings: Settings) -> Check:
    from kiosk.camera.source import probe_source

    ok, detail = probe_source(settings.camera.source, settings.camera)
    if ok:
        return Check("ok", "camera", detail)
    return Check(
        "fail",
        "camera",
        detail,
        "connect the camera or set camera.source (KIOSK_CAMERA_SOURCE) to another index, "
        "a video file or a stream URL",
    )


def _gallery_registry_check(settings: Settings) -> Check:
    from kiosk.sync.status import doctor_summary

    status, detail, fix = doctor_summary(settings)
    return Check(status, "gallery registry", detail, fix)


def _telemetry_check(settings: Settings) -> Check:
    """MLflow reachable? Metrics waiting in the spool? (at most ~2 s, no MLflow import)"""
    from kiosk.telemetry.report import doctor_check

    status, title, detail, fix = doctor_check(settings)
    return Check(status, title, detail, fix)


def _model_checks(settings: Settings) -> Iterator[Check]:
    started = time.perf_counter()
    import torch

    yield Check(
        "info",
        "versions",
        ", ".join(
            f"{name} {_version(dist)}"
            for name, dist in (
                ("torch", "torch"),
                ("torchvision", "torchvision"),
                ("facenet-pytorch", "facenet-pytorch"),
                ("opencv", "opencv-python-headless"),
                ("numpy", "numpy"),
                ("pillow", "pillow"),
            )
        )
        + f" (torch imported in {time.perf_counter() - started:.1f} s)",
    )

    from kiosk.recognition import Recognizer
    from kiosk.recognition.device import resolve_device

    try:
        device = resolve_device(settings.recognition.device)
    except KioskError as exc:
        yield Check("fail", "device", str(exc))
        return
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    yield Check(
        "ok",
        "device",
        f"{device}{' (' + gpu + ')' if gpu else ''}; "
        f"CUDA available: {torch.cuda.is_available()}; torch threads: "
        f"{torch.get_num_threads()} of {os.cpu_count()} CPUs",
    )

    try:
        recognizer = Recognizer.create(settings)
    except KioskError as exc:
        yield Check("fail", "recognition core", str(exc))
        return
    yield _selftest_check(recognizer.detector.detect)
    if recognizer.facenet is not None:
        fn = recognizer.facenet
        yield Check(
            "ok", "FaceNet weights", f"{fn.path} ({fn.source}); fingerprint {fn.fingerprint}"
        )
    else:
        yield Check(
            "warn",
            "FaceNet weights",
            "not found: the kiosk runs in detection-only mode (faces are boxed, "
            f"nobody is recognised).\n{recognizer.model_error}",
        )
    images = sum(len(p.images) for p in recognizer.people.values())
    yield Check(
        "ok",
        "gallery",
        f"{len(recognizer.people)} people, {images} images, "
        f"{recognizer.index.size} templates indexed; threshold "
        f"{settings.recognition.threshold} (L2 distance)",
    )


def _selftest_check(detect: Callable[[np.ndarray], Sequence[object]]) -> Check:
    from kiosk.imaging import load_image

    path = resource("selftest_face.jpg")
    try:
        image = load_image(path, max_pixels=10_000_000, max_bytes=10_000_000)
    except KioskError as exc:
        return Check("warn", "MTCNN self-test", f"test image unavailable: {exc}")
    started = time.perf_counter()
    faces = detect(image)
    ms = (time.perf_counter() - started) * 1000
    if len(faces) != 1:
        return Check(
            "fail",
            "MTCNN self-test",
            f"found {len(faces)} faces in {path}, expected 1",
            "reinstall facenet-pytorch==2.5.3 (its bundled MTCNN weights may be damaged)",
        )
    return Check("ok", "MTCNN self-test", f"found the face in {path.name} in {ms:.0f} ms")
