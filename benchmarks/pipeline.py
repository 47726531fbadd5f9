"""The kiosk's live pipeline against the usual facenet-pytorch loop (and face_recognition).

All systems get the **same decoded frames** (the video is decoded once, resized to
``--width``, and handed to each system in its own subprocess so that CPU time and
peak memory are its own) and process every frame as fast as they can:

* ``kiosk``: :class:`kiosk.recognition.worker.FrameProcessor`, the live worker's
  per-frame logic (whole-frame search every few frames, tracking, embedding only
  when useful, voting);
* ``naive``: the tutorial loop: MTCNN ``keep_all`` on the full frame, then
  InceptionResnetV1 on every face of every frame;
* ``face_recognition``: dlib HOG detection + 128-d encodings on every face of every
  frame, when the optional package is installed
  (``pip install dlib-bin face-recognition-models`` then
  ``pip install --no-deps face_recognition``).

Reported per system: frames/s, faces per frame (median), faces of 40 px and more
(total over all frames), tracks, time from a track's first frame to its
verification (p50/p95; for the per-frame loops, the end of the track's first
frame), CPU seconds and peak RSS (the whole process, including the decoded frames).
For the naive and face_recognition loops, tracks come from the kiosk's own IoU
tracker run over their detections. ``kiosk.recall_40px_vs_naive`` is the share of
the naive loop's faces of 40 px and more that the kiosk reports on the same frame.

    python benchmarks/pipeline.py --video /path/to/entrance.mp4 --width 1280 --json

Without the real FaceNet weights the kiosk and naive loops use the same random
InceptionResnetV1 (identical cost; meaningless identities); the output says so.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

SYSTEMS = ("kiosk", "naive", "face_recognition")
MIN_FACE = 40


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def decode(path: Path, width: int, count: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"error: cannot open video {path}")
    frames = []
    try:
        while len(frames) < count:
            ok, bgr = capture.read()
            if not ok:
                break
            if width and bgr.shape[1] != width:
                height = round(bgr.shape[0] * width / bgr.shape[1])
                bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise SystemExit(f"error: no frames could be read from {path}")
    return np.stack(frames)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# -- one system per subprocess ---------------------------------------------------------------


class Run:
    """Per-frame boxes, time-to-verification per track, and the timed loop's clocks."""

    def __init__(self, note: str = "") -> None:
        self.boxes: list[list[list[float]]] = []
        self.ttv_ms: list[float] = []
        self.tracks = 0
        self.note = note
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def loop(self, frames: np.ndarray, one: Callable[[int, np.ndarray], list[list[float]]]) -> None:
        """Time ``one`` over every frame (CPU time counts every thread of the process)."""
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i, image in enumerate(frames):
            self.boxes.append(one(i, image))
        self.wall_s = time.perf_counter() - wall0
        self.cpu_s = time.process_time() - cpu0


def run_kiosk(frames: np.ndarray, weights: Path | None, threads: int) -> Run:
    from kiosk.camera.frames import Frame
    from kiosk.recognition.detector import DetectorConfig, FaceDetector
    from kiosk.recognition.recognizer import Recognizer
    from kiosk.recognition.worker import FrameProcessor
    from kiosk.settings import PipelineSection, settings_for_data_dir

    with tempfile.TemporaryDirectory(prefix="facekiosk-bench-") as tmp:
        settings = settings_for_data_dir(Path(tmp), pipeline=PipelineSection(torch_threads=threads))
        facenet, note, device = load_facenet(weights, Path(tmp))
        detector = FaceDetector(DetectorConfig.from_settings(settings.recognition), device)
        recognizer = Recognizer(settings, detector, facenet)
        recognizer.reload_gallery()
        processor = FrameProcessor(recognizer, settings)
        processor.warm_up()  # as the live worker does before it reports ready
        # A kiosk has been looking at its (empty) entrance for a while when people arrive:
        # its kernels are tuned for the frame size. One frame of the video does that here.
        processor.process(Frame(0, time.monotonic(), time.time(), frames[0]))
        processor.reset()
        tracks_before = processor.tracker.total_tracks
        run = Run(note)

        def one(i: int, image: np.ndarray) -> list[list[float]]:
            result = processor.process(Frame(i, time.monotonic(), time.time(), image))
            run.ttv_ms.extend(e.ttv_ms for e in result.events if e.revision == 0)
            return [list(f.box) for f in result.faces]

        run.loop(frames, one)
        run.tracks = processor.tracker.total_tracks - tracks_before
        return run


def load_facenet(weights: Path | None, tmp: Path) -> tuple[Any, str, Any]:
    import torch

    from kiosk.recognition.device import resolve_device
    from kiosk.recognition.weights import load_weights_file

    device = resolve_device("auto")
    if weights is not None:
        return load_weights_file(weights, device, source="--weights"), "", device
    sys.path.insert(0, str(Path(__file__).parent))
    from recognition import random_facenet_file

    torch.manual_seed(0)
    loaded = load_weights_file(random_facenet_file(tmp), device, source="random init")
    note = "RANDOM-INIT FaceNet weights (same cost as vggface2; identities meaningless)"
    return loaded, note, device


