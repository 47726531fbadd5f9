"""One typed, frozen, validated settings object.

Values are layered, each layer overriding the one before:

1. the defaults written in this module;
2. a TOML file, by default ``config.toml`` in the platformdirs config dir of app
   ``FaceKiosk`` (``KIOSK_CONFIG`` names another file);
3. environment variables ``KIOSK_<SECTION>_<KEY>``, e.g. ``KIOSK_RECOGNITION_THRESHOLD=0.8``.

Unknown sections, keys and ``KIOSK_*`` variables, wrong types and out-of-range
values raise :class:`~kiosk.errors.ConfigError` naming the key and where it came
from. The result is built once at start-up and passed in to whatever needs it;
nothing reads settings from globals. ``Settings.sources`` records where each
value came from, for ``kiosk config show``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from platformdirs import PlatformDirs

from kiosk.errors import ConfigError, KioskError
from kiosk.fsutil import atomic_write_bytes, shared_file_mode

APP_NAME = "FaceKiosk"
SCHEMA_VERSION = 1
ENV_PREFIX = "KIOSK_"
CONFIG_ENV = "KIOSK_CONFIG"

Device = Literal["auto", "cpu", "cuda"]
DuplicatePolicy = Literal["warn", "refuse"]
SpoolFullPolicy = Literal["drop_oldest", "drop_newest"]
#: A match threshold, or "auto": the gallery pipeline's recommendation (kiosk.sync).
Threshold = float | Literal["auto"]
DEFAULT_THRESHOLD = 0.90


def setting(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
) -> Any:
    """A dataclass field with a help text and an optional numeric range."""
    return field(default=default, metadata={"help": help, "ge": ge, "le": le, "gt": gt})


@dataclass(frozen=True)
class KioskSection:
    id: str = setting("", "Name of this kiosk in telemetry and attendance; empty = hostname.")


@dataclass(frozen=True)
class PathsSection:
    data_dir: Path = setting(
        Path(), "Gallery, caches, attendance and the MLflow store; empty = platform data dir."
    )
    log_dir: Path = setting(
        Path(), "Log files; empty = platform log dir (or <data_dir>/logs if data_dir is set)."
    )


@dataclass(frozen=True)
class RecognitionSection:
    min_confidence: float = setting(
        0.90, "MTCNN face probability below which a detection is dropped.", ge=0.0, le=1.0
    )
    margin_ratio: float = setting(
        0.20, "Extra context around the face box, as a fraction of its size.", ge=0.0, le=1.0
    )
    use_alignment: bool = setting(True, "Rotate faces so the eyes are level before embedding.")
    use_prewhitening: bool = setting(
        False, "Per-image standardisation instead of FaceNet's fixed (x-127.5)/128."
    )
    use_tta_flip: bool = setting(
        True, "Average the embeddings of the face and its mirror image (test-time augmentation)."
    )
    threshold: Threshold = setting(
        DEFAULT_THRESHOLD,
        "Match threshold: L2 distance between unit-norm FaceNet embeddings (0 = identical, "
        "2 = opposite). A face is a match when its distance to a person is at or below it. "
        "'auto' = the threshold the gallery pipeline recommended for the gallery version in use.",
        gt=0.0,
        le=2.0,
    )
    device: Device = setting("auto", "auto picks CUDA when available, else the CPU.")
    detection_width: int = setting(
        1280,
        "Frames wider than this are detected on a copy downscaled to this width (0 = never). "
        "It bounds the detector's work on very large frames; faces that end up under ~15 px "
        "in the copy are missed, so keep detection_width / frame width * min_face_px >= 15.",
        ge=0,
        le=8192,
    )
    min_face_px: int = setting(
        40, "Faces smaller than this (box side, in original pixels) are dropped.", ge=12, le=2000
    )
    weights_path: Path = setting(Path(), "Explicit FaceNet (vggface2) weights file; tried first.")
    allow_download: bool = setting(
        False, "Let facenet-pytorch download the FaceNet weights if no local file is found."
    )
    batch_size: int = setting(
        8,
        "Most faces per FaceNet forward pass (8 is fastest per face on small CPUs).",
        ge=1,
        le=512,
    )


@dataclass(frozen=True)
class GallerySection:
    dir: Path = setting(Path(), "Enrolled people and their images; empty = <data_dir>/gallery.")
    duplicate_policy: DuplicatePolicy = setting(
        "warn", "When a new person's face matches someone enrolled: warn or refuse."
    )
    max_name_length: int = setting(100, "Longest accepted display name.", ge=1, le=1000)
    repo: str = setting(
        "",
        "Gallery registry shared by a fleet (git URL or path); empty = local-only gallery.",
    )
    rev: str = setting("main", "Branch (or tag) of the registry this kiosk follows.")
    remote: str = setting("", "DVC remote to pull from/push to; empty = the registry's default.")
    sync_interval_s: float = setting(
        300.0,
        "Sync with the registry (and retry queued publishes) this often; 0 = only at start-up.",
        ge=0.0,
    )


@dataclass(frozen=True)
class ImagesSection:
    max_pixels: int = setting(
        40_000_000, "Images with more pixels are refused before decoding.", ge=10_000
    )
    max_bytes: int = setting(50 * 1024 * 1024, "Image files larger than this are refused.", ge=1024)


@dataclass(frozen=True)
class CameraSection:
    source: str = setting(
        "0",
        "A camera index (0 = first camera), a video file path, or an rtsp:// / http(s):// URL.",
    )
    width: int = setting(1280, "Requested capture width (0 = the camera's default).", ge=0)
    height: int = setting(720, "Requested capture height (0 = the camera's default).", ge=0)
    fps: float = setting(0.0, "Requested capture rate (0 = the camera's default).", ge=0.0)
    pace_files: bool = setting(
        True, "Play video files at their own frame rate (false = as fast as they decode)."
    )
    loop_files: bool = setting(False, "Start a video file again when it ends.")
    lost_after_s: float = setting(
        3.0, "A source that delivers no frame for this long is considered lost.", gt=0.0
    )
    reconnect_initial_s: float = setting(
        0.5, "First wait before reconnecting a lost source; doubles on each failure.", gt=0.0
    )
    reconnect_max_s: float = setting(30.0, "Longest wait between reconnection attempts.", gt=0.0)
    max_restarts_per_minute: int = setting(
        6,
        "Restart-storm guard: after this many reconnections within a minute, wait "
        "reconnect_max_s before the next one.",
        ge=1,
    )


@dataclass(frozen=True)
class PipelineSection:
    torch_threads: int = setting(
        0, "Threads torch may use for recognition (0 = all cores, at most 8).", ge=0, le=256
    )
    detection_width: int = setting(
        640,
        "Live frames are detected on a copy this wide (0 = full size); tracked faces are "
        "re-found in small crops around them, so small faces are still seen.",
        ge=0,
        le=8192,
    )
    full_detect_every: int = setting(
        3,
        "Search the whole frame for new faces every N frames; in between only the tracked "
        "faces are re-found (1 = whole frame every frame).",
        ge=1,
        le=30,
    )
    use_tta_flip: bool = setting(
        False,
        "Flip test-time augmentation on live frames. It doubles FaceNet's cost per face; "
        "voting over several frames already averages out one bad frame. Enrolment keeps "
        "recognition.use_tta_flip.",
    )
    reembed_every: int = setting(
        10, "Re-embed a decided face every N frames (sooner if it grows or sharpens).", ge=1
    )
    vote_window: int = setting(
        5, "Recent embeddings of a face that vote on its identity.", ge=1, le=50
    )
    votes_to_decide: int = setting(
        2,
        "Votes for one identity (a person, or unknown) needed to decide a face.",
        ge=1,
        le=50,
    )
    track_iou: float = setting(
        0.3, "Least box overlap (IoU) for a detection to continue a track.", gt=0.0, le=1.0
    )
    track_max_missed: int = setting(
        8, "Frames a track may go unseen before it ends.", ge=0, le=1000
    )


@dataclass(frozen=True)
class TelemetrySection:
    enabled: bool = setting(True, "Send verification metrics to MLflow.")
    tracking_uri: str = setting(
        "",
        "MLflow tracking URI; empty = $MLFLOW_TRACKING_URI, else a SQLite file in data_dir.",
    )
    experiment: str = setting("facekiosk", "MLflow experiment the kiosk sessions go to.")
    flush_interval_s: float = setting(
        5.0, "Send buffered metrics at least this often.", gt=0.0, le=3600.0
    )
    flush_events: int = setting(
        100, "Send as soon as this many verifications are buffered.", ge=1, le=100_000
    )
    spool_max_mb: float = setting(
        100.0, "Most disk space for metrics kept while MLflow is unreachable.", gt=0.0
    )
    spool_full_policy: SpoolFullPolicy = setting(
        "drop_oldest", "When the spool is full: drop the oldest batches or the newest."
    )


@dataclass(frozen=True)
class AttendanceSection:
    cooldown_s: float = setting(
        300.0,
        "A person is recorded once per this many seconds, however long they stand there.",
        ge=0.0,
        le=86_400.0,
    )


@dataclass(frozen=True)
class AdminSection:
    max_attempts: int = setting(
        5, "Wrong PINs in a row before admin access is locked.", ge=1, le=100
    )
    lockout_s: float = setting(
        30.0, "First lock-out; each further lock-out doubles it.", gt=0.0, le=86_400.0
    )
    lockout_max_s: float = setting(
        3600.0, "Longest lock-out after repeated wrong PINs.", gt=0.0, le=7 * 86_400.0
    )
    unlock_s: float = setting(
        120.0,
        "After a right PIN, further admin actions need no PIN for this long (0 = always ask).",
        ge=0.0,
        le=3600.0,
    )


@dataclass(frozen=True)
class UiSection:
    screen: int = setting(
        0, "Screen for fullscreen attendance mode (0 = primary, 1 = second, ...).", ge=0
    )
    fullscreen: bool = setting(False, "Start straight into fullscreen attendance mode.")
    welcome_s: float = setting(
        4.0, "How long a welcome or message stays on the attendance screen.", gt=0.0, le=60.0
    )
    idle_after_s: float = setting(
        60.0, "Show the idle screen after this long without a face.", gt=0.0, le=86_400.0
    )
    show_distance: bool = setting(True, "Show the match distance next to names in the window.")


@dataclass(frozen=True)
class Settings:
    """The effective settings: every section, plus where each value came from."""

    kiosk: KioskSection = field(default_factory=KioskSection)
    paths: PathsSection = field(default_factory=PathsSection)
    recognition: RecognitionSection = field(default_factory=RecognitionSection)
    gallery: GallerySection = field(default_factory=GallerySection)
    images: ImagesSection = field(default_factory=ImagesSection)
    camera: CameraSection = field(default_factory=CameraSection)
    pipeline: PipelineSection = field(default_factory=PipelineSection)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)
    attendance: AttendanceSection = field(default_factory=AttendanceSection)
    admin: AdminSection = field(default_factory=AdminSection)
    ui: UiSection = field(default_factory=UiSection)
    config_file: Path | None = field(default=None, compare=False)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def cache_dir(self) -> Path:
        return self.paths.data_dir / "cache"

    @property
    def attendance_db(self) -> Path:
        """The attendance records (SQLite)."""
        return self.paths.data_dir / "attendance.sqlite3"

    @property
    def admin_file(self) -> Path:
        """The admin PIN's salted hash and the lock-out state."""
        return self.paths.data_dir / "admin.json"

    @property
    def audit_log(self) -> Path:
        """Admin actions, one JSON object per line."""
        return self.paths.data_dir / "audit.jsonl"

    def describe(self) -> list[tuple[str, Any, str, str]]:
        """(dotted key, value, source, help) for every setting, in declaration order."""
        rows = []
        for section_name, section_cls in _sections().items():
            section = getattr(self, section_name)
            for f in dataclasses.fields(section_cls):
                key = f"{section_name}.{f.name}"
                rows.append(
                    (
                        key,
                        getattr(section, f.name),
                        self.sources.get(key, "default"),
                        f.metadata["help"],
                    )
                )
        return rows


