"""The few tracking-server operations the sink needs, behind one small interface.

:class:`MlflowBackend` is the real thing (``MlflowClient``, imported lazily on the
sink's own thread); :class:`FakeBackend` keeps runs in memory for unit tests and can
be told to fail like an unreachable server, or to apply a request and then fail
(the "timed out, but did it land?" case that replays must survive).

Errors are split by what the sink should do about them::

    TelemetryError
     ├── BackendUnavailableError   unreachable, timed out, 5xx: keep the batch, retry later
     └── BackendRejectedError      the server answered "no" (bad value, no such run): drop it
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kiosk.errors import TelemetryError

#: (key, value, timestamp_ms, step)
MetricRow = tuple[str, float, int, int]


class BackendUnavailableError(TelemetryError):
    """The tracking server could not be reached or failed; the request may be retried."""


class BackendRejectedError(TelemetryError):
    """The tracking server refused the request; retrying it would fail again."""


class Backend(Protocol):
    """What the sink asks of a tracking server. Every method may raise the two errors above."""

    def ensure_experiment(self, name: str, artifact_location: str | None) -> str: ...

    def create_run(
        self, experiment_id: str, run_name: str, start_ms: int, tags: dict[str, str]
    ) -> str: ...

    def find_run(self, experiment_id: str, tag: str, value: str) -> str | None: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None: ...

    def metric_history(self, run_id: str, key: str) -> list[MetricRow]: ...

    def end_run(self, run_id: str, status: str, end_ms: int) -> None: ...


# MLflow error codes that mean "this request is wrong", not "the server is unwell".
_REJECTED_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_DOES_NOT_EXIST",
        "RESOURCE_ALREADY_EXISTS",
        "INVALID_STATE",
        "BAD_REQUEST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "INVALID_REQUEST",
    }
)

# The sink's own HTTP behaviour: MLflow's defaults (7 retries with exponential backoff,
# 120 s timeout) would hold a batch for minutes on a dead server and wedge shutdown. The
# sink retries whole batches itself, with its own backoff. MLflow's client would also
# print "View run ... at: URL" on stdout at every run end (and fetch the run to do so),
# which would corrupt `kiosk ... --json` output. Explicit values in the environment win.
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class MlflowBackend:
    """:class:`Backend` on ``MlflowClient``; construct it on the thread that will use it."""

    def __init__(self, tracking_uri: str) -> None:
        for name, value in HTTP_ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        try:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=tracking_uri)
        except Exception as exc:
            raise _translate(exc, "connect to") from exc
        self.tracking_uri = tracking_uri

    def ensure_experiment(self, name: str, artifact_location: str | None) -> str:
        try:
            experiment = self._client.get_experiment_by_name(name)
            if experiment is not None:
                return str(experiment.experiment_id)
            try:
                return str(self._client.create_experiment(name, artifact_location))
            except Exception as exc:  # another kiosk created it first
                experiment = self._client.get_experiment_by_name(name)
                if experiment is None:
                    raise exc from None
                return str(experiment.experiment_id)
        except Exception as exc:
            raise _translate(exc, f"open experiment {name!r} in") from exc

    def create_run(
        self, experiment_id: str, run_name: str, start_ms: int, tags: dict[str, str]
    ) -> str:
        try:
            run = self._client.create_run(
                experiment_id, start_time=start_ms, tags=tags, run_name=run_name
            )
        except Exception as exc:
            raise _translate(exc, "create a run in") from exc
        return str(run.info.run_id)

    def find_run(self, experiment_id: str, tag: str, value: str) -> str | None:
        try:
            runs = self._client.search_runs(
                [experiment_id], filter_string=f"tags.`{tag}` = '{value}'", max_results=1
            )
        except Exception as exc:
            raise _translate(exc, "search runs in") from exc
        return str(runs[0].info.run_id) if runs else None

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        try:
            self._client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
                params=[Param(k, v) for k, v in (params or {}).items()],
                tags=[RunTag(k, v) for k, v in (tags or {}).items()],
                synchronous=True,
            )
        except Exception as exc:
            raise _translate(exc, "log metrics to") from exc

    def metric_history(self, run_id: str, key: str) -> list[MetricRow]:
        try:
            history = self._client.get_metric_history(run_id, key)
        except Exception as exc:
            raise _translate(exc, "read metrics from") from exc
        return [(m.key, float(m.value), int(m.timestamp), int(m.step)) for m in history]

    def end_run(self, run_id: str, status: str, end_ms: int) -> None:
        try:
            self._client.set_terminated(run_id, status=status, end_time=end_ms)
        except Exception as exc:
            raise _translate(exc, "end a run in") from exc


def _translate(exc: BaseException, doing: str) -> TelemetryError:
    """An MLflow (or connection) error as the sink's retry-or-drop error, one sentence."""
    code = getattr(exc, "error_code", None)
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if len(first_line) > 300:
        first_line = first_line[:297] + "..."
    if code in _REJECTED_CODES:
        return BackendRejectedError(f"MLflow refused to {doing} the tracking store: {first_line}")
    return BackendUnavailableError(f"could not {doing} the tracking store: {first_line}")


