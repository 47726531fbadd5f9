"""``kiosk --self-test``: prove that this installation, or this bundle, can do its job.

``kiosk doctor`` describes a kiosk (versions, camera, registry, data dirs) and warns about
what runs degraded. The self-test answers one question with its exit status: does every
part FaceKiosk packs in actually work here? Packaging torch, PySide6, MLflow and DVC into
one folder is where face-recognition apps break (model files, package metadata or
migration scripts left behind, a Qt plugin that cannot load), and each of those shows up
here as one failed line:

- **resources**: ``resources/`` is found (the bundle's copy, under ``sys._MEIPASS``);
- **MTCNN**: its weights load and it finds the face in ``resources/selftest_face.jpg``
  (the check ``kiosk doctor`` runs, reused);
- **FaceNet**: the weights load and embed that face; without weights the kiosk runs in
  detection-only mode, which is a warning (the fix is printed) unless
  ``--require-facenet`` makes it a failure;
- **MLflow store**: the configured tracking store opens, the kiosk's experiment is created
  or found and searched (for the default SQLite store that runs MLflow's schema
  migrations, which MLflow loads as files);
- **DVC**: DVC imports and initialises a repository in a temporary folder;
- **attendance database**: opens, is readable and passes SQLite's integrity check;
- **Qt**: PySide6 loads, renders a widget offscreen, reads the icon, and the platform
  plugin for this system's window loads.

This module stays headless like the rest of the core: the Qt check lives in
:mod:`kiosk.ui.selftest_qt` and is imported by name, inside :func:`_qt_check`, only when
the self-test runs (``tests/test_boundary.py`` checks that no core module imports Qt).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.doctor import Check, _selftest_check, attendance_check
from kiosk.errors import KioskError
from kiosk.resources import resource, resources_dir
from kiosk.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from kiosk.recognition.types import Detection

#: The files the bundle must carry in ``resources/`` (the window's styles and sounds are
#: checked by the window itself when it loads them).
REQUIRED_RESOURCES = ("selftest_face.jpg", "icon.png")

_REBUILD = "rebuild the bundle with scripts/build-bundle (see README, Packaging and deployment)"


def run_self_test(settings: Settings, *, require_facenet: bool = False) -> Iterator[Check]:
    """Yield one check at a time (each takes up to a few seconds), so each can be printed."""
    yield _guarded("resources", _resources_check)
    checks = _guarded_many("models", lambda: _model_checks(settings, require_facenet))
    yield from checks
    yield _guarded("MLflow store", lambda: _mlflow_check(settings))
    yield _guarded("DVC", _dvc_check)
    yield _guarded("attendance database", lambda: attendance_check(settings))
    yield _guarded("Qt", _qt_check)


def run(
    settings: Settings,
    *,
    require_facenet: bool = False,
    print_line: Callable[[str], None] = print,
) -> bool:
    """Run every check, print one line each and a summary; True if none failed."""
    failed: list[str] = []
    warnings = 0
    count = 0
    for check in run_self_test(settings, require_facenet=require_facenet):
        count += 1
        print_line(format_check(check))
        if check.status == "fail":
            failed.append(check.title)
        elif check.status == "warn":
            warnings += 1
    if failed:
        print_line(f"self-test FAILED: {', '.join(failed)} ({len(failed)} of {count} checks)")
        return False
    note = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    print_line(f"self-test passed: {count} checks{note}")
    return True


def format_check(check: Check) -> str:
    """``STATUS title: detail (fix: ...)`` on one line, however many lines the detail has."""
    line = f"{check.status.upper():<4} {check.title}: {_one_line(check.detail)}"
    if check.fix:
        line += f" (fix: {_one_line(check.fix)})"
    return line


def _one_line(text: str) -> str:
    return "; ".join(part.strip(" -") for part in text.splitlines() if part.strip())


def _guarded(title: str, check: Callable[[], Check]) -> Check:
    """The check's result, or a failed line naming what went wrong.

    The self-test must report on a broken installation, not crash on it: whatever one
    check raises (a missing module in a bundle is an ImportError, a damaged file anything)
    becomes that check's failure, and the other checks still run.
    """
    try:
        return check()
    except Exception as exc:
        return Check("fail", title, _describe(exc), _REBUILD if _is_packaging(exc) else "")


def _guarded_many(title: str, checks: Callable[[], Iterator[Check]]) -> Iterator[Check]:
    try:
        yield from checks()
    except Exception as exc:
        yield Check("fail", title, _describe(exc), _REBUILD if _is_packaging(exc) else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KioskError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _is_packaging(exc: BaseException) -> bool:
    """Errors that mean a file or module is missing from the installation itself."""
    return isinstance(exc, ImportError | importlib.metadata.PackageNotFoundError)


def _resources_check() -> Check:
    folder = resources_dir()
    missing = [name for name in REQUIRED_RESOURCES if not resource(name).is_file()]
    if missing:
        return Check(
            "fail",
            "resources",
            f"{folder} lacks {', '.join(missing)}",
            _REBUILD if _frozen() else "restore resources/ from the FaceKiosk source tree",
        )
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    return Check("ok", "resources", f"{folder} ({files} files)")


def _frozen() -> bool:
    import sys

    return bool(getattr(sys, "frozen", False))


def _model_checks(settings: Settings, require_facenet: bool) -> Iterator[Check]:
    from kiosk.recognition import Recognizer

    started = time.perf_counter()
    try:
        recognizer = Recognizer.create(settings)
    except KioskError as exc:
        yield Check("fail", "MTCNN", str(exc))
        yield Check("fail", "FaceNet", "not checked: the models could not be loaded (above)")
        return
    loaded_s = time.perf_counter() - started
    seen: list[tuple[np.ndarray, list[Detection]]] = []  # the test image and its face

    def detect(image: np.ndarray) -> list[Detection]:
        faces = recognizer.detector.detect(image)
        seen.append((image, faces))
        return faces

    detected = _selftest_check(detect)
    if detected.status != "ok":  # in a self-test a missing test image is a broken install
        fix = detected.fix or _REBUILD
        yield Check("fail", "MTCNN", detected.detail, fix)
    else:
        yield Check("ok", "MTCNN", f"{detected.detail} (models loaded in {loaded_s:.1f} s)")

    if recognizer.facenet is None:
        error = recognizer.model_error
        tried = "; ".join(f"{what}: {why}" for what, why in error.tried) if error else ""
        yield Check(
            "fail" if require_facenet else "warn",
            "FaceNet",
            "no weights, detection-only mode (faces are boxed, nobody is recognised); "
            f"tried {tried}",
            "put 20180402-114759-vggface2.pt in <data dir>/gallery/weights/ or set "
            "KIOSK_RECOGNITION_WEIGHTS_PATH (README, FaceNet weights)",
        )
        return
    if detected.status != "ok":
        yield Check("fail", "FaceNet", "not tried: MTCNN found no face to embed")
        return
    image, faces = seen[0]  # MTCNN's check already loaded the image and found the face
    started = time.perf_counter()
    embedding = recognizer.embed(image, faces[:1])
    ms = (time.perf_counter() - started) * 1000
    norm = float((embedding[0] ** 2).sum()) ** 0.5
    facenet = recognizer.facenet
    if embedding.shape != (1, 512) or not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        yield Check(
            "fail",
            "FaceNet",
            f"{facenet.path}: the embedding of the test face is not a unit 512-d vector "
            f"(shape {embedding.shape}, norm {norm:.3f})",
            "replace the weights file with the vggface2 release (README, FaceNet weights)",
        )
        return
    yield Check(
        "ok",
        "FaceNet",
        f"{facenet.path} ({facenet.source}), fingerprint {facenet.fingerprint}; "
        f"embedded the test face in {ms:.0f} ms",
    )


def _mlflow_check(settings: Settings) -> Check:
    from kiosk.telemetry import resolve_tracking_uri
    from kiosk.telemetry._model import artifact_dir, display_uri
    from kiosk.telemetry.backend import MlflowBackend, artifact_uri

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-selftest-mlflow-") as tmp:
        if settings.telemetry.enabled:
            uri, where = resolve_tracking_uri(settings), ""
            location = artifact_uri(artifact_dir(settings)) if uri.startswith("sqlite:") else None
        else:  # still prove that MLflow and its migrations work in this installation
            uri = f"sqlite:///{(Path(tmp) / 'mlflow.db').as_posix()}"
            where, location = " (telemetry is off: a temporary store)", None
        try:
            backend = MlflowBackend(uri)
            experiment = backend.ensure_experiment(settings.telemetry.experiment, location)
            backend.find_run(experiment, "kiosk.selftest", "probe")
        except KioskError as exc:
            return Check(
                "fail",
                "MLflow store",
                f"{display_uri(uri)}: {exc}",
                "check telemetry.tracking_uri (KIOSK_TELEMETRY_TRACKING_URI) or "
                "$MLFLOW_TRACKING_URI, and that the server or the database's folder is there",
            )
        finally:
            if not settings.telemetry.enabled:
                _forget_mlflow_engine(uri)
    version = importlib.metadata.version("mlflow-skinny")
    return Check(
        "ok",
        "MLflow store",
        f"MLflow {version}, {display_uri(uri)}{where}: experiment "
        f"{settings.telemetry.experiment!r} opened and searched in "
        f"{time.perf_counter() - started:.1f} s",
    )


def _forget_mlflow_engine(uri: str) -> None:
    """Close the SQLite connections MLflow keeps to ``uri``, so its temporary folder can go.

    MLflow's SQL store caches one SQLAlchemy engine per database URI for the life of the
    process (``SqlAlchemyStore._engine_map``); an open file cannot be deleted on Windows.
    """
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:
        return
    engines = getattr(SqlAlchemyStore, "_engine_map", None)
    engine = engines.pop(uri, None) if isinstance(engines, dict) else None
    if engine is not None:
        engine.dispose()


def _dvc_check() -> Check:
    from dvc.repo import Repo

    from kiosk.sync._dvc import quiet_dvc_console

    quiet_dvc_console()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-selftest-dvc-") as tmp:
        repo = Repo.init(tmp, no_scm=True)
        try:
            initialised = (Path(tmp) / ".dvc" / "config").is_file()
        finally:
            repo.close()
    if not initialised:
        return Check("fail", "DVC", f"Repo.init wrote no .dvc/config in {tmp}", _REBUILD)
    return Check(
        "ok",
        "DVC",
        f"DVC {importlib.metadata.version('dvc')}: initialised a repository in "
        f"{time.perf_counter() - started:.1f} s",
    )


def _qt_check() -> Check:
    # By module name on purpose: the core never imports Qt (tests/test_boundary.py); the
    # Qt check is loaded only here, when the self-test runs.
    qt = importlib.import_module("kiosk.ui.selftest_qt")
    status, detail, fix = qt.check_qt(resource("icon.png"))
    return Check(status, "Qt", detail, fix)
