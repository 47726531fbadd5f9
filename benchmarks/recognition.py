"""Timings of FaceKiosk's recognition core: detect, embed, match.

Prints, for real footage (a video and/or an image; their paths are arguments, the
files never belong in the repository):

1. **detect**: ms per frame and faces found per frame at several detection widths;
2. **embed**: ms per face at batch sizes 1, 8 and 32, with and without the flip TTA;
3. **match**: ms per face against random galleries of 1e3, 1e4 and 1e5 templates.

Examples::

    python benchmarks/recognition.py --image /path/to/group.jpg
    python benchmarks/recognition.py --video /path/to/entrance.mp4 --frames 20 --json

Without the real FaceNet (vggface2) weights the embedder runs an InceptionResnetV1
with random weights, loaded through the kiosk's own loader: the same architecture,
so the same timings, but meaningless embeddings. The output says so.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch

from kiosk.errors import ConfigError, KioskError, ModelLoadError
from kiosk.imaging import load_image
from kiosk.recognition.align import FACE_SIZE, align_face
from kiosk.recognition.detector import DetectorConfig, FaceDetector
from kiosk.recognition.device import resolve_device
from kiosk.recognition.embedder import EMBEDDING_DIM, EmbedderConfig, FaceEmbedder
from kiosk.recognition.index import TemplateIndex
from kiosk.recognition.types import Detection
from kiosk.recognition.weights import LoadedFaceNet, load_facenet, load_weights_file
from kiosk.settings import ImagesSection, RecognitionSection, Settings, load_settings

FULL = 0  # detection_width 0: detect at full size
DEFAULT_WIDTHS = (320, 640, 960, 1280, FULL)
DEFAULT_BATCH_SIZES = (1, 8, 32)
DEFAULT_GALLERY_SIZES = (1_000, 10_000, 100_000)
TEMPLATES_PER_PERSON = 5
MATCH_THRESHOLD = 0.9
MATCH_BATCH = 8
MATCH_TARGET_MS = 10.0
MATCH_TARGET_SIZE = 100_000
SEED = 20240402
BUSY_LOAD = 0.5  # 1-min load average above which other work skews the timings

Stats = dict[str, float]
In = TypeVar("In")
Out = TypeVar("Out")


# -- command line ----------------------------------------------------------------------------


def parse_width(text: str) -> int:
    """A detection width: a positive number of pixels, or ``full``/``0`` for full size."""
    if text.lower() == "full":
        return FULL
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a width: {text!r} (pixels, or 'full')") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a width cannot be negative: {value}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time FaceKiosk's recognition core (detect, embed, match).",
    )
    inputs = parser.add_argument_group("input (at least one)")
    inputs.add_argument(
        "--video", type=Path, metavar="PATH", help="video file; its first --frames frames are used"
    )
    inputs.add_argument(
        "--image", type=Path, metavar="PATH", help="image file; detected --frames times"
    )
    parser.add_argument(
        "--frames",
        type=positive_int,
        default=30,
        help="video frames (or image repeats) per width (%(default)s)",
    )
    parser.add_argument(
        "--widths",
        nargs="+",
        type=parse_width,
        default=list(DEFAULT_WIDTHS),
        metavar="W",
        help="detection widths in pixels, 'full' or 0 = full size (320 640 960 1280 full)",
    )
    parser.add_argument(
        "--min-face",
        type=positive_int,
        default=40,
        help="smallest face kept, box side in px (%(default)s)",
    )
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=positive_int,
        default=list(DEFAULT_BATCH_SIZES),
        metavar="B",
        help="embedding batch sizes (1 8 32)",
    )
    parser.add_argument(
        "--embed-reps",
        type=positive_int,
        default=5,
        help="timed embed calls per batch size (%(default)s)",
    )
    parser.add_argument(
        "--gallery-sizes",
        nargs="+",
        type=positive_int,
        default=list(DEFAULT_GALLERY_SIZES),
        metavar="N",
        help="templates in the match galleries (1000 10000 100000)",
    )
    parser.add_argument(
        "--match-reps",
        type=positive_int,
        default=200,
        help="timed single-face match calls (%(default)s)",
    )
    parser.add_argument(
        "--warmup", type=positive_int, default=2, help="untimed calls before timing (%(default)s)"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="PATH",
        help="FaceNet weights file (default: the kiosk's search, else random-init weights)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="(%(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch.set_num_threads(N) (default: torch's default)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    return parser


# -- helpers ---------------------------------------------------------------------------------


def progress(message: str) -> None:
    """Progress goes to stderr, so ``--json`` output on stdout stays clean."""
    print(message, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_calls(
    fn: Callable[[In], Out], inputs: Iterable[In], device: torch.device
) -> tuple[list[float], list[Out]]:
    """Call ``fn`` on each input; wall-clock milliseconds of each call (GPU work included)."""
    samples: list[float] = []
    outputs: list[Out] = []
    for item in inputs:
        sync(device)
        start = time.perf_counter()
        out = fn(item)
        sync(device)
        samples.append((time.perf_counter() - start) * 1e3)
        outputs.append(out)
    return samples, outputs


def summarize(samples_ms: Sequence[float], per: int = 1) -> Stats:
    """Median, p95, mean and min of the samples, each divided by ``per`` (items per call)."""
    arr = np.asarray(samples_ms, dtype=np.float64) / per
    return {
        "median_ms": float(np.median(arr)),
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "n": len(arr),
    }


def width_label(width: int) -> str:
    return "full" if width == FULL else str(width)


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# -- inputs ----------------------------------------------------------------------------------


@dataclass
class InputFrames:
    kind: str  # "video" or "image"
    path: Path
    frames: list[np.ndarray]  # RGB uint8, all the same size

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "frame_size": [self.width, self.height],
            "frames": len(self.frames),
        }


def read_video(path: Path, count: int) -> InputFrames:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"error: cannot open video {path}")
    frames: list[np.ndarray] = []
    try:
        while len(frames) < count:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    finally:
        capture.release()
    if not frames:
        raise SystemExit(f"error: no frames could be read from {path}")
    if len(frames) < count:
        progress(f"note: {path} has only {len(frames)} frames (asked for {count})")
    return InputFrames("video", path, frames)


def read_image(path: Path, images: ImagesSection, repeats: int) -> InputFrames:
    try:
        rgb = load_image(path, max_pixels=images.max_pixels, max_bytes=images.max_bytes)
    except KioskError as exc:
        raise SystemExit(f"error: {exc}") from exc
    # The same array every time: detection only reads it.
    return InputFrames("image", path, [rgb] * repeats)


# -- detect ----------------------------------------------------------------------------------


@dataclass
class DetectRun:
    detection_width: int
    effective_size: tuple[int, int]  # (width, height) that MTCNN actually sees
    stats: Stats
    faces_per_frame: float
    detections: list[list[Detection]] = field(repr=False)
    same_as: str | None = None  # label of the width whose measurement this reuses

    def to_json(self) -> dict[str, Any]:
        return {
            "detection_width": self.detection_width,
            "effective_size": list(self.effective_size),
            **self.stats,
            "faces_per_frame": self.faces_per_frame,
            "same_as": self.same_as,
        }


def effective_size(detector: FaceDetector, width: int, height: int) -> tuple[int, int]:
    scale = detector.scale_for(width)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def bench_detect(
    source: InputFrames, widths: Sequence[int], args: argparse.Namespace, device: torch.device
) -> dict[str, DetectRun]:
    runs: dict[str, DetectRun] = {}
    by_size: dict[tuple[int, int], str] = {}
    for width in widths:
        label = width_label(width)
        if label in runs:
            continue
        config = DetectorConfig(
            min_confidence=0.90, min_face_px=args.min_face, detection_width=width
        )
        detector = FaceDetector(config, device)
        size = effective_size(detector, source.width, source.height)
        if size in by_size:  # e.g. 1280 on a 1200 px image: that is full size again
            earlier = runs[by_size[size]]
            runs[label] = DetectRun(
                width,
                size,
                earlier.stats,
                earlier.faces_per_frame,
                earlier.detections,
                by_size[size],
            )
            continue
        progress(f"detect {source.kind} at width {label} ({size[0]}x{size[1]})...")
        for _ in range(args.warmup):
            detector.detect(source.frames[0])
        samples, found = timed_calls(detector.detect, source.frames, device)
        faces = float(np.mean([len(f) for f in found]))
        runs[label] = DetectRun(width, size, summarize(samples), faces, found)
        by_size[size] = label
    return runs


def aligned_faces(
    sources: Sequence[tuple[InputFrames, dict[str, DetectRun]]],
    rec: RecognitionSection,
    limit: int,
) -> list[np.ndarray]:
    """Up to ``limit`` aligned faces, from the width that found the most faces per input."""
    faces: list[np.ndarray] = []
    for source, runs in sources:
        best = max(runs.values(), key=lambda r: r.faces_per_frame)
        seen_frames: set[int] = set()
        for frame, dets in zip(source.frames, best.detections, strict=True):
            if id(frame) in seen_frames:  # an image's repeats are the same faces
                continue
            seen_frames.add(id(frame))
            for det in dets:
                faces.append(
                    align_face(
                        frame, det, margin_ratio=rec.margin_ratio, use_alignment=rec.use_alignment
                    )
                )
                if len(faces) >= limit:
                    return faces
    return faces


# -- embed -----------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    loaded: LoadedFaceNet
    random_init: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.loaded.source,
            "path": "(temporary file, deleted)" if self.random_init else str(self.loaded.path),
            "fingerprint": self.loaded.fingerprint,
            "random_init": self.random_init,
            "note": self.note,
        }


def random_facenet_file(directory: Path) -> Path:
    """Save a seeded, randomly initialised InceptionResnetV1 state dict like the release file.

    The BatchNorm statistics are calibrated on a few smooth random images so the
    activations have realistic magnitudes (untrained statistics let them blow up,
    which could make the float arithmetic, and so the timings, unrepresentative).
    """
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(SEED)
    model = InceptionResnetV1(pretrained=None, classify=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
    noise = torch.rand(8, 3, FACE_SIZE, FACE_SIZE, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(noise * 2 - 1, 8), size=FACE_SIZE, mode="bilinear"
    )
    model.train()
    with torch.no_grad():
        model(smooth)
    model.eval()
    path = directory / "random-init-InceptionResnetV1.pt"
    torch.save(model.state_dict(), path)
    return path


def load_model(
    args: argparse.Namespace, settings: Settings | None, device: torch.device
) -> ModelInfo:
    if args.weights is not None:
        try:
            loaded = load_weights_file(args.weights, device, source="--weights")
        except ModelLoadError as exc:
            raise SystemExit(f"error: --weights {args.weights}: {exc}") from exc
        return ModelInfo(loaded, False, f"FaceNet weights from {args.weights}")
    if settings is not None:
        try:
            loaded = load_facenet(
                weights_path=settings.recognition.weights_path,
                gallery_dir=settings.gallery.dir,
                allow_download=False,
                device=device,
            )
            return ModelInfo(loaded, False, f"FaceNet weights from {loaded.path} ({loaded.source})")
        except ModelLoadError as exc:
            progress(f"no FaceNet weights found by the kiosk's search:\n{exc}")
    with tempfile.TemporaryDirectory(prefix="facekiosk-bench-") as tmp:
        path = random_facenet_file(Path(tmp))
        loaded = load_weights_file(path, device, source="random init (benchmark)")
    note = (
        "RANDOM-INIT WEIGHTS: the real vggface2 weights were not found, so the embedder runs "
        "an InceptionResnetV1 with random weights (same architecture: timings are the same, "
        "embeddings are meaningless). Pass --weights PATH to use real ones."
    )
    return ModelInfo(loaded, True, note)


def bench_embed(
    model: torch.nn.Module,
    device: torch.device,
    faces: Sequence[np.ndarray],
    batch_sizes: Sequence[int],
    args: argparse.Namespace,
) -> dict[str, dict[str, Stats]]:
    results: dict[str, dict[str, Stats]] = {}
    for tta in (True, False):
        embedder = FaceEmbedder(model, device, EmbedderConfig(use_tta_flip=tta))
        per_batch: dict[str, Stats] = {}
        for size in batch_sizes:
            batch = np.stack([faces[i % len(faces)] for i in range(size)])
            progress(f"embed batch {size}, tta {'on' if tta else 'off'}...")
            for _ in range(args.warmup):
                out = embedder.embed(batch)
            if not np.isfinite(out).all():
                progress("warning: the embedder returned non-finite values")
            samples, _ = timed_calls(embedder.embed, [batch] * args.embed_reps, device)
            per_batch[str(size)] = summarize(samples, per=size)
        results["tta_on" if tta else "tta_off"] = per_batch
    return results


# -- match -----------------------------------------------------------------------------------


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def random_entries(
    size: int, rng: np.random.Generator
) -> tuple[list[tuple[str, str, np.ndarray]], np.ndarray]:
    """``size`` random unit templates, about 5 per person, as index entries, and the vectors."""
    people = max(1, size // TEMPLATES_PER_PERSON)
    owners = rng.integers(0, people, size=size)  # ~5 each, some more, some fewer
    vectors = unit_rows(rng, size)
    entries = [(f"p{int(p):06d}", f"Person {int(p)}", vectors[i]) for i, p in enumerate(owners)]
    return entries, vectors


def make_queries(vectors: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit queries, like real traffic: half are noisy copies of templates (enrolled people,
    distance about 0.6: a match), half are random (strangers, distance about 1.4)."""
    queries = unit_rows(rng, count)
    known = rng.random(count) < 0.5
    picked = vectors[rng.integers(0, len(vectors), size=int(known.sum()))]
    noisy = picked + rng.normal(0.0, 0.03, size=picked.shape).astype(np.float32)
    queries[known] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return queries


