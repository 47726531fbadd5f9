"""DVC through its Python API (``dvc.repo.Repo``), and our own checksum verification.

Every repository is opened with analytics off, and with the kiosk's remote
override (``gallery.remote``) when one is set. DVC's objects are content
addressed (``md5`` of the file), so :func:`verify_objects` can prove that the
local cache holds exactly what a registry version names before the kiosk
switches to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kiosk.sync import _git

if TYPE_CHECKING:
    from dvc.repo import Repo

log = logging.getLogger(__name__)

#: libyaml's loader when PyYAML has it (10x faster on a thousand .dvc files).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The name the kiosk gives ``gallery.remote`` when it overrides the registry's default remote.
OVERRIDE_REMOTE = "kiosk-override"
_CONFIG: dict[str, Any] = {"core": {"analytics": False, "autostage": False}}


def quiet_dvc_console() -> None:
    """Take DVC's own console handlers off its loggers (importing ``dvc`` installs them).

    DVC is a command-line tool first: it prints hints like "To track the changes
    with git, run: ..." on stdout, which would corrupt ``kiosk ... --json`` output.
    Its records still reach the kiosk's log file through the root logger.
    """
    import dvc.logger

    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] not in ("dvc", "dvc_data", "dvc_objects"):
            continue
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, dvc.logger.LoggerHandler):
                logger.removeHandler(handler)
        logger.propagate = True


@contextlib.contextmanager
def open_repo(path: Path, remote_url: str = "") -> Iterator[Repo]:
    """A DVC repo at ``path`` (a git clone with ``.dvc/``), closed on exit."""
    from dvc.repo import Repo

    quiet_dvc_console()
    kwargs: dict[str, Any] = {}
    if remote_url:
        kwargs = {"remote": OVERRIDE_REMOTE, "remote_config": {"url": remote_url}}
    repo = Repo(str(path), config=_CONFIG, **kwargs)
    try:
        yield repo
    finally:
        repo.close()


def remote_url(repo: Repo) -> str:
    """The URL of the remote DVC uses by default ('' when none is configured)."""
    name = repo.config["core"].get("remote")
    if not name:
        return ""
    return str(repo.config["remote"].get(name, {}).get("url", ""))


@dataclass(frozen=True)
class TrackedObject:
    """One DVC object a version needs: a file, or a directory manifest (``.dir``)."""

    path: str  # workspace path, for messages
    md5: str
    source: str = ""  # the .dvc file (or dvc.yaml) that names it


def objects_of_rev(clone: Path, rev: str) -> list[TrackedObject]:
    """The cached outputs named by the ``.dvc`` files and ``dvc.lock`` of commit ``rev``."""
    objects: list[TrackedObject] = []
    files = _git.tracked_files(clone, rev)
    texts = _git.show_many(clone, rev, [n for n in files if n.endswith(".dvc")])
    for name, text in texts.items():
        data = yaml.load(text, Loader=_LOADER) or {}
        base = str(Path(name).parent)
        for out in data.get("outs", []):
            if out.get("md5") and out.get("cache", True):
                objects.append(TrackedObject(_join(base, out["path"]), out["md5"], name))
    if "dvc.lock" in files:
        uncached = _uncached_outputs(clone, rev) if "dvc.yaml" in files else set()
        lock = yaml.safe_load(_git.show(clone, rev, "dvc.lock")) or {}
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs", []):
                if out.get("md5") and out["path"] not in uncached:
                    objects.append(TrackedObject(out["path"], out["md5"], "dvc.yaml"))
    return objects


def _join(base: str, path: str) -> str:
    return path if base in ("", ".") else f"{base}/{path}"


def _uncached_outputs(clone: Path, rev: str) -> set[str]:
    """Outputs that ``dvc.yaml`` keeps in git (``cache: false``), e.g. ``metrics.json``."""
    spec = yaml.safe_load(_git.show(clone, rev, "dvc.yaml")) or {}
    found: set[str] = set()
    for stage in (spec.get("stages") or {}).values():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []) or []:
                if isinstance(out, dict):
                    for path, opts in out.items():
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            found.add(str(path))
    return found


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Verification:
    missing: list[TrackedObject]
    corrupted: list[TrackedObject]
    checked: int

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupted


def verify_objects(repo: Repo, objects: Iterable[TrackedObject]) -> Verification:
    """Hash every cache file these outputs need; list what is missing or damaged.

    A directory output is its manifest (a JSON list of md5 + relpath) plus every
    file in it; both are checked.
    """
    odb = repo.cache.local
    result = Verification([], [], 0)
    for obj in objects:
        path = Path(odb.oid_to_path(obj.md5))
        if not path.is_file():
            result.missing.append(obj)
            continue
        result.checked += 1
        if _md5_file(path) != obj.md5.removesuffix(".dir"):
            result.corrupted.append(obj)
            continue
        if obj.md5.endswith(".dir"):
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                result.corrupted.append(obj)
                continue
            children = [
                TrackedObject(f"{obj.path}/{e['relpath']}", e["md5"], obj.source)
                for e in entries
                if isinstance(e, dict) and "md5" in e
            ]
            sub = verify_objects(repo, children)
            result.missing += sub.missing
            result.corrupted += sub.corrupted
            result.checked += sub.checked
    return result


def drop_from_cache(repo: Repo, objects: Iterable[TrackedObject]) -> None:
    """Delete damaged cache files, so the next fetch downloads them again."""
    odb = repo.cache.local
    for obj in objects:
        path = Path(odb.oid_to_path(obj.md5))
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o644)
            path.unlink()
            log.warning("removed damaged cache file %s (for %s)", path, obj.path)


def workspace_damage(repo: Repo, clone: Path, objects: Iterable[TrackedObject]) -> list[str]:
    """Outputs whose files in the working tree differ from their checksums (or are gone).

    Our own check rather than ``repo.status()``: it hashes the (small) gallery files
    directly instead of building DVC's index of every stage, which takes seconds for a
    thousand people.
    """
    odb = repo.cache.local
    damaged = []
    for obj in objects:
        target = clone / obj.path
        if not obj.md5.endswith(".dir"):
            if not target.is_file() or _md5_file(target) != obj.md5:
                damaged.append(obj.path)
            continue
        try:
            entries = json.loads(Path(odb.oid_to_path(obj.md5)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            damaged.append(obj.path)
            continue
        for entry in entries:
            file = target / entry["relpath"]
            if not file.is_file() or _md5_file(file) != entry["md5"]:
                damaged.append(obj.path)
                break
    return damaged


def download(repo: Repo, objects: Iterable[TrackedObject]) -> int:
    """Download exactly these objects (a directory's manifest brings its files) from the
    remote into the local cache; returns how many failed. Transfers by checksum, so it
    needs no checkout and no index of the registry's stages (seconds for a big gallery)."""
    from dvc_data.hashfile.hash_info import HashInfo

    wanted = {HashInfo("md5", obj.md5) for obj in objects}
    result = repo.cloud.pull(wanted)
    return len(result.failed)