@functools.cache
def _sections() -> dict[str, type]:
    hints = get_type_hints(Settings)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(hints[f.name])
    }


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def default_config_path() -> Path:
    return Path(PlatformDirs(APP_NAME, appauthor=False).user_config_dir) / "config.toml"


def load_settings(
    env: Mapping[str, str] | None = None, config_path: Path | None = None
) -> Settings:
    """Build the settings from defaults, the TOML file and ``KIOSK_*`` variables.

    ``env`` defaults to ``os.environ``; ``config_path`` to ``$KIOSK_CONFIG`` or the
    platform config dir. A missing file is fine (defaults apply); a file that is
    there but unreadable or invalid is a :class:`ConfigError`.
    """
    env = os.environ if env is None else env
    if config_path is None:
        config_path = Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else default_config_path()
    return _build(_read_toml(config_path), env, config_path)


def _build(file_data: dict[str, Any] | None, env: Mapping[str, str], config_path: Path) -> Settings:
    """The settings from a parsed TOML file (``None``: no file) and the environment."""
    sections = _sections()
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    sources: dict[str, str] = {}

    if file_data is not None:
        where = f"file {config_path}"
        version = file_data.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"{config_path}: schema_version {version!r} is not supported "
                f"(this FaceKiosk reads version {SCHEMA_VERSION})."
            )
        for section_name, table in file_data.items():
            if section_name not in sections:
                raise ConfigError(
                    f"{config_path}: unknown section [{section_name}]; "
                    f"known sections: {', '.join(sections)}."
                )
            if not isinstance(table, dict):
                raise ConfigError(f"{config_path}: '{section_name}' must be a [section] table.")
            for key, raw in table.items():
                f = _field(sections[section_name], key, f"{config_path}: [{section_name}]")
                values[section_name][key] = _coerce(f, raw, f"{section_name}.{key}", where)
                sources[f"{section_name}.{key}"] = f"file:{config_path}"

    known_env = {
        env_name(s, f.name): (s, f) for s, cls in sections.items() for f in dataclasses.fields(cls)
    }
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if name not in known_env:
            raise ConfigError(
                f"unknown environment variable {name}: FaceKiosk settings are named "
                f"KIOSK_<SECTION>_<KEY>, e.g. {env_name('recognition', 'threshold')}."
            )
        section_name, f = known_env[name]
        key = f"{section_name}.{f.name}"
        values[section_name][f.name] = _coerce(f, raw, key, f"environment variable {name}")
        sources[key] = f"env:{name}"

    built = {name: sections[name](**vals) for name, vals in values.items()}
    settings = Settings(
        config_file=config_path if file_data is not None else None, sources=sources, **built
    )
    return _resolve_defaults(settings)


