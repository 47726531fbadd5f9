"""The ``kiosk`` command line: headless, scriptable, JSON where useful.

This module is the edge for errors: :class:`~kiosk.errors.KioskError` becomes one
message on stderr and exit status 1 (2 for usage errors); tracebacks go to the
log file only. Heavy modules (torch, the recognition core) are imported inside
the commands that need them, so ``kiosk --help`` and ``kiosk config show`` are
instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk import __version__
from kiosk.errors import ConfigError, ImageError, KioskError
from kiosk.settings import Settings, load_settings

if TYPE_CHECKING:
    from kiosk.recognition import Recognizer

log = logging.getLogger("kiosk")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk", description="FaceKiosk: face-recognition attendance kiosk."
    )
    parser.add_argument("--version", action="version", version=f"FaceKiosk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument(
        "--fullscreen",
        action="store_true",
        help="start the window straight in fullscreen attendance mode (for the entrance)",
    )
    parser.add_argument(
        "--source",
        dest="window_source",
        metavar="SOURCE",
        help="camera index, video file or URL for the window (default: camera.source)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that models, MLflow, DVC, the attendance database and Qt all work here "
        "(also inside the bundle); one line per check, exit 0 only if none fails",
    )
    parser.add_argument(
        "--require-facenet",
        action="store_true",
        help="with --self-test: missing FaceNet weights (detection-only mode) fail the test",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("enroll", help="enrol a person from image files")
    p.add_argument("--name", required=True, help="display name, e.g. 'Ada Lovelace'")
    p.add_argument("--staff-id", help="optional staff or badge number")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("identify", help="find and identify the faces in images")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per face, per line")

    people = sub.add_parser("people", help="list or remove enrolled people")
    psub = people.add_subparsers(dest="people_command", metavar="ACTION", required=True)
    p = psub.add_parser("list", help="list enrolled people")
    p.add_argument("--json", action="store_true")
    p = psub.add_parser("remove", help="remove a person, their images and cached embeddings")
    p.add_argument("person_id", metavar="ID")

    p = sub.add_parser(
        "live", help="run the live pipeline without a window; print each verification"
    )
    p.add_argument("--source", help="camera index, video file or URL (default: camera.source)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--loop", action="store_true", help="play a video file again when it ends")
    p.add_argument("--json", action="store_true", help="one JSON object per verification")

    from kiosk.sync import cli as gallery_cli

    gallery_cli.add_parser(sub)

    from kiosk.attendance import cli as attendance_cli

    attendance_cli.add_parser(sub)

    p = sub.add_parser("doctor", help="check versions, device, weights, data dirs")
    p.add_argument("--json", action="store_true")

    config = sub.add_parser("config", help="inspect settings")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    p = csub.add_parser("show", help="print the effective settings and where each came from")
    p.add_argument("--json", action="store_true")

    telemetry = sub.add_parser("telemetry", help="MLflow telemetry: status, replay the spool")
    tsub = telemetry.add_subparsers(dest="telemetry_command", metavar="ACTION", required=True)
    p = tsub.add_parser("status", help="state, tracking URI and metrics waiting in the spool")
    p.add_argument("--json", action="store_true")
    p = tsub.add_parser("flush", help="send the spooled metrics now (exit 1 if still offline)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"kiosk: settings error: {exc}", file=sys.stderr)
        if args.command is None and not args.self_test:
            _window_module().show_fatal("FaceKiosk: settings error", str(exc))
        return EXIT_USAGE
    _setup_logging(settings, args.verbose)
    if args.self_test:
        from kiosk.selftest import run as run_self_test

        ok = run_self_test(settings, require_facenet=args.require_facenet, print_line=_print_now)
        return EXIT_OK if ok else EXIT_ERROR
    if args.command is None:  # no command: the kiosk window
        return int(
            _window_module().run(settings, source=args.window_source, fullscreen=args.fullscreen)
        )
    handler = _COMMANDS[args.command]
    try:
        return handler(args, settings)
    except KioskError as exc:
        log.debug("command failed", exc_info=True)
        print(f"kiosk: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _print_now(line: str) -> None:
    print(line, flush=True)


def _window_module() -> Any:
    """kiosk.ui.app, imported by name: the headless CLI hands over to the Qt window here
    and nowhere else (the import contract keeps Qt out of this module's imports)."""
    import importlib

    return importlib.import_module("kiosk.ui.app")


_handlers: list[logging.Handler] = []


def _setup_logging(settings: Settings, verbose: bool) -> None:
    """Errors (or, with -v, progress) to stderr; everything to a rotating file in log_dir."""
    root = logging.getLogger()
    for old in _handlers:  # main() may run more than once in a process (tests, embedding)
        root.removeHandler(old)
        old.close()
    _handlers.clear()
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.ERROR)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    _handlers.append(console)
    try:
        settings.paths.log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            settings.paths.log_dir / "kiosk.log",
            maxBytes=5_000_000,
            backupCount=3,
            encoding="utf-8",
        )
    except OSError as exc:
        print(f"kiosk: warning: not logging to a file ({exc})", file=sys.stderr)
        return
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    )
    root.addHandler(file_handler)
    _handlers.append(file_handler)


