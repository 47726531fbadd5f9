"""PyInstaller hook for DVC, replacing the one DVC ships (``dvc/__pyinstaller/hook-dvc.py``).

DVC's own hook is written for DVC's standalone binary, which bundles every remote plugin:
it copies the package metadata of adlfs, gcsfs, s3fs, pydrive2, ... and fails the build
with "No package metadata was found" for each one that is not installed (FaceKiosk installs
none: its registry storage is a local or network folder by default). Hooks in the spec's
``hookspath`` have the highest priority (1000, against 0 for a package's own hooks), so
this file is used instead. It bundles the plugins and metadata that *are* installed, so a
site that adds e.g. ``dvc-s3`` to the build environment gets S3 support in the bundle.
"""

import importlib.util

from PyInstaller.utils.hooks import collect_submodules, copy_metadata, is_module_or_submodule

# Remote-storage plugins DVC imports by name when a remote of that type is used.
_PLUGINS = (
    "dvc_azure",
    "dvc_gdrive",
    "dvc_gs",
    "dvc_hdfs",
    "dvc_http",
    "dvc_oss",
    "dvc_s3",
    "dvc_ssh",
    "dvc_webdav",
    "dvc_webhdfs",
)
# Distributions whose versions DVC reads at run time (``dvc version``, plugin discovery).
_METADATA = (
    "dvc",
    "dvc-data",
    "dvc-objects",
    "dvc-http",
    "dvc-render",
    "dvc-studio-client",
    "dvc-task",
    "scmrepo",
    "fsspec",
    "aiohttp",
    "aiohttp-retry",
    "adlfs",
    "gcsfs",
    "s3fs",
    "ossfs",
    "sshfs",
    "webdav4",
    "pydrive2",
    "knack",
    "pyarrow",
)


def _installed_metadata(dist: str) -> list[tuple[str, str]]:
    try:
        return copy_metadata(dist)
    except Exception:  # PackageNotFoundError under several names across Python versions
        return []


datas = [entry for dist in _METADATA for entry in _installed_metadata(dist)]

# DVC imports much of itself lazily (repo methods, output and dependency types, command
# modules); the tests and the PyInstaller helpers are never needed at run time.
_SKIP = ("dvc.testing", "dvc.__pyinstaller")
hiddenimports = collect_submodules(
    "dvc", filter=lambda name: not any(is_module_or_submodule(name, s) for s in _SKIP)
)
hiddenimports += [name for name in _PLUGINS if importlib.util.find_spec(name) is not None]
