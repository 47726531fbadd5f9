"""Timings of FaceKiosk's telemetry sink: what it costs the pipeline, and what it can carry.

Prints:

1. **enqueue**: the cost of ``TelemetrySink.submit`` on the caller's thread (median and
   p99 in microseconds), while the sink's thread is busy sending to a SQLite store;
2. **throughput**: verifications per second from ``submit`` to stored in MLflow (the
   clock stops when ``flush`` confirms), to a local ``mlflow server`` (SQLite backend,
   started by this script on 127.0.0.1) and to a SQLite URI without a server. Each
   verification is 5 metrics.

Examples::

    python benchmarks/telemetry.py
    python benchmarks/telemetry.py --events 50000 --json
    python benchmarks/telemetry.py --no-server          # SQLite only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.mlflow_server

from kiosk.recognition.types import VerificationEvent
from kiosk.settings import TelemetrySection, settings_for_data_dir
from kiosk.telemetry import SessionInfo, TelemetrySink


def make_event(i: int) -> VerificationEvent:
    return VerificationEvent(
        track_id=i,
        person_id="p" if i % 3 else None,
        name="P" if i % 3 else None,
        distance=0.4 + (i % 50) / 100,
        threshold=0.9,
        is_match=bool(i % 3),
        face_confidence=0.99,
        latency_ms=25.0,
        ttv_ms=120.0,
        frame_id=i,
        wall_time=time.time(),
        box=(0.0, 0.0, 10.0, 10.0),
        votes=2,
    )


def sink_for(uri: str, root: Path, flush_events: int) -> TelemetrySink:
    settings = settings_for_data_dir(
        root / "data",
        telemetry=TelemetrySection(
            tracking_uri=uri, experiment="benchmark", flush_events=flush_events
        ),
    )
    sink = TelemetrySink(settings)
    sink.start()
    sink.start_session(SessionInfo(kiosk_id="bench"))
    if not sink.flush(120):  # the run exists and MLflow is warm before the clock starts
        raise SystemExit(f"telemetry benchmark: {uri} is not usable: {sink.status().message}")
    return sink


def bench_enqueue(root: Path, n: int) -> dict[str, Any]:
    sink = sink_for(f"sqlite:///{(root / 'enqueue.db').as_posix()}", root / "enqueue", 200)
    events = [make_event(i) for i in range(n)]
    costs = []
    for event in events:
        started = time.perf_counter_ns()
        sink.submit(event)
        costs.append(time.perf_counter_ns() - started)
    sink.close(timeout=120)
    costs.sort()
    return {
        "events": n,
        "median_us": statistics.median(costs) / 1000,
        "p99_us": costs[int(0.99 * (n - 1))] / 1000,
        "max_us": costs[-1] / 1000,
    }


def bench_throughput(uri: str, root: Path, n: int, flush_events: int) -> dict[str, Any]:
    sink = sink_for(uri, root, flush_events)
    events = [make_event(i) for i in range(n)]
    started = time.perf_counter()
    for event in events:
        sink.submit(event)
    ok = sink.flush(600)
    elapsed = time.perf_counter() - started
    sink.close(timeout=60)
    return {
        "events": n,
        "seconds": elapsed,
        "events_per_s": n / elapsed,
        "metrics_per_s": 5 * n / elapsed,
        "complete": ok,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="verifications per run")
    parser.add_argument(
        "--flush-events", type=int, default=200, help="events per batch (200 = 1000 metrics)"
    )
    parser.add_argument("--no-server", action="store_true", help="skip the mlflow server run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="kiosk-telemetry-bench-") as tmp:
        root = Path(tmp)
        results["enqueue"] = bench_enqueue(root, 100_000)
        sqlite_uri = f"sqlite:///{(root / 'throughput.db').as_posix()}"
        results["sqlite"] = bench_throughput(
            sqlite_uri, root / "sqlite", args.events, args.flush_events
        )
        if not args.no_server:
            from tests.mlflow_server import MlflowServer

            server = MlflowServer(root / "server")
            server.start()
            try:
                results["server"] = bench_throughput(
                    server.url, root / "via-server", args.events, args.flush_events
                )
            finally:
                server.stop()
    if args.json:
        print(json.dumps(results))
        return
    e = results["enqueue"]
    print(f"# {results['machine']}, Python {results['python']}")
    print(
        f"enqueue (submit on the caller's thread, {e['events']} events): median "
        f"{e['median_us']:.2f} us, p99 {e['p99_us']:.2f} us, max {e['max_us']:.0f} us"
    )
    for name, label in (("sqlite", "SQLite URI, no server"), ("server", "local mlflow server")):
        if name in results:
            r = results[name]
            print(
                f"throughput to {label}: {r['events_per_s']:.0f} verifications/s "
                f"({r['metrics_per_s']:.0f} metrics/s; {r['events']} in {r['seconds']:.1f} s"
                f"{'' if r['complete'] else ', INCOMPLETE'})"
            )


if __name__ == "__main__":
    main()
