"""The telemetry sink: verification events in on any thread, MLflow batches out on its own.

Threads: :meth:`TelemetrySink.submit`, :meth:`~TelemetrySink.update_stats`,
:meth:`~TelemetrySink.start_session` and :meth:`~TelemetrySink.end_session` run on the
caller's thread (the recognition worker, the UI) and only append to a deque (O(1),
never blocking, never raising). The ``kiosk-telemetry`` thread wakes every
``flush_interval_s`` or as soon as ``flush_events`` items are queued, turns them into
records (start a run, a batch of metrics, end a run), and sends them in order with
``MlflowClient.log_batch``. MLflow is imported on that thread only.

When a send fails because the server is unreachable, that record and every later one
go to the :class:`~kiosk.telemetry.spool.Spool` on disk, and are replayed in order,
with backoff, once the server answers. Replays are idempotent: the first record of
each replay (the only one that may have landed before its answer was lost) is checked
against the run's metric history and only missing (key, step, timestamp) rows are
sent; runs are found again by their ``kiosk.session_id`` tag before one is created.
So every metric arrives exactly once and in order.
"""

from __future__ import annotations

import itertools
import logging
import math
import socket
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kiosk import __version__
from kiosk.errors import TelemetryError
from kiosk.recognition.types import PipelineStats, VerificationEvent
from kiosk.settings import Settings
from kiosk.telemetry._model import (
    EVENT_METRICS,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    SESSION_TAG,
    SessionInfo,
    State,
    TelemetryStatus,
    artifact_dir,
    display_uri,
    event_metrics,
    resolve_tracking_uri,
    session_params,
    session_tags,
    spool_dir,
)
from kiosk.telemetry.backend import (
    Backend,
    BackendRejectedError,
    BackendUnavailableError,
    MetricRow,
    MlflowBackend,
)
from kiosk.telemetry.spool import Op, Spool, op_metrics

log = logging.getLogger(__name__)

BackendFactory = Callable[[str], Backend]

#: Verifications held in memory at most, for a sink whose thread does not take them.
MAX_QUEUED = 200_000


def _mlflow_backend(uri: str) -> Backend:
    return MlflowBackend(uri)


@dataclass
class _FlushRequest:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


@dataclass
class _Session:
    """One run's worth of verifications, as the sink's thread sees it."""

    sid: str
    info: SessionInfo
    day: date
    steps: int = 0
    matches: int = 0
    distance_sum: float = 0.0
    distance_n: int = 0
    latencies: list[float] = field(default_factory=list)
    last_summary_step: int = -1
    last_summary_at: float = 0.0

    def add(self, event: VerificationEvent) -> list[list[Any]]:
        rows = event_metrics(event, self.steps)
        self.steps += 1
        self.matches += bool(event.is_match)
        if rows and rows[0][0] == "distance":
            self.distance_sum += float(event.distance)
            self.distance_n += 1
        if math.isfinite(event.latency_ms):
            self.latencies.append(float(event.latency_ms))
        return rows

    def summary(self, ts_ms: int, stats: PipelineStats | None) -> list[list[Any]]:
        total = self.steps
        values: dict[str, float] = {
            "total_verifications": total,
            "successful_matches": self.matches,
            "unknown_faces": total - self.matches,
            "match_rate": self.matches / total if total else 0.0,
            "avg_distance": self.distance_sum / self.distance_n if self.distance_n else 0.0,
        }
        if self.latencies:
            values["p50_latency_ms"] = _percentile(self.latencies, 50)
            values["p95_latency_ms"] = _percentile(self.latencies, 95)
        if stats is not None:
            values["frames_per_second"] = float(stats.processing_fps)
            values["dropped_frames"] = float(stats.dropped_frames)
        self.last_summary_step = total
        return [[k, float(v), ts_ms, total] for k, v in values.items()]


