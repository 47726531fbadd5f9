"""A durable, bounded, ordered queue of telemetry records on local disk.

While MLflow is unreachable the sink writes each record (a run to start, a batch of
metrics, a run to end) here, and replays them in order when it answers again. The
file is append-only JSON lines, one record or one "done" mark per line, each with a
CRC-32 of its content and fsync'd, so a crash loses at most the line being written:
at start-up a torn or corrupt line is reported and skipped and every other record is
recovered. When nothing is left the file is truncated; when mostly "done" it is
rewritten (temp file + rename).

The spool is bounded by ``telemetry.spool_max_mb``. When full, ``drop_oldest`` drops
the oldest metric batches to make room and ``drop_newest`` refuses the new batch;
records that start or end runs are never dropped (they are tiny, and without them
the metrics that follow would have no run). Dropped metrics are counted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kiosk.errors import TelemetryError

log = logging.getLogger(__name__)

Op = dict[str, Any]


@dataclass
class _Entry:
    op: Op
    nbytes: int
    nmetrics: int


def _canonical(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def op_metrics(op: Op) -> int:
    return len(op.get("m", ()))


class Spool:
    """Records not yet accepted by MLflow, oldest first; ``path=None`` keeps them in memory."""

    def __init__(self, path: Path | None, max_bytes: int, policy: str = "drop_oldest") -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.policy = policy
        self.dropped_metrics = 0
        self._live: OrderedDict[int, _Entry] = OrderedDict()
        self._next_seq = 1
        self._live_bytes = 0
        self._file_bytes = 0
        self._file: IO[str] | None = None
        self._lock_file: IO[str] | None = None

    # -- opening -------------------------------------------------------------------------

    def open(self) -> list[str]:
        """Lock the file and load what it holds; returns one message per damaged line.

        Raises :class:`TelemetryError` when another process holds the spool or the
        folder cannot be written.
        """
        if self.path is None:
            return []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock()
            problems = self._load()
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            self.close()
            raise TelemetryError(f"cannot use the telemetry spool {self.path}: {exc}") from exc
        if problems:
            self._rewrite()  # the damaged lines are reported once, not at every start
        return problems

    def _lock(self) -> None:
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_file = lock_path.open("a", encoding="utf-8")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one kiosk per data dir is assumed
            return
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_file.close()
            self._lock_file = None
            raise TelemetryError(
                f"the telemetry spool {self.path} is in use by another FaceKiosk process "
                "(the running kiosk replays it itself)"
            ) from exc

    def _load(self) -> list[str]:
        assert self.path is not None
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        problems: list[str] = []
        done: set[int] = set()
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
                if "done" in obj:
                    seq = int(obj["done"])
                    if obj.get("crc") != _crc(f"done:{seq}"):
                        raise ValueError("checksum mismatch")
                    done.add(seq)
                    continue
                seq, op = int(obj["seq"]), obj["op"]
                if obj.get("crc") != _crc(_canonical(op)) or not isinstance(op, dict):
                    raise ValueError("checksum mismatch")
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                problems.append(f"line {lineno}: {exc.__class__.__name__}: {exc}")
                continue
            self._live[seq] = _Entry(op, len(raw) + 1, op_metrics(op))
            self._next_seq = max(self._next_seq, seq + 1)
        for seq in done:
            self._live.pop(seq, None)
        self._live_bytes = sum(e.nbytes for e in self._live.values())
        self._file_bytes = len(data)
        return problems

    def close(self) -> None:
        for f in (self._file, self._lock_file):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._file = self._lock_file = None

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._live)

    @property
    def metrics(self) -> int:
        return sum(e.nmetrics for e in self._live.values())

    @property
    def nbytes(self) -> int:
        return self._live_bytes

    def peek(self) -> tuple[int, Op] | None:
        for seq, entry in self._live.items():
            return seq, entry.op
        return None

    def ops(self) -> list[Op]:
        return [e.op for e in self._live.values()]

    # -- writing -------------------------------------------------------------------------

    def append(self, op: Op) -> bool:
        """Keep ``op`` durably; False if the spool-full policy refused it."""
        body = _canonical(op)
        seq = self._next_seq
        line = f'{{"seq":{seq},"crc":{_crc(body)},"op":{body}}}\n'
        size = len(line.encode("utf-8"))
        nmetrics = op_metrics(op)
        if nmetrics and self._live_bytes + size > self.max_bytes:
            if self.policy == "drop_newest":
                self._count_dropped(nmetrics, "the newest batch")
                return False
            self._drop_oldest(self._live_bytes + size - self.max_bytes)
        self._next_seq += 1
        self._write(line)
        self._live[seq] = _Entry(op, size, nmetrics)
        self._live_bytes += size
        return True

    def _drop_oldest(self, need: int) -> None:
        freed, dropped = 0, 0
        for seq in [s for s, e in self._live.items() if e.nmetrics]:
            if freed >= need:
                break
            entry = self._live[seq]
            freed += entry.nbytes
            dropped += entry.nmetrics
            self.done(seq)
        if dropped:
            self._count_dropped(dropped, "the oldest batches")

    def _count_dropped(self, n: int, which: str) -> None:
        self.dropped_metrics += n
        log.warning(
            "telemetry spool full (%s bytes max, policy %s): dropped %d metrics of %s; "
            "%d dropped in all",
            self.max_bytes,
            self.policy,
            n,
            which,
            self.dropped_metrics,
        )

    def done(self, seq: int) -> None:
        """Forget record ``seq`` (sent, or dropped), durably."""
        entry = self._live.pop(seq, None)
        if entry is None:
            return
        self._live_bytes -= entry.nbytes
        if not self._live:
            self._truncate()
        elif self._file_bytes > 4 * self._live_bytes + 1_000_000:
            self._rewrite()
        else:
            self._write(f'{{"done":{seq},"crc":{_crc(f"done:{seq}")}}}\n')

    def _write(self, line: str) -> None:
        if self._file is None:
            return
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file_bytes += len(line.encode("utf-8"))

    def _truncate(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file_bytes = 0

    def _rewrite(self) -> None:
        """Replace the file with just the live records (temp file, fsync, rename)."""
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        size = 0
        with tmp.open("w", encoding="utf-8") as f:
            for seq, entry in self._live.items():
                body = _canonical(entry.op)
                line = f'{{"seq":{seq},"crc":{_crc(body)},"op":{body}}}\n'
                f.write(line)
                size += len(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if self._file is not None:
            self._file.close()
        tmp.replace(self.path)
        with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._file_bytes = size
        if self._file is not None:
            self._file = self.path.open("a", encoding="utf-8")


@dataclass(frozen=True)
class SpoolContents:
    records: int
    metrics: int
    damaged: int
    nbytes: int


def inspect_spool(path: Path) -> SpoolContents:
    """Count what a spool file holds without locking or changing it (for status commands)."""
    spool = Spool(path, max_bytes=1 << 62)
    try:
        problems = spool._load()
    except OSError:
        return SpoolContents(0, 0, 0, 0)
    return SpoolContents(len(spool), spool.metrics, len(problems), spool.nbytes)
