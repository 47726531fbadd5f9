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


def enrol_bytes(settings: Settings, name: str) -> str:
    """Enrol a person straight into the store (no models; sync never decodes images)."""
    import os

    from kiosk.recognition.gallery import GalleryStore

    return GalleryStore(settings.gallery.dir).add_person(name, None, [os.urandom(2000)]).id


def people_on_disk(settings: Settings) -> set[str]:
    from kiosk.recognition.gallery import GalleryStore

    return {p.id for p in GalleryStore(settings.gallery.dir).list_people()}