def _resolve_defaults(settings: Settings) -> Settings:
    """Fill the "empty = platform default" values with real absolute paths and names."""
    dirs = PlatformDirs(APP_NAME, appauthor=False)
    paths = settings.paths
    custom_data = str(paths.data_dir) != "."
    data_dir = paths.data_dir if custom_data else Path(dirs.user_data_dir)
    if str(paths.log_dir) != ".":
        log_dir = paths.log_dir
    else:  # a kiosk given its own data dir keeps its logs there too
        log_dir = data_dir / "logs" if custom_data else Path(dirs.user_log_dir)
    paths = PathsSection(data_dir=data_dir.expanduser().resolve(), log_dir=log_dir.expanduser())
    gallery_dir = settings.gallery.dir
    gallery_dir = gallery_dir if str(gallery_dir) != "." else paths.data_dir / "gallery"
    kiosk = settings.kiosk
    if not kiosk.id:
        kiosk = KioskSection(id=socket.gethostname() or "kiosk")
    return dataclasses.replace(
        settings,
        kiosk=kiosk,
        paths=paths,
        gallery=dataclasses.replace(settings.gallery, dir=gallery_dir.expanduser().resolve()),
    )


def _read_toml(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc


def _field(cls: type, key: str, where: str) -> dataclasses.Field[Any]:
    for f in dataclasses.fields(cls):
        if f.name == key:
            return f
    known = ", ".join(f.name for f in dataclasses.fields(cls))
    raise ConfigError(f"{where}: unknown key '{key}'; known keys: {known}.")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(
    f: dataclasses.Field[Any], raw: Any, key: str, where: str, *, text: bool = False
) -> Any:
    """Convert ``raw`` (TOML value, env string, or typed ``text``) to the field's type
    and check its range."""
    typ = _field_types()[key]  # f.type is only a string (postponed annotations)
    from_env = isinstance(raw, str) and (text or where.startswith("environment"))

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{key} = {raw!r} (from {where}): expected {expected}.")

    if typ == Threshold:  # a number, or "auto"
        if isinstance(raw, str) and raw.strip() == "auto":
            return "auto"
        typ = float
    choices = get_args(typ)
    if choices:  # a Literal
        if raw not in choices:
            raise bad("one of " + ", ".join(repr(c) for c in choices))
        return raw
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        if from_env and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise bad("true or false")
    if typ is int or typ is float:
        value: Any = raw
        if from_env:
            try:
                value = typ(raw.strip())
            except ValueError:
                raise bad("an integer" if typ is int else "a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("an integer" if typ is int else "a number")
        if typ is int and not isinstance(value, int):
            raise bad("an integer")
        _check_range(f, typ(value), key, where)
        return typ(value)
    if typ is Path:
        if not isinstance(raw, str):
            raise bad("a path (string)")
        return Path(raw).expanduser()
    if not isinstance(raw, str):
        raise bad("a string")
    return raw


def _check_range(f: dataclasses.Field[Any], value: float, key: str, where: str) -> None:
    ge, le, gt = f.metadata["ge"], f.metadata["le"], f.metadata["gt"]
    problems = []
    if ge is not None and value < ge:
        problems.append(f">= {ge}")
    if gt is not None and value <= gt:
        problems.append(f"> {gt}")
    if le is not None and value > le:
        problems.append(f"<= {le}")
    if problems:
        raise ConfigError(
            f"{key} = {value!r} (from {where}) is out of range: must be "
            + " and ".join(problems)
            + "."
        )


@functools.cache
def _field_types() -> dict[str, Any]:
    """Resolved type of every "section.key"; the schema is static, so computed once."""
    types: dict[str, Any] = {}
    for section_name, cls in _sections().items():
        for name, hint in get_type_hints(cls).items():
            types[f"{section_name}.{name}"] = hint
    return types


def settings_for_data_dir(data_dir: Path, **sections: Any) -> Settings:
    """Settings with every default, rooted at ``data_dir``; for tests and tools.

    ``sections`` replaces whole sections, e.g. ``recognition=RecognitionSection(threshold=0.5)``.
    """
    base = Settings(paths=PathsSection(data_dir=data_dir), **sections)
    return _resolve_defaults(base)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def save_settings_file(path: Path, changes: Mapping[str, str]) -> Settings:
    """Write ``changes`` ("section.key" -> text as typed) into the TOML file at ``path``.

    Every value is checked like an environment variable's text; keys already in the
    file are kept. The file is replaced atomically, and only after the whole result
    loads: a wrong value raises :class:`ConfigError` and leaves the file as it was.
    Returns the settings the file now gives (without environment overrides).
    """
    data = _read_toml(path) or {}
    data.setdefault("schema_version", SCHEMA_VERSION)
    sections = _sections()
    for key, raw in changes.items():
        section_name, _, name = key.partition(".")
        if section_name not in sections:
            raise ConfigError(f"unknown setting {key}")
        f = _field(sections[section_name], name, key)
        data.setdefault(section_name, {})[name] = _coerce(
            f, raw, key, "the settings dialog", text=True
        )
    lines = [f"schema_version = {data.pop('schema_version')}"]
    for section_name, table in data.items():
        lines += ["", f"[{section_name}]"]
        lines += [f"{name} = {_toml_value(value)}" for name, value in table.items()]
    text = "\n".join(lines) + "\n"
    settings = _build(tomllib.loads(text), {}, path)  # the whole file, checked before writing
    try:
        atomic_write_bytes(path, text.encode("utf-8"), mode=shared_file_mode(path))
    except KioskError as exc:
        raise ConfigError(f"cannot write settings file {path}: {exc}") from exc
    return settings