class TrackTimer:
    """Tracks for the per-frame loops: a track is verified at the end of its first frame."""

    def __init__(self) -> None:
        from kiosk.recognition.tracking import Tracker

        self.tracker = Tracker()
        self.ttv_ms: list[float] = []

    def frame(self, boxes: list[list[float]], frame_id: int, started: float) -> None:
        from kiosk.recognition.types import Detection

        dets = [Detection(tuple(b), 1.0, np.zeros((5, 2), np.float32)) for b in boxes]  # type: ignore[arg-type]
        before = self.tracker.total_tracks
        self.tracker.update(dets, frame_id, started)
        done = time.monotonic()
        self.ttv_ms.extend([(done - started) * 1000.0] * (self.tracker.total_tracks - before))


def run_naive(frames: np.ndarray, weights: Path | None, threads: int) -> Run:
    import torch
    from facenet_pytorch import MTCNN

    with tempfile.TemporaryDirectory(prefix="facekiosk-bench-") as tmp:
        facenet, note, device = load_facenet(weights, Path(tmp))
        mtcnn = MTCNN(keep_all=True, device=device)  # the tutorial's defaults
        resnet = facenet.model.eval()
        gallery = torch.nn.functional.normalize(torch.randn(50, 512), dim=1).to(device)
        timer = TrackTimer()
        run = Run(note)

        def one(i: int, image: np.ndarray) -> list[list[float]]:
            started = time.monotonic()
            with torch.inference_mode():
                boxes, _ = mtcnn.detect(image)
                found = [] if boxes is None else boxes.tolist()
                if found:
                    faces = mtcnn.extract(image, boxes, None).to(device)
                    emb = resnet(faces)
                    torch.cdist(emb, gallery).min(dim=1)  # identify every face
            if i >= 0:
                timer.frame(found, i, started)
            return found

        one(-1, frames[0])  # warm-up
        run.loop(frames, one)
        run.ttv_ms, run.tracks = timer.ttv_ms, timer.tracker.total_tracks
        return run


def import_face_recognition() -> Any:
    try:
        import pkg_resources  # noqa: F401  (face_recognition_models still imports it)
    except ImportError:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: str(  # type: ignore[attr-defined]
            importlib.resources.files(package) / name
        )
        sys.modules["pkg_resources"] = shim
    import face_recognition

    return face_recognition


def run_face_recognition(frames: np.ndarray, weights: Path | None, threads: int) -> Run:
    fr = import_face_recognition()
    gallery = np.random.default_rng(0).normal(size=(50, 128))
    timer = TrackTimer()
    run = Run("dlib HOG detector (upsample 1) on the full frame, 128-d encodings per face")

    def one(i: int, image: np.ndarray) -> list[list[float]]:
        started = time.monotonic()
        locations = fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
        encodings = fr.face_encodings(image, locations)
        if encodings:
            np.linalg.norm(gallery[None] - np.asarray(encodings)[:, None], axis=2).min(axis=1)
        found = [[float(l_), float(t), float(r), float(b)] for t, r, b, l_ in locations]
        if i >= 0:
            timer.frame(found, i, started)
        return found

    one(-1, frames[0])
    run.loop(frames, one)
    run.ttv_ms, run.tracks = timer.ttv_ms, timer.tracker.total_tracks
    return run


RUNNERS: dict[str, Callable[[np.ndarray, Path | None, int], Run]] = {
    "kiosk": run_kiosk,
    "naive": run_naive,
    "face_recognition": run_face_recognition,
}