def _recognizer(settings: Settings) -> Recognizer:
    from kiosk.recognition import Recognizer

    return Recognizer.create(settings)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def cmd_enroll(args: argparse.Namespace, settings: Settings) -> int:
    recognizer = _recognizer(settings)
    result = recognizer.enroll_files(args.name, args.images, staff_id=args.staff_id)
    person = result.person
    if args.json:
        _print_json(
            {
                "id": person.id,
                "name": person.name,
                "staff_id": person.staff_id,
                "images": len(person.images),
                "warnings": result.warnings,
            }
        )
    else:
        print(f"enrolled {person.name} as {person.id} ({len(person.images)} images)")
    for warning in result.warnings:
        print(f"kiosk: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_identify(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.imaging import load_image

    recognizer = _recognizer(settings)
    if recognizer.detection_only:
        recognizer.require_embedder()  # raises the actionable DetectionOnlyError
    status = EXIT_OK
    limits = settings.images
    for path in args.images:
        try:
            image = load_image(path, max_pixels=limits.max_pixels, max_bytes=limits.max_bytes)
        except ImageError as exc:
            print(f"kiosk: {exc}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        faces = recognizer.identify(image)
        if not faces:
            print(f"kiosk: no face found in {path}", file=sys.stderr)
        for face in faces:
            det, match = face.detection, face.match
            assert match is not None
            record = {
                "image": str(path),
                "box": [round(v, 1) for v in det.box],
                "confidence": round(det.probability, 4),
                "identity": match.name,
                "person_id": match.person_id,
                "distance": None if match.distance == float("inf") else round(match.distance, 4),
                "match": match.is_match,
            }
            if args.json:
                _print_json(record)
            else:
                who = match.name if match.is_match else "unknown"
                dist = record["distance"]
                print(
                    f"{path}: {who} (distance {dist}, threshold {match.threshold}) "
                    f"box {record['box']} confidence {record['confidence']}"
                )
    return status


def cmd_people(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.recognition.gallery import GalleryStore

    if args.people_command == "remove":
        from kiosk.recognition.recognizer import remove_person

        person = remove_person(settings, args.person_id)
        print(
            f"removed {person.name} ({person.id}), {len(person.images)} images and their "
            "cached embeddings"
        )
        return EXIT_OK
    people = GalleryStore(settings.gallery.dir).list_people()
    if args.json:
        _print_json(
            [
                {
                    "id": p.id,
                    "name": p.name,
                    "staff_id": p.staff_id,
                    "images": len(p.images),
                    "created": p.created,
                }
                for p in people
            ]
        )
        return EXIT_OK
    if not people:
        print(f"no one is enrolled yet (gallery: {settings.gallery.dir})")
    for p in people:
        staff = f"  staff {p.staff_id}" if p.staff_id else ""
        print(f"{p.id:<40} {p.name}{staff}  ({len(p.images)} images, since {p.created})")
    return EXIT_OK


def cmd_live(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses
    import signal
    import threading

    from kiosk.session import run_headless

    camera = settings.camera
    if args.source is not None:
        camera = dataclasses.replace(camera, source=args.source)
    if args.loop:
        camera = dataclasses.replace(camera, loop_files=True)
    settings = dataclasses.replace(settings, camera=camera)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_headless(
            settings,
            seconds=args.seconds,
            print_line=lambda line: print(line, flush=True),
            as_json=args.json,
            stop=stop,
        )
    except KeyboardInterrupt:
        pass  # the session was stopped cleanly in run_headless's finally
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.doctor import run_checks

    failed = False
    checks = []
    for check in run_checks(settings):
        failed = failed or check.status == "fail"
        checks.append(check)
        if not args.json:
            print(f"{check.status.upper():<5} {check.title}: {check.detail}", flush=True)
            if check.fix:
                print(f"      fix: {check.fix}", flush=True)
    if args.json:
        _print_json([c.__dict__ for c in checks])
    return EXIT_ERROR if failed else EXIT_OK


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    rows = settings.describe()
    if args.json:
        _print_json(
            {
                "config_file": str(settings.config_file) if settings.config_file else None,
                "settings": {k: {"value": _plain(v), "source": src} for k, v, src, _ in rows},
            }
        )
        return EXIT_OK
    print(f"# settings file: {settings.config_file or 'none (defaults and KIOSK_* variables)'}")
    section = ""
    for key, value, source, _help in rows:
        head, name = key.split(".", 1)
        if head != section:
            section = head
            print(f"[{section}]")
        shown = json.dumps(_plain(value))
        print(f"{name} = {shown}  # {source}")
    return EXIT_OK


def cmd_telemetry(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.telemetry.report import flush_spools, probe

    if args.telemetry_command == "flush":
        status = flush_spools(settings, timeout=args.timeout)
        failed = status.state == "offline" or status.spooled > 0
    else:
        status = probe(settings)
        failed = False
    if args.json:
        _print_json(status.as_dict())
    else:
        print(f"state: {status.state}")
        print(f"tracking URI: {status.tracking_uri}")
        print(f"spooled: {status.spooled} metrics ({status.spooled_batches} records)")
        print(status.message)
    return EXIT_ERROR if failed else EXIT_OK


def _plain(value: object) -> object:
    """A setting's value as TOML/JSON shows it (an unset path is the empty string)."""
    if isinstance(value, Path):
        return "" if str(value) == "." else str(value)
    return value


def cmd_gallery(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.sync import cli as gallery_cli

    return gallery_cli.run(args, settings)


def cmd_attendance(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.attendance import cli as attendance_cli

    return attendance_cli.run(args, settings)


_COMMANDS = {
    "enroll": cmd_enroll,
    "identify": cmd_identify,
    "people": cmd_people,
    "live": cmd_live,
    "doctor": cmd_doctor,
    "config": cmd_config,
    "telemetry": cmd_telemetry,
    "gallery": cmd_gallery,
    "attendance": cmd_attendance,
}
