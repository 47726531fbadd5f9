"""Helpers for the gallery-registry tests (fixtures are in tests/sync_support.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.settings import GallerySection, KioskSection, Settings


@dataclass
class Fleet:
    """A registry in a temp dir and the settings of kiosks that share it."""

    root: Path
    registry: Path
    storage: str
    base: Settings

    def kiosk(self, name: str, **gallery: object) -> Settings:
        from kiosk.settings import settings_for_data_dir

        settings = settings_for_data_dir(
            self.root / name,
            recognition=self.base.recognition,
            kiosk=KioskSection(id=name),
            gallery=GallerySection(repo=str(self.registry), sync_interval_s=0.0, **gallery),  # type: ignore[arg-type]
        )
        return settings


def other_person(rgb: np.ndarray) -> np.ndarray:
    """A channel-swapped copy: "another person" for random weights (~0.22 away)."""
    return np.ascontiguousarray(rgb[..., ::-1])