def _percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class TelemetrySink:
    """Batches verification metrics into one MLflow run per kiosk session.

    Construction is cheap and imports nothing heavy; :meth:`start` starts the
    ``kiosk-telemetry`` thread. No method raises into the caller, and only
    :meth:`flush` and :meth:`close` wait (each with a timeout).

    ``backend_factory`` builds the tracking client on the sink's thread (a
    :class:`~kiosk.telemetry.backend.FakeBackend` in unit tests); ``clock`` gives
    epoch seconds (injectable for the daily rollover test).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        tracking_uri: str | None = None,
        backend_factory: BackendFactory | None = None,
        clock: Callable[[], float] = time.time,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        summary_interval_s: float = 60.0,
        spool_name: str = "spool",
        name: str = "kiosk-telemetry",
    ) -> None:
        self._settings = settings
        cfg = settings.telemetry
        self.enabled = cfg.enabled
        self.tracking_uri = tracking_uri or resolve_tracking_uri(settings)
        self.experiment = cfg.experiment
        self._backend_factory = backend_factory or _mlflow_backend
        self._clock = clock
        self._flush_interval = cfg.flush_interval_s
        self._flush_events = cfg.flush_events
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._summary_interval = summary_interval_s
        self._thread_name = name
        self.spool_path = spool_dir(settings) / f"{spool_name}.jsonl"
        self._spool = Spool(
            self.spool_path, int(cfg.spool_max_mb * 1024 * 1024), cfg.spool_full_policy
        )

        # Caller side: the deque is the only thing the hot path touches.
        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session_open = False
        self._stats: PipelineStats | None = None
        self._queue_dropped = 0

        # Published by the sink's thread, read by status().
        self._lock = threading.Lock()
        self._state: State = "starting" if self.enabled else "disabled"
        self._last_error: str | None = None
        self._sent = 0
        self._rejected = 0
        self._spooled = (0, 0)

        # Sink thread only.
        self._backend: Backend | None = None
        self._experiment_id: str | None = None
        self._runs: dict[str, str] = {}  # session id -> run id
        self._flushes: list[_FlushRequest] = []
        self._session: _Session | None = None
        self._retry_delay = retry_initial_s
        self._next_retry = 0.0
        self._ids = itertools.count()

    # -- caller's thread -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (once); a disabled sink starts nothing."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def start_session(self, info: SessionInfo) -> None:
        """Begin a run (ending any open one); its creation happens on the sink's thread."""
        self._put(("start", info, self._clock()))
        self._session_open = True

    def end_session(self) -> None:
        """Log the session summary and end its run, after every event submitted before."""
        if self._session_open:
            self._put(("end", self._clock()))
            self._session_open = False
            self._wake.set()

    def submit(self, event: VerificationEvent) -> None:
        """Queue one verification. O(1); never blocks, never raises."""
        if not self.enabled:
            return
        try:
            queued = len(self._queue)
            if queued >= MAX_QUEUED:  # the thread is not running (never started, or stuck)
                self._queue_dropped += 1
                return
            self._queue.append(("event", event))
            if queued + 1 >= self._flush_events:
                self._wake.set()
        except Exception:  # pragma: no cover - a deque append does not fail; be sure anyway
            log.exception("telemetry: could not queue an event")

    def update_stats(self, stats: PipelineStats) -> None:
        """The pipeline's latest counters, for the next summary (frames/s, dropped frames)."""
        self._stats = stats

    def log_to_run(
        self,
        run_id: str,
        *,
        metrics: list[MetricRow] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Queue metrics/params/tags for a run created elsewhere (the seed-compatible API)."""
        self._put(("external", run_id, list(metrics or []), dict(params or {}), dict(tags or {})))

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued and replay the spool now; True if nothing is left unsent."""
        if not self.enabled or self._thread is None or not self._thread.is_alive():
            return False
        request = _FlushRequest()
        self._put(("flush", request))
        self._wake.set()
        return request.done.wait(timeout) and request.ok

    def close(self, timeout: float = 5.0) -> None:
        """End the open session, flush for at most ``timeout`` s, keep the rest spooled, join."""
        deadline = time.monotonic() + timeout
        if self._thread is None:
            return
        self.end_session()
        # Half the time to send, half for the request in flight to finish and the rest to be
        # written to the spool (a request cannot be interrupted).
        self.flush(max(0.0, timeout * 0.5))
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("telemetry thread did not stop within %.1f s", timeout)
        else:
            self._thread = None

    def wait_closed(self, timeout: float) -> bool:
        """After :meth:`close` timed out: wait up to ``timeout`` s more for the thread.

        A thread still opening MLflow (import, first SQLite migration: seconds) cannot be
        interrupted; once that returns it spools what is left and ends. A process about
        to exit waits here so those records reach the spool instead of vanishing.
        """
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def status(self) -> TelemetryStatus:
        with self._lock:
            state, error = self._state, self._last_error
            spooled_metrics, spooled_batches = self._spooled
            sent = self._sent
            dropped = self._rejected + self._spool.dropped_metrics
        dropped += self._queue_dropped * len(EVENT_METRICS)
        uri = display_uri(self.tracking_uri)
        if state == "disabled":
            message = "Telemetry is off (telemetry.enabled = false)."
        elif state == "starting":
            message = f"Telemetry is connecting to MLflow at {uri}."
        elif state == "ok":
            message = f"Telemetry is sending to MLflow at {uri}."
        elif state == "offline":
            message = (
                f"Telemetry offline: {spooled_metrics} metrics kept on disk until MLflow "
                f"at {uri} answers again."
            )
        else:
            message = f"Telemetry error: {error}"
        if dropped and state != "disabled":
            message += f" {dropped} metrics were dropped."
        return TelemetryStatus(
            state=state,
            tracking_uri=uri,
            spooled=spooled_metrics,
            spooled_batches=spooled_batches,
            sent=sent,
            dropped=dropped,
            message=message,
            last_error=error,
        )

    def _put(self, item: tuple[Any, ...]) -> None:
        if self.enabled:
            self._queue.append(item)

    # -- the sink's thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            problems = self._spool.open()
        except TelemetryError as exc:
            log.warning("%s; spooling in memory only", exc)
            self._spool = Spool(None, self._spool.max_bytes, self._spool.policy)
            self._set_error(str(exc))
        else:
            if problems:
                msg = (
                    f"telemetry spool {self.spool_path} had {len(problems)} damaged "
                    f"record(s), skipped; {len(self._spool)} recovered"
                )
                log.warning("%s: %s", msg, "; ".join(problems[:5]))
                self._set_error(msg)
        self._publish_spool()
        self._connect()
        try:
            while not self._stop.is_set():
                self._wake.wait(self._wait_time())
                self._wake.clear()
                self._guarded_cycle(final=False)
            self._guarded_cycle(final=True)
        finally:
            self._spool.close()

    def _guarded_cycle(self, final: bool) -> None:
        """One cycle; a bug here costs that cycle's records, never the thread."""
        try:
            self._cycle(final=final)
        except Exception as exc:
            log.exception("telemetry: unexpected failure; records of this cycle are lost")
            self._set_state("error", f"unexpected telemetry failure: {exc}")
            for request in self._flushes:  # answered (not ok), so no caller waits in vain
                request.done.set()
            self._flushes.clear()
            time.sleep(0.1)  # no busy loop if it keeps failing

    def _wait_time(self) -> float:
        wait = self._flush_interval
        if self._state == "offline" or (len(self._spool) and self._state != "ok"):
            wait = min(wait, max(0.05, self._next_retry - time.monotonic()))
        return wait

    def _connect(self) -> bool:
        """Build the client and open the experiment; False (state offline/error) on failure."""
        try:
            if self._backend is None:
                self._backend = self._backend_factory(self.tracking_uri)
            if self._experiment_id is None:
                location = None
                if self.tracking_uri.startswith("sqlite:"):
                    location = artifact_dir(self._settings).resolve().as_uri()
                self._experiment_id = self._backend.ensure_experiment(self.experiment, location)
        except TelemetryError as exc:
            self._failed(exc)
            return False
        except Exception as exc:
            self._failed(TelemetryError(f"{type(exc).__name__}: {exc}"))
            return False
        if not len(self._spool):
            self._set_state("ok", None)
        return True

    def _cycle(self, final: bool = False) -> None:
        """Drain the queue into records, send them (or spool them), answer flush requests."""
        ops: list[Op] = []
        flushes = self._flushes
        while self._queue:
            item = self._queue.popleft()
            kind = item[0]
            if kind == "event":
                self._on_event(item[1], ops)
            elif kind == "start":
                self._end_session(item[2], ops)
                self._start_session(item[1], item[2], ops)
            elif kind == "end":
                self._end_session(item[1], ops)
            elif kind == "external":
                _, run_id, metrics, params, tags = item
                ops.extend(_external_ops(run_id, metrics, params, tags))
            elif kind == "flush":
                flushes.append(item[1])
        now = self._clock()
        self._maybe_roll_over(now, ops)
        session = self._session
        if (
            session is not None
            and session.steps != session.last_summary_step
            and now - session.last_summary_at >= self._summary_interval
        ):
            ops.append(self._metrics_op(session.sid, session.summary(int(now * 1000), self._stats)))
            session.last_summary_at = now
        self._pump(ops, force=bool(flushes), spool_only=final)
        ok = not len(self._spool) and self._state != "offline"
        for request in flushes:
            request.ok = ok
            request.done.set()
        flushes.clear()

    def _on_event(self, event: VerificationEvent, ops: list[Op]) -> None:
        if self._session is None:
            info = SessionInfo(kiosk_id=self._settings.kiosk.id, device="unknown")
            self._start_session(info, event.wall_time, ops)
        self._maybe_roll_over(event.wall_time, ops)
        session = self._session
        assert session is not None
        rows = session.add(event)
        # Append to the last metrics record of this session while it has room.
        last = ops[-1] if ops else None
        if (
            last is not None
            and last["t"] == "m"
            and last.get("s") == session.sid
            and len(last["m"]) + len(rows) <= MAX_METRICS_PER_BATCH
        ):
            last["m"].extend(rows)
        else:
            ops.append(self._metrics_op(session.sid, rows))

    def _metrics_op(self, sid: str, rows: list[list[Any]]) -> Op:
        return {"t": "m", "s": sid, "m": rows}

    def _start_session(self, info: SessionInfo, at: float, ops: list[Op]) -> None:
        sid = uuid.uuid4().hex
        started = datetime.fromtimestamp(at)
        self._session = _Session(sid, info, started.date(), last_summary_at=at)
        tags = session_tags(info, socket.gethostname(), __version__)
        tags[SESSION_TAG] = sid
        ops.append(
            {
                "t": "start",
                "s": sid,
                "name": f"{info.kiosk_id}-{started:%Y%m%d-%H%M%S}",
                "ts": int(at * 1000),
                "tags": tags,
                "params": session_params(self._settings, info),
            }
        )

    def _end_session(self, at: float, ops: list[Op]) -> None:
        session = self._session
        if session is None:
            return
        ops.append(self._metrics_op(session.sid, session.summary(int(at * 1000), self._stats)))
        ops.append({"t": "end", "s": session.sid, "ts": int(at * 1000), "status": "FINISHED"})
        self._session = None

    def _maybe_roll_over(self, at: float, ops: list[Op]) -> None:
        """End the run and start another when the local date changes (long-running kiosks)."""
        session = self._session
        if session is None or datetime.fromtimestamp(at).date() <= session.day:
            return
        info = session.info
        self._end_session(at, ops)
        self._start_session(info, at, ops)

    # -- sending ---------------------------------------------------------------------------

    def _pump(self, ops: list[Op], *, force: bool, spool_only: bool) -> None:
        """Send ``ops`` after whatever is spooled; what cannot be sent now is spooled."""
        if spool_only or len(self._spool) or self._backend is None or self._experiment_id is None:
            for op in ops:
                self._spool.append(op)
            ops = []
            if not spool_only and (force or time.monotonic() >= self._next_retry):
                self._replay()
            self._publish_spool()
            return
        clean = True
        for i, op in enumerate(ops):
            if self._stop.is_set():  # closing: what is not sent by now waits in the spool
                for rest in ops[i:]:
                    self._spool.append(rest)
                clean = False
                break
            try:
                self._send(op, replay=False)
            except BackendUnavailableError as exc:
                for rest in ops[i:]:
                    self._spool.append(rest)
                self._failed(exc)
                break
            except TelemetryError as exc:
                self._rejected_op(op, exc)
                clean = False
        else:
            if ops and clean:
                self._set_state("ok", None)
        self._publish_spool()

    def _replay(self) -> None:
        """Send the spooled records in order until done or the server fails again."""
        if not self._connect():
            return
        first, clean, replayed = True, True, 0
        while (head := self._spool.peek()) is not None:
            if self._stop.is_set():
                return
            seq, op = head
            try:
                self._send(op, replay=first)
            except BackendUnavailableError as exc:
                self._failed(exc)
                return
            except TelemetryError as exc:
                self._rejected_op(op, exc)
                clean = False
            self._spool.done(seq)
            first = False
            replayed += 1
            self._publish_spool()
        if replayed:
            log.info("telemetry: %d spooled records sent to %s", replayed, self.tracking_uri)
        if clean:
            self._set_state("ok", None)

    def _send(self, op: Op, *, replay: bool) -> None:
        backend = self._backend
        experiment_id = self._experiment_id
        assert backend is not None and experiment_id is not None
        kind = op["t"]
        if kind == "start":
            sid = op["s"]
            run_id = backend.find_run(experiment_id, SESSION_TAG, sid) if replay else None
            if run_id is None:
                run_id = backend.create_run(experiment_id, op["name"], op["ts"], op["tags"])
            self._runs[sid] = run_id
            params = list(op["params"].items())
            for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
                backend.log_batch(run_id, params=dict(params[i : i + MAX_PARAMS_PER_BATCH]))
            return
        run_id = self._run_id(op)
        if kind == "m":
            rows: list[MetricRow] = [(str(k), float(v), int(ts), int(s)) for k, v, ts, s in op["m"]]
            if replay:
                rows = self._missing(run_id, rows)
            for i in range(0, len(rows), MAX_METRICS_PER_BATCH):
                backend.log_batch(run_id, metrics=rows[i : i + MAX_METRICS_PER_BATCH])
            with self._lock:
                self._sent += len(rows)
        elif kind == "pt":
            params = list(op.get("params", {}).items())
            tags = list(op.get("tags", {}).items())
            for i in range(0, max(len(params), len(tags)), MAX_PARAMS_PER_BATCH):
                backend.log_batch(
                    run_id,
                    params=dict(params[i : i + MAX_PARAMS_PER_BATCH]),
                    tags=dict(tags[i : i + MAX_TAGS_PER_BATCH]),
                )
        elif kind == "end":
            backend.end_run(run_id, op["status"], op["ts"])

    def _run_id(self, op: Op) -> str:
        if op.get("r"):
            return str(op["r"])
        sid = str(op["s"])
        if sid not in self._runs:
            assert self._backend is not None and self._experiment_id is not None
            found = self._backend.find_run(self._experiment_id, SESSION_TAG, sid)
            if found is None:
                raise BackendRejectedError(f"the run of session {sid} does not exist")
            self._runs[sid] = found
        return self._runs[sid]

    def _missing(self, run_id: str, rows: list[MetricRow]) -> list[MetricRow]:
        """The rows the run does not hold yet (a replayed batch may have landed before)."""
        assert self._backend is not None
        stored: set[tuple[str, int, int]] = set()
        for key in {r[0] for r in rows}:
            stored.update((k, ts, s) for k, _v, ts, s in self._backend.metric_history(run_id, key))
        missing = [r for r in rows if (r[0], r[2], r[3]) not in stored]
        if len(missing) != len(rows):
            log.info("telemetry: %d metrics had already arrived", len(rows) - len(missing))
        return missing

    # -- state -----------------------------------------------------------------------------

    def _failed(self, exc: TelemetryError) -> None:
        if self._state != "offline":
            log.warning("telemetry offline: %s", exc)
        self._next_retry = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self._retry_max)
        self._set_state("offline", str(exc))

    def _rejected_op(self, op: Op, exc: TelemetryError) -> None:
        n = op_metrics(op)
        log.error("telemetry: MLflow refused a %s record (%d metrics dropped): %s", op["t"], n, exc)
        with self._lock:
            self._rejected += n
        self._set_state("error", str(exc))

    def _set_state(self, state: State, error: str | None) -> None:
        with self._lock:
            self._state = state
            if error is not None:
                self._last_error = error
        if state == "ok":
            self._retry_delay = self._retry_initial

    def _set_error(self, error: str) -> None:
        with self._lock:
            self._last_error = error

    def _publish_spool(self) -> None:
        with self._lock:
            self._spooled = (self._spool.metrics, len(self._spool))


def _external_ops(
    run_id: str, metrics: list[MetricRow], params: dict[str, str], tags: dict[str, str]
) -> list[Op]:
    ops: list[Op] = []
    if params or tags:
        ops.append({"t": "pt", "r": run_id, "params": params, "tags": tags})
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        chunk = [list(m) for m in metrics[i : i + MAX_METRICS_PER_BATCH]]
        ops.append({"t": "m", "r": run_id, "m": chunk})
    return ops
