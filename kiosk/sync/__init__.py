"""The gallery registry shared by a fleet: git + DVC sync at start-up and publishing (no Qt).

Public API::

    init_registry(path, remote="")            create a registry (bare git repo + DVC storage)
    sync_gallery(settings, on_status, stop)   one sync, in the caller's thread -> SyncStatus
    GallerySync(settings, on_status, on_new_version).start() / .stop(timeout)
                                              the same in the background (thread ``kiosk-sync``)
    publish(settings, author=...)             commit + push this kiosk's changes -> PublishResult
    pending_changes(settings)                 what is not published yet
    gallery_status(settings, check_remote)    version in use, unpublished, reachability
    current_gallery_version(settings)         short version for telemetry and attendance
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.sync.publishing import PendingChanges, PublishResult, pending_changes, publish
    from kiosk.sync.registry import current_gallery_version, init_registry, registry_configured
    from kiosk.sync.status import RegistryStatus, gallery_status
    from kiosk.sync.sync import GallerySync, SyncStatus, sync_gallery

# Imported on first use (PEP 562), so `kiosk --help` does not pay for OpenCV and YAML.
_WHERE = {
    "PendingChanges": "publishing",
    "PublishResult": "publishing",
    "pending_changes": "publishing",
    "publish": "publishing",
    "current_gallery_version": "registry",
    "init_registry": "registry",
    "registry_configured": "registry",
    "RegistryStatus": "status",
    "gallery_status": "status",
    "GallerySync": "sync",
    "SyncStatus": "sync",
    "sync_gallery": "sync",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"kiosk.sync.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'kiosk.sync' has no attribute {name!r}")


__all__ = [
    "GallerySync",
    "PendingChanges",
    "PublishResult",
    "RegistryStatus",
    "SyncStatus",
    "current_gallery_version",
    "gallery_status",
    "init_registry",
    "pending_changes",
    "publish",
    "registry_configured",
    "sync_gallery",
]
