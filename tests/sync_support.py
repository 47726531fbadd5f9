"""Fixtures for the gallery-registry tests: real git, real DVC, local remotes in tmp dirs.

Loaded with ``pytest_plugins = ["tests.sync_support"]``. Git and DVC never see the
user's own configuration: HOME, git's global/system config and DVC's global,
system and site-cache dirs all point into the test's temp dir, and DVC
analytics are off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.settings import Settings
from tests.sync_helpers import Fleet


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("")
    for var, value in {
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-system"),
    }.items():
        monkeypatch.setenv(var, value)
    return home


@pytest.fixture
def fleet(git_env: Path, tmp_path: Path, settings: Settings) -> Fleet:
    from kiosk.sync import init_registry
    from tests.helpers import with_recognition

    registry = tmp_path / "registry.git"
    storage = init_registry(registry)
    base = with_recognition(settings, threshold=0.1)
    return Fleet(tmp_path, registry, storage, base)
