"""Reading ``params.yaml`` into the kiosk's own settings types."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kiosk.errors import ConfigError
from kiosk.settings import RecognitionSection, Settings, settings_for_data_dir

_RECOGNITION_KEYS = {
    "min_confidence",
    "margin_ratio",
    "use_alignment",
    "use_prewhitening",
    "use_tta_flip",
    "detection_width",
    "min_face_px",
    "batch_size",
    "weights_path",
}


@dataclass(frozen=True)
class PipelineParams:
    root: Path  # the registry working tree the stage runs in
    settings: Settings  # recognition settings from params.yaml, gallery dir = root
    target_far: float
    experiment: str
    tracking_uri: str
    raw: dict[str, Any]


def load_params(root: Path) -> PipelineParams:
    path = root / "params.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    rec_raw = dict(raw.get("recognition") or {})
    unknown = set(rec_raw) - _RECOGNITION_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown recognition keys {sorted(unknown)}")
    weights = str(rec_raw.pop("weights_path", "") or "")
    rec = dataclasses.replace(
        RecognitionSection(),
        **rec_raw,
        weights_path=Path(weights) if weights else Path(),
        device="cpu",
    )
    base = settings_for_data_dir(root / ".kiosk" / "pipeline", recognition=rec)
    settings = dataclasses.replace(
        base, gallery=dataclasses.replace(base.gallery, dir=root.resolve())
    )
    evaluate = raw.get("evaluate") or {}
    mlflow_cfg = raw.get("mlflow") or {}
    target_far = float(evaluate.get("target_far", 1e-3))
    if not 0.0 < target_far < 1.0:
        raise ConfigError(f"{path}: evaluate.target_far must be between 0 and 1")
    return PipelineParams(
        root=root.resolve(),
        settings=settings,
        target_far=target_far,
        experiment=str(mlflow_cfg.get("experiment") or "facekiosk-gallery"),
        tracking_uri=str(mlflow_cfg.get("tracking_uri") or ""),
        raw=raw,
    )
