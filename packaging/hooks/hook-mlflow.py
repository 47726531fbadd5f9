"""PyInstaller hook for MLflow, as FaceKiosk uses it (a tracking client; no server, no UI).

Three things that static analysis cannot see:

- MLflow decides which of its packages is installed (``mlflow`` or ``mlflow-skinny``) and
  its own version from package metadata, so the metadata of every installed MLflow
  distribution is copied;
- a SQLite (or other SQL) tracking store creates and upgrades its schema by running
  Alembic migrations, which Alembic loads as *source files* from
  ``mlflow/store/db_migrations`` (``alembic.ini``, ``env.py``, ``versions/*.py``): they
  are copied as files, not only compiled into the archive;
- the SQLAlchemy store and the flavours (``mlflow.pytorch``, for ``log_facenet_model``)
  are imported lazily.

The web UI's JavaScript (``mlflow/server/js``, tens of MB) is left out: kiosks report to
an ``mlflow server`` elsewhere, or are inspected with ``mlflow ui`` from a normal install.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata


def _installed_metadata(dist: str) -> list[tuple[str, str]]:
    try:
        return copy_metadata(dist)
    except Exception:  # not installed (e.g. mlflow-tracing in older releases)
        return []


datas = [
    entry
    for dist in ("mlflow", "mlflow-skinny", "mlflow-tracing", "alembic", "sqlalchemy")
    for entry in _installed_metadata(dist)
]
datas += collect_data_files(
    "mlflow.store.db_migrations", include_py_files=True, excludes=["**/__pycache__"]
)
# Everything else MLflow reads from its package folder at run time (protos, YAML
# and JSON tables), without the UI build.
datas += collect_data_files(
    "mlflow", excludes=["server/js/**", "**/__pycache__", "**/*.py", "**/*.pyc"]
)

hiddenimports = [
    *collect_submodules("mlflow.store"),
    "mlflow.pytorch",
    "sqlalchemy.dialects.sqlite",
    "alembic.runtime.migration",
    "alembic.ddl.sqlite",
]
