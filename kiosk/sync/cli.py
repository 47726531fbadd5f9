"""``kiosk gallery init|sync|publish|status``: the registry from the command line.

Kept here (not in :mod:`kiosk.cli`) so the gallery commands live with the code
they drive; :mod:`kiosk.cli` only registers them. Errors are
:class:`~kiosk.errors.KioskError` and become exit status 1 there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kiosk.settings import Settings

EXIT_OK, EXIT_ERROR = 0, 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gallery = sub.add_parser("gallery", help="the gallery registry shared by a fleet (git + DVC)")
    gsub = gallery.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    p = gsub.add_parser("init", help="create a new gallery registry at PATH")
    p.add_argument("path", type=Path, metavar="PATH")
    p.add_argument(
        "--remote", default="", help="DVC storage URL or folder (default: PATH/dvc-storage)"
    )
    p = gsub.add_parser("sync", help="bring this kiosk's gallery up to date now")
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("publish", help="publish this kiosk's enrolments and removals")
    p.add_argument("--author", default="", help="who made the changes (goes into the message)")
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("status", help="version in use, unpublished changes, reachability")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-remote", action="store_true", help="do not contact the registry")


def run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.gallery_command
    if command == "init":
        from kiosk.sync import init_registry

        storage = init_registry(args.path, args.remote, identity=settings.kiosk.id)
        path = args.path.expanduser().resolve()
        print(f"created the gallery registry {path} (DVC storage: {storage})")
        print(f"point each kiosk at it: KIOSK_GALLERY_REPO={path} (or [gallery] repo = ...)")
        return EXIT_OK
    if command == "sync":
        from kiosk.sync import sync_gallery

        def show(status: object) -> None:
            from kiosk.sync import SyncStatus

            assert isinstance(status, SyncStatus)
            if status.state == "syncing" and not args.json:
                print(f"  {status.text}", file=sys.stderr, flush=True)

        result = sync_gallery(settings, show)
        if args.json:
            print(json.dumps({**result.__dict__, "text": result.text}))
        else:
            print(result.text + (f" ({result.message})" if result.message else ""))
        return EXIT_ERROR if result.state == "error" else EXIT_OK
    if command == "publish":
        from kiosk.sync import publish

        published = publish(settings, author=args.author)
        if args.json:
            print(
                json.dumps(
                    {
                        "published": published.published,
                        "message": published.message,
                        "added": published.changes.added,
                        "removed": published.changes.removed,
                        "weights": published.changes.weights,
                    }
                )
            )
        else:
            print(f"{published.message} ({published.changes.describe()})")
        return EXIT_OK
    from kiosk.sync import gallery_status

    status = gallery_status(settings, check_remote=not args.no_remote)
    if args.json:
        print(json.dumps(status.to_json()))
        return EXIT_OK
    if not status.configured:
        print(f"local-only gallery at {settings.gallery.dir} (no registry configured)")
    else:
        version = status.version or "none yet"
        print(f"registry   {status.repo} ({status.rev})")
        print(f"version    {version}" + (f" from {status.date}" if status.date else ""))
        print(f"last sync  {status.synced_at or 'never'}")
        print(f"reachable  {status.reach_detail}")
    print(f"unpublished {status.pending.describe()}")
    return EXIT_OK