def worker_main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    frames = np.load(args.frames_file)
    run = RUNNERS[args.worker](frames, args.weights, args.threads)
    Path(args.out).write_text(
        json.dumps(
            {
                "boxes": run.boxes,
                "ttv_ms": run.ttv_ms,
                "tracks": run.tracks,
                "note": run.note,
                "wall_s": run.wall_s,
                "cpu_s": run.cpu_s,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


# -- the parent: decode once, run each system, compare ---------------------------------------


def big_faces(boxes: list[list[float]]) -> list[list[float]]:
    return [b for b in boxes if min(b[2] - b[0], b[3] - b[1]) >= MIN_FACE]


def recall(found: list[list[list[float]]], reference: list[list[list[float]]]) -> float | None:
    """Share of the reference's 40 px+ faces that ``found`` has on the same frame."""
    from kiosk.recognition.tracking import iou

    total = hit = 0
    for mine, theirs in zip(found, reference, strict=True):
        for box in big_faces(theirs):
            total += 1
            hit += any(iou(box, other) >= 0.3 for other in mine)
    return hit / total if total else None


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    counts = [len(b) for b in raw["boxes"]]
    n = len(counts)
    return {
        "fps": n / raw["wall_s"] if raw["wall_s"] > 0 else None,
        "frames": n,
        "faces_per_frame_median": float(np.median(counts)) if counts else 0.0,
        "faces_40px_total": sum(len(big_faces(b)) for b in raw["boxes"]),
        "tracks": raw["tracks"],
        "ttv_p50_ms": percentile(raw["ttv_ms"], 50),
        "ttv_p95_ms": percentile(raw["ttv_ms"], 95),
        "cpu_s": raw["cpu_s"],
        "wall_s": raw["wall_s"],
        "peak_rss_mb": raw["peak_rss_mb"],
        "note": raw["note"],
    }


def available(system: str) -> str | None:
    """None when the system can run here, else why not."""
    if system != "face_recognition":
        return None
    try:
        import_face_recognition()
    except Exception as exc:  # ImportError, or dlib failing to load its models
        return (
            f"face_recognition is not installed ({exc.__class__.__name__}: {exc}); "
            "pip install dlib-bin face-recognition-models && "
            "pip install --no-deps face_recognition"
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="video file (e.g. an entrance recording)")
    parser.add_argument("--width", type=int, default=1280, help="resize frames to this width")
    parser.add_argument("--frames", type=int, default=10_000, help="most frames to use")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated list")
    parser.add_argument("--weights", type=Path, help="FaceNet weights (default: random init)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--frames-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.worker:
        worker_main(args)
        return
    if args.video is None:
        raise SystemExit("error: --video PATH is required")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"error: unknown systems {sorted(unknown)}; known: {SYSTEMS}")
    load = os.getloadavg()[0]
    if load > 0.5:
        progress(f"warning: load average {load:.2f}: other work is skewing these timings")
    frames = decode(args.video, args.width, args.frames)
    report: dict[str, Any] = {
        "video": str(args.video),
        "frame_size": [int(frames.shape[2]), int(frames.shape[1])],
        "frames": int(frames.shape[0]),
        "frames_in_memory_mb": round(frames.nbytes / 2**20, 1),
        "threads": args.threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": round(load, 2),
        "systems": {},
    }
    raw: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="facekiosk-bench-") as tmp:
        frames_file = Path(tmp) / "frames.npy"
        np.save(frames_file, frames)
        del frames
        for system in systems:
            why = available(system)
            if why:
                report["systems"][system] = {"available": False, "reason": why}
                progress(f"{system}: skipped: {why}")
                continue
            progress(f"{system}: running ...")
            out = Path(tmp) / f"{system}.json"
            command = [sys.executable, __file__, "--worker", system, "--threads", str(args.threads)]
            command += ["--frames-file", str(frames_file), "--out", str(out)]
            if args.weights:
                command += ["--weights", str(args.weights)]
            subprocess.run(command, check=True)
            raw[system] = json.loads(out.read_text())
            report["systems"][system] = summarize(raw[system])
    kiosk = report["systems"].get("kiosk")
    if kiosk and kiosk.get("fps"):
        for peer in ("naive", "face_recognition"):
            other = report["systems"].get(peer, {})
            if other.get("fps"):
                kiosk[f"fps_ratio_vs_{peer}"] = kiosk["fps"] / other["fps"]
        if "naive" in raw:
            kiosk["recall_40px_vs_naive"] = recall(raw["kiosk"]["boxes"], raw["naive"]["boxes"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


def print_table(report: dict[str, Any]) -> None:
    w, h = report["frame_size"]
    print(f"{report['video']}: {report['frames']} frames at {w}x{h}, {report['machine']}")
    rows = [
        ("frames/s", "fps", "{:.1f}"),
        ("faces/frame (median)", "faces_per_frame_median", "{:.1f}"),
        ("faces >= 40 px (total)", "faces_40px_total", "{}"),
        ("tracks", "tracks", "{}"),
        ("time to verification p50 ms", "ttv_p50_ms", "{:.0f}"),
        ("time to verification p95 ms", "ttv_p95_ms", "{:.0f}"),
        ("CPU s", "cpu_s", "{:.1f}"),
        ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
    ]
    systems = report["systems"]
    print(f"{'':32}" + "".join(f"{name:>18}" for name in systems))
    for label, key, fmt in rows:
        cells = []
        for entry in systems.values():
            value = entry.get(key)
            cells.append(f"{fmt.format(value) if value is not None else '-':>18}")
        print(f"{label:32}" + "".join(cells))
    kiosk = systems.get("kiosk", {})
    for key in ("fps_ratio_vs_naive", "fps_ratio_vs_face_recognition", "recall_40px_vs_naive"):
        if kiosk.get(key) is not None:
            print(f"kiosk {key}: {kiosk[key]:.2f}")
    for name, entry in systems.items():
        if entry.get("note") or entry.get("reason"):
            print(f"{name}: {entry.get('note') or entry.get('reason')}")


if __name__ == "__main__":
    main()
