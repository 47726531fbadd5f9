"""Bringing a kiosk's gallery up to date with the registry, never half-way.

A sync (at start-up, then every ``gallery.sync_interval_s``) runs on its own
thread, ``kiosk-sync``, so the window and the live view never wait for it:

1. ``git fetch`` the registry's ``gallery.rev`` (or, the first time, clone it
   into ``<data_dir>/sync/incoming``);
2. ``dvc fetch`` everything that version names into the local DVC cache, then
   hash every cache file it needs (:func:`kiosk.sync._dvc.verify_objects`); a
   damaged file is deleted and downloaded once more, and if it is still wrong the
   sync stops there;
3. only then, under the gallery's lock, move the clone to the new commit, check
   the data out of the (verified, local) cache and delete the folders of people
   removed elsewhere, bracketed by ``state.json`` so that a crash part way is
   rolled back to the previous complete version at the next start.

A failure in 1 or 2 changes nothing on disk: the kiosk keeps the version it has
and reports ``offline: using <version> from <date>`` (or ``error: ...``).

Callbacks run on the sync thread: ``on_status`` with every progress step and
the final :class:`SyncStatus`, ``on_new_version`` once a new version is in
place (call :meth:`Recognizer.reload_gallery` there, or hand it to the UI
thread).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from kiosk.errors import GallerySyncError
from kiosk.fsutil import file_lock
from kiosk.recognition.gallery import PERSON_FILE, GalleryStore
from kiosk.settings import Settings
from kiosk.sync import _dvc, _git
from kiosk.sync.registry import (
    IMAGES_DIR,
    SyncState,
    is_clone,
    now_iso,
    read_state,
    registry_configured,
    remove_tree,
    sync_dir,
    write_state,
)

log = logging.getLogger(__name__)

State = Literal["local", "syncing", "synced", "offline", "error"]


@dataclass(frozen=True)
class SyncStatus:
    """Where a sync stands; ``text`` is the one line the kiosk shows."""

    state: State
    version: str | None = None  # short registry version in use
    date: str | None = None  # its commit date
    message: str = ""
    progress: float | None = None  # 0..1 while syncing
    changed: bool = False  # a new version was switched to: reload the gallery

    @property
    def text(self) -> str:
        if self.state == "synced":
            return f"synced {self.version}"
        if self.state == "offline":
            if self.version:
                return f"offline: using {self.version} from {self.date}"
            return "offline: no registry version yet; using the local gallery"
        if self.state == "error":
            return f"error: {self.message}"
        if self.state == "local":
            return "local-only gallery (no registry configured)"
        return f"syncing: {self.message}"


StatusCallback = Callable[[SyncStatus], None]

#: Above this many missing objects, one `dvc fetch` of the whole version beats fetching
#: them one checksum at a time (measured with benchmarks/sync.py).
BULK_FETCH_FROM = 200


class _OfflineError(Exception):
    """The registry (git) or its storage (DVC) could not be reached or is incomplete."""


def _resolve_url(url: str) -> str:
    """A local registry path made absolute (git clones resolve it against cwd otherwise)."""
    url = url.strip()
    if "://" in url or (":" in url and not Path(url).expanduser().exists()):
        return url
    return str(Path(url).expanduser().resolve())


def _notify(callback: StatusCallback | None, status: SyncStatus) -> None:
    if callback is None:
        return
    try:
        callback(status)
    except Exception:  # a broken display must not break the sync
        log.exception("gallery sync status callback failed")


def sync_gallery(
    settings: Settings,
    on_status: StatusCallback | None = None,
    stop: threading.Event | None = None,
) -> SyncStatus:
    """Bring the gallery dir to the registry's latest complete version; never raises
    for network trouble (the result says ``offline``) nor for registry errors
    (``error``): the kiosk always keeps running on what it has."""
    if not registry_configured(settings):
        status = SyncStatus(
            "local",
            message="no gallery registry is configured (gallery.repo); this kiosk keeps "
            "a local-only gallery",
        )
        _notify(on_status, status)
        return status
    stop = stop or threading.Event()
    folder = sync_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)

    def progress(step: str, fraction: float) -> None:
        _notify(on_status, SyncStatus("syncing", message=step, progress=fraction))

    with file_lock(folder / ".lock"):
        state = read_state(settings)
        try:
            if is_clone(settings.gallery.dir):
                _recover(settings, state)
                status = _update(settings, progress, stop)
            else:
                status = _first_clone(settings, progress, stop)
        except _OfflineError as exc:
            state = read_state(settings)
            log.warning("gallery sync offline: %s", exc)
            status = SyncStatus("offline", state.short, state.date, str(exc))
        except GallerySyncError as exc:
            state = read_state(settings)
            log.error("gallery sync failed: %s", exc)
            status = SyncStatus("error", state.short, state.date, str(exc))
    _notify(on_status, status)
    return status


# -- first clone ---------------------------------------------------------------------------


def _first_clone(
    settings: Settings, progress: Callable[[str, float], None], stop: threading.Event
) -> SyncStatus:
    gallery = settings.gallery.dir
    folder = sync_dir(settings)
    incoming = folder / "incoming"
    remove_tree(incoming)
    url = _resolve_url(settings.gallery.repo)
    progress("cloning the gallery registry", 0.05)
    try:
        _git.git(
            folder, "clone", "-q", "--branch", settings.gallery.rev, url, str(incoming), stop=stop
        )
    except _git.GitError as exc:
        remove_tree(incoming)
        raise _OfflineError(f"the gallery registry {url} cannot be reached ({exc})") from exc
    try:
        version = _git.git(incoming, "rev-parse", "HEAD")
        _fetch_verified(settings, incoming, version, progress, stop)
        progress("checking the gallery out", 0.8)
        with _dvc.open_repo(incoming, settings.gallery.remote) as repo:
            _checkout(repo, incoming, exclude=set())
        _adopt_local_people(gallery, incoming)
        old = folder / f"replaced-{secrets.token_hex(4)}"
        if gallery.exists():
            gallery.rename(old)
        gallery.parent.mkdir(parents=True, exist_ok=True)
        incoming.rename(gallery)
        remove_tree(old)
    except BaseException:
        remove_tree(incoming)
        raise
    date = _git.commit_date(gallery, version)
    write_state(settings, SyncState(version, date, now_iso()))
    log.info("gallery cloned at %s (%s)", version[:8], date)
    return SyncStatus("synced", version[:8], date, "cloned", 1.0, changed=True)


def _adopt_local_people(gallery: Path, clone: Path) -> None:
    """People enrolled before the registry was configured stay, as unpublished enrolments."""
    for sub in (IMAGES_DIR, "weights"):
        src = gallery / sub
        if not src.is_dir():
            continue
        for entry in src.iterdir():
            if entry.name.startswith(".") or (clone / sub / entry.name).exists():
                continue
            if sub == IMAGES_DIR and not (entry / PERSON_FILE).is_file():
                continue
            (clone / sub).mkdir(exist_ok=True)
            entry.rename(clone / sub / entry.name)
            log.info("kept local %s/%s as an unpublished change", sub, entry.name)


# -- update --------------------------------------------------------------------------------


def tracked_people(clone: Path, rev: str) -> set[str]:
    prefix = f"{IMAGES_DIR}/"
    return {
        name[len(prefix) : -len(".dvc")]
        for name in _git.tracked_files(clone, rev, suffix=".dvc")
        if name.startswith(prefix) and name.count("/") == 1
    }


def local_people(clone: Path) -> set[str]:
    folder = clone / IMAGES_DIR
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_dir() and (p / PERSON_FILE).is_file()}


def _update(
    settings: Settings,
    progress: Callable[[str, float], None],
    stop: threading.Event,
    *,
    push: bool = True,
) -> SyncStatus:
    clone = settings.gallery.dir
    url = _resolve_url(settings.gallery.repo)
    head = _git.head(clone)
    progress("fetching the gallery registry", 0.05)
    try:
        _git.git(clone, "remote", "set-url", "origin", url)
        _git.git(clone, "fetch", "-q", "origin", settings.gallery.rev, stop=stop)
        target = _git.git(clone, "rev-parse", "FETCH_HEAD^{commit}")
    except _git.GitError as exc:
        raise _OfflineError(f"the gallery registry {url} cannot be reached ({exc})") from exc
    # Nothing new upstream (maybe local commits still to push): stay on head.
    new = head if head is not None and _git.is_ancestor(clone, target, head) else target
    _fetch_verified(settings, clone, target, progress, stop)
    changed = new != head
    if changed:
        progress("switching to the new gallery version", 0.85)
        _switch(settings, clone, head, target)
        new = _git.git(clone, "rev-parse", "HEAD")
        message = f"updated from {(head or '')[:8] or 'nothing'}"
    else:
        progress("checking the gallery files", 0.85)
        repaired = _repair_workspace(settings, clone)
        message = f"up to date; repaired {repaired} damaged items" if repaired else "up to date"
    date = _git.commit_date(clone, new)
    write_state(settings, SyncState(new, date, now_iso()))
    queued = _queued_commits(clone, target)
    if queued and push:
        from kiosk.sync.publishing import push_queued

        message += "; " + push_queued(settings, stop)
        final = _git.git(clone, "rev-parse", "HEAD")
        if final != new:  # pushing meant rebasing onto someone else's newer commit
            new, changed = final, True
            date = read_state(settings).date or date
    return SyncStatus("synced", new[:8], date, message, 1.0, changed=changed)


def integrate_upstream(settings: Settings, stop: threading.Event) -> str | None:
    """Sync (rebasing local commits) without pushing; None, or why it could not.

    The caller holds the sync lock (publishing does).
    """

    def quiet(_step: str, _fraction: float) -> None:
        return None

    try:
        _update(settings, quiet, stop, push=False)
    except _OfflineError as exc:
        return str(exc)
    except GallerySyncError as exc:
        return str(exc)
    return None


def _queued_commits(clone: Path, upstream: str) -> int:
    return int(_git.git(clone, "rev-list", "--count", f"{upstream}..HEAD") or 0)


def _fetch_verified(
    settings: Settings,
    clone: Path,
    rev: str,
    progress: Callable[[str, float], None],
    stop: threading.Event,
) -> None:
    """Download everything commit ``rev`` names into the DVC cache, and prove it is intact."""
    objects = _dvc.objects_of_rev(clone, rev)
    with _dvc.open_repo(clone, settings.gallery.remote) as repo:
        progress("verifying checksums", 0.15)
        result = _dvc.verify_objects(repo, objects)
        requested: set[str] = set()
        damaged: set[str] = set()  # seen with a wrong checksum at some point
        for attempt in range(4):  # a directory's manifest arrives first, then its files
            if result.ok:
                return  # everything is here (often already before any download)
            wanted = result.missing + result.corrupted
            if {o.md5 for o in wanted} <= requested:
                break  # downloaded once already and still not right
            if stop.is_set():
                raise _OfflineError("stopped: the kiosk is shutting down")
            if result.corrupted:
                damaged |= {o.md5 for o in result.corrupted}
                log.warning(
                    "damaged files in the local DVC cache, fetching them again: %s",
                    ", ".join(o.path for o in result.corrupted[:5]),
                )
                _dvc.drop_from_cache(repo, result.corrupted)
            progress("downloading gallery data", 0.2 + 0.15 * attempt)
            try:
                if len(wanted) > BULK_FETCH_FROM:
                    repo.fetch(revs=[rev], workspace=False)  # one bulk pass is faster here
                else:
                    _dvc.download(repo, wanted)
            except Exception as exc:  # DVC raises many types: RemoteMissing, NoRemoteError...
                raise _OfflineError(
                    f"the gallery storage ({_dvc.remote_url(repo) or 'no DVC remote'}) "
                    f"cannot be read ({exc})"
                ) from exc
            requested |= {o.md5 for o in wanted}
            result = _dvc.verify_objects(repo, objects)
        if (
            result.missing
            and not result.corrupted
            and not damaged & {o.md5 for o in result.missing}
        ):
            raise _OfflineError(
                f"the gallery storage ({_dvc.remote_url(repo) or 'no DVC remote'}) "
                f"cannot be read or is incomplete: {len(result.missing)} files did not "
                f"arrive (e.g. {result.missing[0].path})"
            )
        bad = result.missing + result.corrupted
        raise GallerySyncError(
            f"{len(bad)} gallery files still fail their checksum after downloading them "
            f"again (e.g. {bad[0].path}); the kiosk keeps its current version. Check the "
            "DVC storage: `dvc fetch && dvc status -c` in a clone of the registry."
        )


def _switch(settings: Settings, clone: Path, head: str | None, target: str) -> None:
    """Move the clone to ``target`` (rebasing local unpublished commits) and check it out.

    Everything ``target`` needs is already verified in the local cache, so this step
    does no network I/O; ``state.json`` brackets it so a crash rolls back at next start.
    """
    old_people = tracked_people(clone, head) if head else set()
    on_disk = local_people(clone)
    removed_here = old_people - on_disk  # removed on this kiosk, not yet published
    unpublished = sorted(on_disk - old_people)
    state = read_state(settings)
    store = GalleryStore(clone)
    with file_lock(store.root / ".lock"):
        # The version to return to is HEAD itself (it may hold queued local commits).
        write_state(settings, replace(state, version=head, complete=False, target=target))
        _write_unpublished(settings, unpublished)
        try:
            if head is None or _git.is_ancestor(clone, head, target):
                _git.git(clone, "merge", "-q", "--ff-only", target)
            else:
                _git.git(clone, "rebase", "-q", target)
        except _git.GitError as exc:
            with contextlib.suppress(_git.GitError):
                _git.git(clone, "rebase", "--abort")
            write_state(settings, state)
            raise GallerySyncError(
                f"this kiosk's unpublished gallery changes cannot be combined with the "
                f"registry's ({exc}); the kiosk keeps its current version. Publish from one "
                "kiosk at a time, or ask an administrator to merge the registry by hand."
            ) from exc
        new_head = _git.git(clone, "rev-parse", "HEAD")
        gone = old_people - tracked_people(clone, new_head) - removed_here
        forgotten = _delete_people(settings, clone, gone)
        changed = _changed_outputs(clone, head, new_head, removed_here)
        with _dvc.open_repo(clone, settings.gallery.remote) as repo:
            _checkout(repo, clone, exclude=removed_here, only=changed)
    if forgotten:
        from kiosk.recognition.index import forget_images

        forget_images(settings.cache_dir / "embeddings", forgotten)


def _repair_workspace(settings: Settings, clone: Path) -> int:
    """Check the gallery files against their DVC checksums; restore damaged ones from the
    (verified) cache. Returns how many outputs were restored."""
    head = _git.head(clone)
    if head is None:
        return 0
    removed_here = tracked_people(clone, head) - local_people(clone)
    objects = [
        o
        for o in _dvc.objects_of_rev(clone, head)
        if not (o.path.startswith(f"{IMAGES_DIR}/") and Path(o.path).name in removed_here)
    ]
    with _dvc.open_repo(clone, settings.gallery.remote) as repo:
        damaged = _dvc.workspace_damage(repo, clone, objects)
        if not damaged:
            return 0
        log.warning("damaged gallery files, restoring from the cache: %s", sorted(damaged)[:5])
        with file_lock(clone / ".lock"):
            _checkout(repo, clone, exclude=removed_here)
    return len(damaged)


def _write_unpublished(settings: Settings, people: list[str]) -> None:
    from kiosk.fsutil import atomic_write_bytes

    atomic_write_bytes(sync_dir(settings) / "unpublished.txt", "\n".join(people).encode())


def _delete_people(settings: Settings, clone: Path, people: set[str]) -> set[str]:
    """Delete the folders of people the registry removed; return their image hashes."""
    hashes: set[str] = set()
    trash = clone / ".trash"
    store = GalleryStore(clone)
    for pid in sorted(people):
        folder = clone / IMAGES_DIR / pid
        if not folder.exists():
            continue
        with contextlib.suppress(Exception):
            hashes.update(i.sha256 for i in store.get(pid).images)
        trash.mkdir(exist_ok=True)
        folder.rename(trash / f"{pid}.{secrets.token_hex(4)}")
        log.info("removed %s: the registry no longer has them", pid)
    remove_tree(trash)
    return hashes


def _changed_outputs(
    clone: Path, old: str | None, new: str, removed_here: set[str]
) -> list[str] | None:
    """The .dvc files (and dvc.yaml) whose outputs differ between two commits; None = all."""
    if old is None:
        return None
    names = _git.git(clone, "diff", "--name-only", old, new).splitlines()
    targets = [
        str(clone / n)
        for n in names
        if n.endswith(".dvc")
        and (clone / n).is_file()
        and not (n.startswith(f"{IMAGES_DIR}/") and Path(n).stem in removed_here)
    ]
    if "dvc.lock" in names and (clone / "dvc.lock").is_file():
        targets.append(str(clone / "dvc.yaml"))
    return targets


def _checkout(repo: object, clone: Path, exclude: set[str], only: list[str] | None = None) -> None:
    """Check the outputs of the clone's HEAD out of the cache: ``only`` these .dvc files, or
    all of them (except people removed here)."""
    from dvc.repo import Repo

    assert isinstance(repo, Repo)
    targets: list[str] | None = None  # everything: much faster than naming each person
    if only is not None:
        if not only:
            return
        targets = only
    elif exclude:
        targets = [
            str(clone / name)
            for name in _git.tracked_files(clone, "HEAD", suffix=".dvc")
            if not (name.startswith(f"{IMAGES_DIR}/") and Path(name).stem in exclude)
        ]
        if (clone / "dvc.lock").is_file():
            targets.append(str(clone / "dvc.yaml"))
        if not targets:
            return
    try:
        # allow_missing: pipeline outputs without a dvc.lock have no data yet; everything a
        # version does name was verified in the cache before we got here.
        repo.checkout(targets=targets, force=True, allow_missing=True)
    except Exception as exc:
        raise GallerySyncError(
            f"the gallery data could not be checked out of the local DVC cache ({exc}); "
            "the previous version is restored at the next start."
        ) from exc


def _recover(settings: Settings, state: SyncState) -> None:
    """Undo a switch that a crash interrupted: back to the last complete version."""
    if state.complete or not state.version:
        return
    clone = settings.gallery.dir
    log.warning("the last gallery update was interrupted; returning to %s", state.short)
    try:
        unpublished = set(
            (sync_dir(settings) / "unpublished.txt").read_text(encoding="utf-8").split()
        )
    except OSError:
        unpublished = set()
    with file_lock(clone / ".lock"):
        with contextlib.suppress(_git.GitError):
            _git.git(clone, "rebase", "--abort")
        try:
            _git.git(clone, "reset", "-q", "--hard", state.version)
        except _git.GitError as exc:
            raise GallerySyncError(
                f"cannot return the gallery to version {state.short} ({exc}); delete "
                f"{clone} and start the kiosk again to clone it afresh."
            ) from exc
        tracked = tracked_people(clone, state.version)
        strays = local_people(clone) - tracked - unpublished
        _delete_people(settings, clone, strays)
        with _dvc.open_repo(clone, settings.gallery.remote) as repo:
            _checkout(repo, clone, exclude=set())
    write_state(settings, replace(state, complete=True, target=None))


# -- background ----------------------------------------------------------------------------


class GallerySync:
    """Syncs the gallery on the thread ``kiosk-sync``: at start, then every ``interval_s``.

    ``on_status`` and ``on_new_version`` run on that thread. :meth:`stop` asks the
    thread to finish (a running git command is killed; a DVC download in progress
    finishes its current step) and waits at most ``timeout`` seconds.
    """

    def __init__(
        self,
        settings: Settings,
        on_status: StatusCallback | None = None,
        on_new_version: StatusCallback | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.settings = settings
        self._on_status = on_status
        self._on_new_version = on_new_version
        self.interval_s = settings.gallery.sync_interval_s if interval_s is None else interval_s
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self.status: SyncStatus = SyncStatus("syncing", message="starting", progress=0.0)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("GallerySync.start() was already called")
        self._thread = threading.Thread(target=self._run, name="kiosk-sync", daemon=True)
        self._thread.start()

    def _report(self, status: SyncStatus) -> None:
        self.status = status
        _notify(self._on_status, status)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = sync_gallery(self.settings, self._report, self._stop)
                if status.changed:
                    _notify(self._on_new_version, status)
            except Exception as exc:  # never let the thread die silently
                log.exception("gallery sync crashed")
                self._report(SyncStatus("error", message=f"unexpected: {exc}"))
            finally:
                self._first.set()
            if self.interval_s <= 0 or self._stop.wait(self.interval_s):
                break

    def wait_first(self, timeout: float) -> SyncStatus:
        """Block until the first sync has finished (for the CLI and tests)."""
        if not self._first.wait(timeout):
            raise TimeoutError(f"the first gallery sync took longer than {timeout} s")
        return self.status

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop; True if the thread ended within ``timeout``."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("gallery sync thread did not stop within %.1f s", timeout)
            return False
        return True
