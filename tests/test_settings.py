"""Settings: defaults < TOML file < KIOSK_* variables, validation, and where values come from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiosk.errors import ConfigError
from kiosk.settings import Settings, default_config_path, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_documented_recognition_parameters(tmp_path: Path) -> None:
    s = load_settings(env={}, config_path=tmp_path / "absent.toml")
    rec = s.recognition
    assert (rec.min_confidence, rec.margin_ratio) == (0.90, 0.20)
    assert (rec.use_alignment, rec.use_prewhitening, rec.use_tta_flip) == (True, False, True)
    assert rec.device == "auto"
    assert 0.0 < rec.threshold <= 2.0
    assert s.config_file is None
    assert all(source == "default" for _, _, source, _ in s.describe())


def test_default_dirs_come_from_platformdirs_under_the_app_name(tmp_path: Path) -> None:
    s = load_settings(env={}, config_path=tmp_path / "absent.toml")
    # conftest points XDG_* at a temp home; platformdirs must put FaceKiosk's dirs there.
    assert s.paths.data_dir.name == "FaceKiosk"
    assert "data" in s.paths.data_dir.parts
    assert s.paths.data_dir.is_absolute()
    assert s.gallery.dir == s.paths.data_dir / "gallery"
    assert "FaceKiosk" in s.paths.log_dir.parts
    assert default_config_path().parent.name == "FaceKiosk"
    assert s.kiosk.id  # hostname when not set


def test_file_overrides_defaults_and_env_overrides_file(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "config.toml",
        "schema_version = 1\n[recognition]\nthreshold = 0.8\nmin_confidence = 0.95\n"
        "[kiosk]\nid = 'door-1'\n",
    )
    s = load_settings(env={"KIOSK_RECOGNITION_THRESHOLD": "0.75"}, config_path=cfg)
    assert s.recognition.threshold == 0.75
    assert s.recognition.min_confidence == 0.95
    assert s.kiosk.id == "door-1"
    assert s.sources["recognition.threshold"] == "env:KIOSK_RECOGNITION_THRESHOLD"
    assert s.sources["recognition.min_confidence"] == f"file:{cfg}"
    assert "recognition.margin_ratio" not in s.sources  # still the default
    assert s.config_file == cfg


def test_kiosk_config_variable_names_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "elsewhere.toml", "[gallery]\nduplicate_policy = 'refuse'\n")
    s = load_settings(env={"KIOSK_CONFIG": str(cfg)})
    assert s.gallery.duplicate_policy == "refuse"


def test_env_values_are_parsed_to_their_types(tmp_path: Path) -> None:
    s = load_settings(
        env={
            "KIOSK_RECOGNITION_USE_TTA_FLIP": "off",
            "KIOSK_RECOGNITION_DETECTION_WIDTH": "960",
            "KIOSK_RECOGNITION_DEVICE": "cpu",
            "KIOSK_PATHS_DATA_DIR": str(tmp_path / "d"),
        },
        config_path=tmp_path / "absent.toml",
    )
    assert s.recognition.use_tta_flip is False
    assert s.recognition.detection_width == 960
    assert s.recognition.device == "cpu"
    assert s.paths.data_dir == (tmp_path / "d").resolve()
    assert s.paths.log_dir == s.paths.data_dir / "logs"  # logs follow a custom data dir
    assert s.gallery.dir == s.paths.data_dir / "gallery"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[recognition]\nthreshold = 3.0\n", r"recognition\.threshold = 3\.0 .*out of range"),
        ("[recognition]\nmin_confidence = -0.1\n", r"recognition\.min_confidence .*>= 0"),
        ("[recognition]\nthreshhold = 0.8\n", r"unknown key 'threshhold'.*threshold"),
        ("[recogniton]\nthreshold = 0.8\n", r"unknown section \[recogniton\]"),
        ("[recognition]\ndevice = 'tpu'\n", r"recognition\.device = 'tpu'.*'auto', 'cpu', 'cuda'"),
        ("[recognition]\nuse_alignment = 'yes'\n", r"use_alignment.*true or false"),
        ("[recognition]\ndetection_width = 640.5\n", r"detection_width.*an integer"),
        ("[recognition]\nbatch_size = true\n", r"batch_size.*an integer"),
        ("recognition = 3\n", r"'recognition' must be a \[section\] table"),
        ("schema_version = 7\n", r"schema_version 7 is not supported"),
        ("[recognition\nthreshold = 0.8\n", r"not valid TOML"),
    ],
)
def test_invalid_file_values_name_key_and_file(tmp_path: Path, toml: str, expected: str) -> None:
    cfg = write(tmp_path / "config.toml", toml)
    with pytest.raises(ConfigError, match=expected) as info:
        load_settings(env={}, config_path=cfg)
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("KIOSK_RECOGNITION_THRESHOLD", "abc", r"expected a number"),
        ("KIOSK_RECOGNITION_THRESHOLD", "0", r"must be > 0"),
        ("KIOSK_RECOGNITION_USE_TTA_FLIP", "maybe", r"true or false"),
        ("KIOSK_RECOGNITION_THRESHHOLD", "0.8", r"unknown environment variable"),
    ],
)
def test_invalid_env_values_name_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_settings(env={name: value}, config_path=tmp_path / "absent.toml")
    assert name in str(info.value) or name.lower().removeprefix("kiosk_") in str(info.value)


def test_unreadable_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b"\xff\xfe not utf-8 \xff")
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(env={}, config_path=cfg)


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings(env={}, config_path=tmp_path / "absent.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.recognition.threshold = 0.1  # type: ignore[misc]
    assert isinstance(s, Settings)


def test_saving_merges_typed_values_into_the_file_atomically(tmp_path: Path) -> None:
    from kiosk.settings import save_settings_file

    path = tmp_path / "config.toml"
    path.write_text('[kiosk]\nid = "north-door"\n\n[camera]\nsource = "1"\n', encoding="utf-8")
    saved = save_settings_file(
        path,
        {
            "recognition.threshold": "0.85",
            "ui.fullscreen": "true",
            "attendance.cooldown_s": "600",
            "kiosk.id": 'Door "B" / Ünïcode',
        },
    )
    assert saved.recognition.threshold == 0.85 and saved.ui.fullscreen is True
    reloaded = load_settings(env={}, config_path=path)
    assert reloaded.camera.source == "1"  # untouched keys are kept
    assert reloaded.kiosk.id == 'Door "B" / Ünïcode'
    assert reloaded.attendance.cooldown_s == 600.0
    assert not list(tmp_path.glob("*.new"))
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"recognition.threshold": "lots"}, "expected a number"),
        ({"attendance.cooldown_s": "-1"}, "out of range"),
        ({"camera.nope": "1"}, "unknown key 'nope'"),
        ({"nosuch.key": "1"}, "unknown setting nosuch.key"),
    ],
)
def test_saving_a_wrong_value_changes_nothing(
    tmp_path: Path, changes: dict[str, str], expected: str
) -> None:
    from kiosk.settings import save_settings_file

    path = tmp_path / "config.toml"
    path.write_text('[kiosk]\nid = "north-door"\n', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=expected):
        save_settings_file(path, changes)
    assert path.read_bytes() == before