def bench_match(gallery_sizes: Sequence[int], args: argparse.Namespace) -> dict[str, Any]:
    cpu = torch.device("cpu")  # TemplateIndex always runs on the CPU
    rng = np.random.default_rng(SEED)
    results: dict[str, Any] = {}
    for size in gallery_sizes:
        progress(f"match against {size} templates...")
        entries, vectors = random_entries(size, rng)
        start = time.perf_counter()
        index = TemplateIndex(entries, MATCH_THRESHOLD)
        build_ms = (time.perf_counter() - start) * 1e3
        single = make_queries(vectors, args.match_reps, rng)
        batches = make_queries(vectors, MATCH_BATCH * max(1, args.match_reps // 4), rng)
        for i in range(args.warmup * 5):
            index.match(single[i % len(single)])
        one, _ = timed_calls(index.match, [q[None, :] for q in single], cpu)
        groups = [batches[i : i + MATCH_BATCH] for i in range(0, len(batches), MATCH_BATCH)]
        eight, _ = timed_calls(index.match, groups, cpu)
        results[str(size)] = {
            "templates": index.size,
            "people": index.people,
            "build_ms": build_ms,
            "batch1": summarize(one),
            f"batch{MATCH_BATCH}_per_face": summarize(eight, per=MATCH_BATCH),
        }
    key = str(MATCH_TARGET_SIZE)
    results["target"] = {
        "text": f"target < {MATCH_TARGET_MS:g} ms per face at 1e5",
        "ms_per_face": MATCH_TARGET_MS,
        "gallery_size": MATCH_TARGET_SIZE,
        "met": results[key]["batch1"]["median_ms"] < MATCH_TARGET_MS if key in results else None,
    }
    return results


# -- report ----------------------------------------------------------------------------------


def meta_info(
    args: argparse.Namespace,
    device: torch.device,
    sources: Sequence[InputFrames],
    model: ModelInfo,
    load_before: list[float],
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "facenet_pytorch": package_version("facenet-pytorch"),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cv2_threads": cv2.getNumThreads(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        # Other processes on the machine distort the timings; the 1/5/15 min averages say so.
        "loadavg_before": load_before,
        "loadavg_after": list(os.getloadavg()),
        "inputs": [s.describe() for s in sources],
        "min_face_px": args.min_face,
        "min_confidence": 0.90,
        "warmup": args.warmup,
        "units": {"detect": "ms per frame", "embed": "ms per face", "match": "ms per face"},
        "weights": model.to_json(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_table(report: dict[str, Any]) -> None:
    meta = report["meta"]
    if meta["weights"]["random_init"]:
        print("!" * 100)
        for line in textwrap.wrap(meta["weights"]["note"], 96):
            print("!! " + line)
        print("!" * 100)
    print(
        f"torch {meta['torch']}  facenet-pytorch {meta['facenet_pytorch']}  "
        f"device {meta['device']}{' (' + meta['gpu'] + ')' if 'gpu' in meta else ''}  "
        f"torch threads {meta['threads']}  CPUs {meta['cpus_usable']}/{meta['cpu_count']}"
    )
    print(f"weights: {meta['weights']['source']} ({meta['weights']['fingerprint']})")
    load = meta["loadavg_before"][0]
    busy = load >= BUSY_LOAD
    print(
        f"load average before start: {load:.2f} (1 min)"
        + ("  WARNING: other processes were using the CPU, timings are noisy" if busy else "")
    )
    for source in meta["inputs"]:
        w, h = source["frame_size"]
        print(f"input: {source['kind']} {source['path']}  {w}x{h}, {source['frames']} frames")

    for source in meta["inputs"]:
        runs = report["detect"][source["kind"]]
        print(f"\nDETECT ({source['kind']}, ms per frame; min face {meta['min_face_px']} px)")
        print(f"{'width':>7} {'detects at':>11} {'median':>9} {'p95':>9} {'faces/frame':>12}")
        for label, run in runs.items():
            size = "{}x{}".format(*run["effective_size"])
            note = f"  (= {run['same_as']})" if run["same_as"] else ""
            print(
                f"{label:>7} {size:>11} {run['median_ms']:9.1f} {run['p95_ms']:9.1f} "
                f"{run['faces_per_frame']:12.2f}{note}"
            )

    embed = report["embed"]
    print(f"\nEMBED (ms per face, median of {embed['reps']} calls; faces: {embed['faces']})")
    print(f"{'batch':>7} {'tta on':>9} {'tta off':>9}")
    for size in embed["tta_on"]:
        on, off = embed["tta_on"][size]["median_ms"], embed["tta_off"][size]["median_ms"]
        print(f"{size:>7} {on:9.2f} {off:9.2f}")

    match = report["match"]
    print(f"\nMATCH (ms per face, CPU; threshold {MATCH_THRESHOLD}, ~5 templates per person)")
    print(
        f"{'templates':>10} {'people':>7} {'build ms':>9} {'b1 median':>10} {'b1 p95':>8} "
        f"{'b8 median':>10} {'b8 p95':>8}"
    )
    for key, row in match.items():
        if key == "target":
            continue
        one, eight = row["batch1"], row[f"batch{MATCH_BATCH}_per_face"]
        print(
            f"{row['templates']:>10} {row['people']:>7} {row['build_ms']:9.0f} "
            f"{one['median_ms']:10.3f} {one['p95_ms']:8.3f} "
            f"{eight['median_ms']:10.3f} {eight['p95_ms']:8.3f}"
        )
    target = match["target"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
    print(f"{target['text']} (batch 1 median): {verdict}")


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


# -- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    load_before = list(os.getloadavg())
    if args.video is None and args.image is None:
        parser.error("give --video PATH and/or --image PATH")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ModelLoadError as exc:
        parser.error(str(exc))

    settings: Settings | None
    try:
        settings = load_settings()
    except ConfigError as exc:
        progress(f"warning: kiosk settings unusable ({exc}); using defaults, no weights search")
        settings = None
    rec = settings.recognition if settings else RecognitionSection()
    images = settings.images if settings else ImagesSection()

    sources: list[InputFrames] = []
    if args.video is not None:
        sources.append(read_video(args.video, args.frames))
    if args.image is not None:
        sources.append(read_image(args.image, images, args.frames))

    detect = {s.kind: bench_detect(s, args.widths, args, device) for s in sources}

    model = load_model(args, settings, device)
    if model.random_init:
        progress(model.note)
    faces = aligned_faces([(s, detect[s.kind]) for s in sources], rec, max(args.batch_sizes))
    faces_from = f"{len(faces)} aligned from the input"
    if not faces:
        rng = np.random.default_rng(SEED)
        crops = rng.integers(0, 256, (max(args.batch_sizes), FACE_SIZE, FACE_SIZE, 3), np.uint8)
        faces = list(crops)
        faces_from = "none found; random 160x160 crops"
    embed: dict[str, Any] = dict(
        bench_embed(model.loaded.model, device, faces, args.batch_sizes, args)
    )
    embed["reps"] = args.embed_reps
    embed["faces"] = faces_from

    match = bench_match(args.gallery_sizes, args)

    report = {
        "meta": meta_info(args, device, sources, model, load_before),
        "detect": {
            kind: {label: run.to_json() for label, run in runs.items()}
            for kind, runs in detect.items()
        },
        "embed": embed,
        "match": match,
    }
    if args.json:
        print(json.dumps(rounded(report), indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