@dataclass
class _FakeRun:
    run_id: str
    experiment_id: str
    name: str
    start_ms: int
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricRow] = field(default_factory=list)
    status: str = "RUNNING"
    end_ms: int | None = None


class FakeBackend:
    """An in-memory tracking server with MLflow's rules that matter here.

    ``offline = True`` makes every call raise :class:`BackendUnavailableError`;
    ``fail_after_apply = n`` makes the next ``n`` log_batch calls store their metrics
    and then raise, like a request whose answer was lost. Params may be logged again
    only with the same value (as in MLflow). Thread-safe, so tests can inspect it while
    the sink runs.
    """

    def __init__(self) -> None:
        self.offline = False
        self.fail_after_apply = 0
        self.experiments: dict[str, str] = {}
        self.artifact_locations: dict[str, str | None] = {}
        self.runs: dict[str, _FakeRun] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.offline:
            raise BackendUnavailableError("could not reach the tracking store: connection refused")

    def _run(self, run_id: str) -> _FakeRun:
        if run_id not in self.runs:
            raise BackendRejectedError(f"MLflow refused: run {run_id} does not exist")
        return self.runs[run_id]

    def ensure_experiment(self, name: str, artifact_location: str | None) -> str:
        with self._lock:
            self._call("ensure_experiment")
            if name not in self.experiments:
                self.experiments[name] = str(next(self._ids))
                self.artifact_locations[name] = artifact_location
            return self.experiments[name]

    def create_run(
        self, experiment_id: str, run_name: str, start_ms: int, tags: dict[str, str]
    ) -> str:
        with self._lock:
            self._call("create_run")
            run_id = f"run{next(self._ids)}"
            self.runs[run_id] = _FakeRun(run_id, experiment_id, run_name, start_ms, dict(tags))
            return run_id

    def find_run(self, experiment_id: str, tag: str, value: str) -> str | None:
        with self._lock:
            self._call("find_run")
            for run in self.runs.values():
                if run.experiment_id == experiment_id and run.tags.get(tag) == value:
                    return run.run_id
            return None

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._call("log_batch")
            run = self._run(run_id)
            if len(metrics) > 1000 or len(params or {}) > 100 or len(tags or {}) > 100:
                raise BackendRejectedError("MLflow refused: batch over MLflow's limits")
            for key, value in (params or {}).items():
                if run.params.get(key, value) != value:
                    raise BackendRejectedError(
                        f"MLflow refused: changing param {key} is not allowed"
                    )
            run.params.update(params or {})
            run.tags.update(tags or {})
            run.metrics.extend(metrics)
            if self.fail_after_apply > 0:
                self.fail_after_apply -= 1
                raise BackendUnavailableError("could not log metrics: read timed out")

    def metric_history(self, run_id: str, key: str) -> list[MetricRow]:
        with self._lock:
            self._call("metric_history")
            return [m for m in self._run(run_id).metrics if m[0] == key]

    def end_run(self, run_id: str, status: str, end_ms: int) -> None:
        with self._lock:
            self._call("end_run")
            run = self._run(run_id)
            run.status, run.end_ms = status, end_ms


def artifact_uri(path: Path) -> str:
    return path.resolve().as_uri()
