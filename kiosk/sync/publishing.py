"""Publishing this kiosk's enrolments and removals to the registry.

``publish`` turns every unpublished change into one git commit (``dvc add`` of
each new person's folder, ``dvc remove`` of each removed person's ``.dvc``
file), uploads the data (``dvc push``) and then pushes the commit. If another
kiosk published first, git refuses the push; the kiosk then syncs (which
rebases its commit onto theirs: different people are different files, so this
never conflicts) and pushes again. When the registry cannot be reached the
commit stays local, *queued*, and every later sync retries it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from kiosk.errors import GallerySyncError
from kiosk.fsutil import file_lock
from kiosk.settings import Settings
from kiosk.sync import _dvc, _git
from kiosk.sync.registry import (
    IMAGES_DIR,
    WEIGHTS_DIR,
    is_clone,
    kiosk_identity,
    read_state,
    registry_configured,
    sync_dir,
    write_state,
)

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 5
BULK_PUSH_FROM = 50


@dataclass(frozen=True)
class PendingChanges:
    """What this kiosk has that the registry does not (yet)."""

    added: list[str] = field(default_factory=list)  # person ids enrolled here
    removed: list[str] = field(default_factory=list)  # person ids removed here
    weights: list[str] = field(default_factory=list)  # new weights files
    queued_commits: int = 0  # committed here, waiting for the registry to be reachable
    pipeline: list[str] = field(default_factory=list)  # changed outputs of `dvc repro`

    @property
    def uncommitted(self) -> bool:
        return bool(self.added or self.removed or self.weights or self.pipeline)

    @property
    def empty(self) -> bool:
        return not self.uncommitted and self.queued_commits == 0

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} enrolled")
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        if self.weights:
            parts.append(f"{len(self.weights)} weights files")
        if self.pipeline:
            parts.append("new pipeline results")
        if self.queued_commits:
            parts.append(f"{self.queued_commits} commits waiting to be pushed")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class PublishResult:
    changes: PendingChanges
    published: bool  # the registry has everything now
    message: str


def pending_changes(settings: Settings) -> PendingChanges:
    from kiosk.sync.sync import local_people, tracked_people

    clone = settings.gallery.dir
    if not is_clone(clone):
        return PendingChanges(added=sorted(local_people(clone)))
    head = _git.head(clone)
    tracked = tracked_people(clone, head) if head else set()
    on_disk = local_people(clone)
    weights_dir = clone / WEIGHTS_DIR
    weights = sorted(
        p.name
        for p in (weights_dir.iterdir() if weights_dir.is_dir() else [])
        if p.is_file()
        and not p.name.startswith(".")
        and p.suffix != ".dvc"
        and not (weights_dir / f"{p.name}.dvc").exists()
    )
    upstream = f"refs/remotes/origin/{settings.gallery.rev}"
    try:
        queued = int(_git.git(clone, "rev-list", "--count", f"{upstream}..HEAD") or 0)
    except _git.GitError:
        queued = int(_git.git(clone, "rev-list", "--count", "HEAD") or 0) if head else 0
    pipeline = _pipeline_changes(clone)
    return PendingChanges(
        sorted(on_disk - tracked), sorted(tracked - on_disk), weights, queued, pipeline
    )


#: What `dvc repro` writes that git tracks (the data itself is in dvc.lock's outputs).
PIPELINE_FILES = (
    ".gitignore",
    "dvc.lock",
    "dvc.yaml",
    "params.yaml",
    "metrics.json",
    "plots",
    "reports",
)


def _pipeline_changes(clone: Path) -> list[str]:
    out = _git.git(clone, "status", "--porcelain", "--untracked-files=all", "--", *PIPELINE_FILES)
    return sorted(line[3:] for line in out.splitlines() if line.strip())


def _person_name(clone: Path, person_id: str) -> str:
    try:
        data = json.loads((clone / IMAGES_DIR / person_id / "person.json").read_text("utf-8"))
        return str(data["name"])
    except (OSError, ValueError, KeyError):
        return person_id


def commit_message(settings: Settings, changes: PendingChanges, names: dict[str, str]) -> str:
    what = [f"enrol {names.get(p, p)} ({p})" for p in changes.added]
    what += [f"remove {names.get(p, p)} ({p})" for p in changes.removed]
    what += [f"add weights {w}" for w in changes.weights]
    if changes.pipeline:
        what.append("update the gallery pipeline's results (dvc repro)")
    head = f"{kiosk_identity(settings)}: " + "; ".join(what)
    if len(head) > 200:
        head = (
            f"{kiosk_identity(settings)}: {len(changes.added)} enrolled, "
            f"{len(changes.removed)} removed, {len(changes.weights)} weights files"
        )
    return head + "\n\n" + "\n".join(what) + "\n"


def publish(
    settings: Settings, *, author: str = "", stop: threading.Event | None = None
) -> PublishResult:
    """Commit and push every unpublished change; offline, the commit is queued."""
    if not registry_configured(settings):
        raise GallerySyncError(
            "no gallery registry is configured; set gallery.repo (see `kiosk gallery init`) "
            "to publish enrolments to a fleet."
        )
    clone = settings.gallery.dir
    if not is_clone(clone):
        raise GallerySyncError(
            f"{clone} is not a clone of the gallery registry yet; run `kiosk gallery sync` "
            "first, then publish."
        )
    stop = stop or threading.Event()
    with file_lock(sync_dir(settings) / ".lock"):
        changes = pending_changes(settings)
        if changes.uncommitted:
            _commit(settings, clone, changes, author)
        elif not changes.queued_commits:
            return PublishResult(changes, True, "nothing to publish")
        message = push_queued(settings, stop)
    return PublishResult(changes, message.startswith("published"), message)


def _commit(settings: Settings, clone: Path, changes: PendingChanges, author: str) -> None:
    names = {p: _person_name(clone, p) for p in changes.added}
    names.update(_removed_names(settings, clone, changes.removed))
    message = commit_message(settings, changes, names)
    if author:
        message += f"\nChanged by: {author}\n"
    try:
        with file_lock(clone / ".lock"), _dvc.open_repo(clone, settings.gallery.remote) as repo:
            for pid in changes.removed:
                repo.remove(str(clone / IMAGES_DIR / f"{pid}.dvc"))
            targets = [str(clone / IMAGES_DIR / p) for p in changes.added]
            targets += [str(clone / WEIGHTS_DIR / w) for w in changes.weights]
            if targets:
                repo.add(targets)
    except Exception as exc:
        raise GallerySyncError(
            f"DVC could not record the gallery changes ({exc}); nothing was published. "
            "Run `kiosk doctor` and check the gallery folder is writable."
        ) from exc
    try:
        paths = [IMAGES_DIR, WEIGHTS_DIR, *(p for p in PIPELINE_FILES if (clone / p).exists())]
        _git.git(clone, "add", "-A", "--", *paths)
        _git.git(clone, "commit", "-q", "-m", message, identity=kiosk_identity(settings))
        head = _git.git(clone, "rev-parse", "HEAD")
        date = _git.commit_date(clone, head)
    except _git.GitError as exc:
        raise GallerySyncError(f"git could not commit the gallery changes ({exc}).") from exc
    # The kiosk now runs this commit (published or queued): it is the version in use.
    write_state(settings, replace(read_state(settings), version=head, date=date, complete=True))
    log.info("committed gallery changes: %s", changes.describe())


def _removed_names(settings: Settings, clone: Path, removed: list[str]) -> dict[str, str]:
    """Names of removed people, read from their person.json in the DVC cache."""
    names: dict[str, str] = {}
    if not removed:
        return names
    try:
        with _dvc.open_repo(clone, settings.gallery.remote) as repo:
            odb = repo.cache.local
            for pid in removed:
                import yaml

                dvc_file = yaml.safe_load((clone / IMAGES_DIR / f"{pid}.dvc").read_text())
                manifest = json.loads(Path(odb.oid_to_path(dvc_file["outs"][0]["md5"])).read_text())
                for entry in manifest:
                    if entry.get("relpath") == "person.json":
                        data = json.loads(Path(odb.oid_to_path(entry["md5"])).read_text("utf-8"))
                        names[pid] = str(data["name"])
    except Exception as exc:  # a name in a message is not worth failing a publish
        log.debug("names of removed people unavailable: %s", exc)
    return names


def _unpushed_outputs(clone: Path, rev: str) -> list[str] | None:
    """The .dvc files (and dvc.yaml) the local commits changed: all that needs uploading.

    None (push everything) when the registry's branch is not known here.
    """
    try:
        names = _git.git(
            clone, "diff", "--name-only", f"refs/remotes/origin/{rev}", "HEAD"
        ).splitlines()
    except _git.GitError:
        return None
    targets = [str(clone / n) for n in names if n.endswith(".dvc") and (clone / n).is_file()]
    if "dvc.lock" in names and (clone / "dvc.lock").is_file():
        targets.append(str(clone / "dvc.yaml"))
    # Naming many targets costs DVC more than one pass over everything.
    return targets if len(targets) <= BULK_PUSH_FROM else None


def push_queued(settings: Settings, stop: threading.Event | None = None) -> str:
    """Upload the data, then push the local commits; integrate others' commits on refusal.

    Returns one line saying what happened ("published ..." or "... queued ...").
    """
    from kiosk.sync.sync import integrate_upstream

    stop = stop or threading.Event()
    clone = settings.gallery.dir
    rev = settings.gallery.rev
    from kiosk.sync.status import storage_problem

    for _attempt in range(PUSH_ATTEMPTS):
        try:  # the registry first: is it there at all?
            _git.git(clone, "fetch", "-q", "origin", rev, stop=stop)
        except _git.GitError as exc:
            log.warning("gallery registry unreachable: %s", exc)
            return f"queued: the gallery registry cannot be reached ({exc}); will retry"
        problem = storage_problem(clone, settings.gallery.remote)
        if problem:  # never let DVC create a missing storage folder (an unmounted share)
            return f"queued: {problem}; will retry"
        try:
            with _dvc.open_repo(clone, settings.gallery.remote) as repo:
                repo.push(targets=_unpushed_outputs(clone, rev))
        except Exception as exc:
            log.warning("gallery data not uploaded: %s", exc)
            return f"queued: the gallery storage cannot be written ({exc}); will retry"
        try:
            _git.git(clone, "push", "-q", "origin", f"HEAD:refs/heads/{rev}", stop=stop)
        except _git.GitError as exc:
            refused = any(
                word in exc.stderr for word in ("rejected", "fetch first", "cannot lock ref")
            )
            if not refused:
                log.warning("gallery commit not pushed: %s", exc)
                return f"queued: the gallery registry cannot be reached ({exc}); will retry"
            log.info("the registry moved on; syncing before pushing again")
            problem = integrate_upstream(settings, stop)
            if problem:
                return f"queued: {problem}; will retry"
            continue
        with contextlib.suppress(_git.GitError):
            _git.git(clone, "fetch", "-q", "origin", rev)
        return "published"
    return "queued: the registry kept changing while publishing; will retry"
