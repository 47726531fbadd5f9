"""``kiosk gallery status`` and the doctor's registry check: fast, read-only."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from kiosk.settings import Settings
from kiosk.sync import _git
from kiosk.sync.publishing import PendingChanges, pending_changes
from kiosk.sync.registry import is_clone, read_state, registry_configured

CheckStatus = Literal["ok", "warn", "info"]


@dataclass(frozen=True)
class RegistryStatus:
    configured: bool
    repo: str
    rev: str
    cloned: bool
    version: str | None  # short version in use
    date: str | None  # its commit date
    synced_at: str | None  # last time this kiosk reached the registry
    pending: PendingChanges
    reachable: bool | None  # None: not checked
    reach_detail: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pending"]["summary"] = self.pending.describe()
        return data


def _storage_reachable(clone: Path, remote_override: str) -> tuple[bool | None, str]:
    url = remote_override
    if not url:
        try:
            name = _git.git(clone, "config", "-f", ".dvc/config", "core.remote")
            url = _git.git(clone, "config", "-f", ".dvc/config", f"remote.{name}.url")
        except _git.GitError:
            return None, "no DVC remote configured"
    if "://" in url and not url.startswith("file://"):
        return None, f"storage {url} not checked"
    path = Path(url.removeprefix("file://"))
    if path.is_dir() and os.access(path, os.R_OK | os.X_OK):
        return True, f"storage {path} readable"
    return False, f"storage {path} missing or unreadable"


def storage_problem(clone: Path, remote_override: str) -> str | None:
    """Why the DVC storage is unusable (a local folder that is missing), or None."""
    ok, detail = _storage_reachable(clone, remote_override)
    return None if ok is not False else f"the gallery {detail}"


def gallery_status(
    settings: Settings, *, check_remote: bool = True, timeout: float = 3.0
) -> RegistryStatus:
    """Version in use, unpublished changes and (with ``check_remote``) reachability."""
    gallery = settings.gallery
    configured = registry_configured(settings)
    cloned = is_clone(gallery.dir)
    state = read_state(settings)
    pending = pending_changes(settings)
    reachable: bool | None = None
    detail = "not checked"
    if not configured:
        detail = "no registry configured (gallery.repo); local-only gallery"
    elif check_remote:
        from kiosk.sync.sync import _resolve_url

        url = _resolve_url(gallery.repo)
        try:
            _git.git(
                gallery.dir if cloned else settings.paths.data_dir.parent,
                "ls-remote",
                "-q",
                url,
                gallery.rev,
                timeout=timeout,
            )
            reachable, detail = True, f"registry {url} reachable"
        except _git.GitError as exc:
            reachable, detail = False, f"registry {url} unreachable ({exc})"
        if reachable and cloned:
            ok, storage = _storage_reachable(gallery.dir, gallery.remote)
            detail += f"; {storage}"
            if ok is False:
                reachable = False
    return RegistryStatus(
        configured,
        gallery.repo,
        gallery.rev,
        cloned,
        state.short if state.complete else None,
        state.date,
        state.synced_at,
        pending,
        reachable,
        detail,
    )


def doctor_summary(settings: Settings) -> tuple[CheckStatus, str, str]:
    """(status, detail, fix) for ``kiosk doctor``: configured? reachable? version? unpublished?

    Fast: one ``git ls-remote`` with a 3 s limit, no DVC import.
    """
    status = gallery_status(settings, timeout=3.0)
    if settings.recognition.threshold == "auto":
        from kiosk.recognition.recognizer import recommended_threshold

        if recommended_threshold(settings.gallery.dir) is None:
            return (
                "warn",
                "recognition.threshold is 'auto' but this gallery version has no recommended "
                "threshold, so the default 0.90 is used",
                "run `dvc repro` in a clone of the registry and `kiosk gallery publish` its "
                "results, or set recognition.threshold to a number",
            )
    if not status.configured:
        return (
            "info",
            f"none configured: local-only gallery at {settings.gallery.dir}",
            "",
        )
    version = status.version or "none yet"
    detail = (
        f"{status.repo} ({status.rev}); version {version}"
        + (f" from {status.date}" if status.date else "")
        + f"; unpublished: {status.pending.describe()}; {status.reach_detail}"
    )
    if status.reachable is False:
        return (
            "warn",
            detail,
            "the kiosk runs on its last synced version; check the network or the share, "
            "then `kiosk gallery sync`",
        )
    if not status.cloned:
        return ("warn", detail, "run `kiosk gallery sync` (or start the kiosk) to clone it")
    if not status.pending.empty:
        return ("warn", detail, "run `kiosk gallery publish` to share these changes")
    return ("ok", detail, "")
