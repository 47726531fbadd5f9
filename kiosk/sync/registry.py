"""The gallery registry: a git repository whose data lives in DVC remote storage.

Layout of a registry (and of every kiosk's clone, which *is* its gallery dir)::

    .dvc/config                  the default DVC remote (a folder, or s3://... for larger sites)
    .gitignore, .dvcignore       data stays out of git; the kiosk's own scratch stays out of both
    images/<person_id>.dvc       one DVC-tracked folder per person (see below)
    images/<person_id>/          person.json + enrolment images (in DVC, not git)
    weights/<file>.pt.dvc        the FaceNet weights every kiosk uses
    params.yaml, dvc.yaml        the gallery pipeline (prepare, embed, evaluate)
    dvc.lock, metrics.json       what the pipeline last produced (embeddings/, plots/)

**One ``.dvc`` file per person** is what lets two kiosks publish different
people at the same time: each publish adds or deletes only its own people's
``.dvc`` files, so a ``git rebase`` onto the other kiosk's commit never
conflicts. The person folders are ignored by one wildcard rule written at
``init`` (``images/.gitignore``), so DVC never appends per-person lines to a
shared ``.gitignore``.

``kiosk gallery init PATH`` creates a *bare* git repository at PATH (kiosks push
to it) and, unless ``--remote`` names another, the DVC storage folder
``PATH/dvc-storage``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kiosk.errors import GallerySyncError
from kiosk.fsutil import atomic_write_bytes
from kiosk.settings import Settings
from kiosk.sync import _dvc, _git

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
WEIGHTS_DIR = "weights"
DEFAULT_STORAGE = "dvc-storage"
STORAGE_REMOTE_NAME = "storage"

GITIGNORE = """\
# The kiosk's own scratch space (enrolments in progress, removals, locks).
/.staging/
/.trash/
/.lock
/.kiosk/
"""

#: Every person folder is DVC data; one wildcard (directories only, so the ``.dvc`` files
#: stay visible to git and DVC) means DVC never appends per-person lines here.
IMAGES_GITIGNORE = "/*/\n"
WEIGHTS_GITIGNORE = "/*.pt\n/*.pth\n"

DVCIGNORE = """\
# The kiosk's own scratch space is never data.
.staging/
.trash/
.lock
.kiosk/
"""


def kiosk_identity(settings: Settings) -> str:
    return settings.kiosk.id or "kiosk"


def sync_dir(settings: Settings) -> Path:
    """Where the kiosk keeps its sync state (outside the clone, so git never sees it)."""
    return settings.paths.data_dir / "sync"


def registry_configured(settings: Settings) -> bool:
    return bool(settings.gallery.repo.strip())


def is_clone(gallery_dir: Path) -> bool:
    return _git.is_git_repo(gallery_dir) and (gallery_dir / ".dvc").is_dir()


def init_registry(path: Path, remote: str = "", *, identity: str = "admin") -> str:
    """Create a new, empty registry at ``path``; return the DVC remote URL it uses.

    ``path`` becomes a bare git repository; ``remote`` is the DVC storage URL
    (default: the folder ``path/dvc-storage``). Raises :class:`GallerySyncError`
    if ``path`` already holds something.
    """
    from kiosk.pipeline.templates import DVC_YAML, PARAMS_YAML

    path = path.expanduser().resolve()
    if path.exists() and any(path.iterdir()):
        raise GallerySyncError(
            f"{path} is not empty; choose a new folder for the gallery registry."
        )
    storage = remote or str(path / DEFAULT_STORAGE)
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
        Path(storage).mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _git.git(path, "init", "-q", "--bare", "-b", "main")
        with tempfile.TemporaryDirectory(prefix="kiosk-registry-init-") as tmp:
            work = Path(tmp)
            _git.git(work, "init", "-q", "-b", "main")
            from dvc.repo import Repo

            _dvc.quiet_dvc_console()
            Repo.init(str(work)).close()
            with _dvc.open_repo(work) as repo, repo.config.edit() as conf:
                conf["core"]["analytics"] = False
                conf["core"]["remote"] = STORAGE_REMOTE_NAME
                conf["remote"][STORAGE_REMOTE_NAME] = {"url": storage}
            (work / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
            (work / ".dvcignore").write_text(DVCIGNORE, encoding="utf-8")
            for sub, ignore in ((IMAGES_DIR, IMAGES_GITIGNORE), (WEIGHTS_DIR, WEIGHTS_GITIGNORE)):
                (work / sub).mkdir()
                (work / sub / ".gitignore").write_text(ignore, encoding="utf-8")
            (work / "params.yaml").write_text(PARAMS_YAML, encoding="utf-8")
            (work / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
            _git.git(work, "add", "-A")
            _git.git(work, "commit", "-q", "-m", "New gallery registry", identity=identity)
            _git.git(work, "push", "-q", str(path), "main")
    except (_git.GitError, OSError) as exc:
        raise GallerySyncError(
            f"could not create the gallery registry at {path}: {exc}; "
            "check that git is installed and the folder is writable."
        ) from exc
    except Exception as exc:  # DVC's own errors
        raise GallerySyncError(f"could not set up DVC in the new registry: {exc}") from exc
    return storage


# -- sync state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    """The last complete registry version this kiosk switched to (``complete``) or is entering.

    Written before the gallery dir changes (``complete = False``, ``target`` set)
    and again after (``complete = True``), so a crash in between is noticed at the
    next start and the previous version restored.
    """

    version: str | None = None  # full git commit of the version in use
    date: str | None = None  # its commit date (ISO 8601)
    synced_at: str | None = None  # when this kiosk last reached the registry
    complete: bool = True
    target: str | None = None

    @property
    def short(self) -> str | None:
        return self.version[:8] if self.version else None


def read_state(settings: Settings) -> SyncState:
    path = sync_dir(settings) / "state.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SyncState(**{k: data.get(k) for k in SyncState.__dataclass_fields__})
    except FileNotFoundError:
        return SyncState()
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable sync state %s: %s", path, exc)
        return SyncState()


def write_state(settings: Settings, state: SyncState) -> None:
    data = json.dumps(state.__dict__, indent=2).encode()
    atomic_write_bytes(sync_dir(settings) / "state.json", data)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_gallery_version(settings: Settings) -> str | None:
    """The short registry version this kiosk's gallery is at, for telemetry tags and
    attendance records; ``None`` for a local-only gallery or before the first sync."""
    if not registry_configured(settings):
        return None
    state = read_state(settings)
    return state.short if state.complete else None


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
