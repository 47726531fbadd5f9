"""How fast the kiosk window comes up: launch to window shown, first frame, models ready.

Each run is a fresh process (cold Python imports, warm disk cache), like a kiosk
starting after boot, on Qt's offscreen platform (or the display you have)::

    .venv/bin/python benchmarks/startup.py --video PATH [--runs 5] [--weights FILE]

Without ``--weights`` FaceNet gets seeded random weights of the real
architecture (same cost; the names are meaningless). Prints one line per run and
the medians, in seconds from the process's start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MILESTONES = ("window_shown", "first_frame", "models_ready", "first_result", "telemetry_ok")

CHILD = r"""
import json, sys, time
t0 = float(sys.argv[1])
marks = {}
def mark(name):
    marks.setdefault(name, time.time() - t0)
from pathlib import Path
from kiosk.settings import CameraSection, RecognitionSection, settings_for_data_dir
from kiosk.ui.app import application
from kiosk.ui.main_window import MainWindow
settings = settings_for_data_dir(
    Path(sys.argv[2]),
    recognition=RecognitionSection(weights_path=Path(sys.argv[3])),
    camera=CameraSection(loop_files=True),
)
app = application()
window = MainWindow(settings, source=sys.argv[4])
window.show()
app.processEvents()
mark("window_shown")
window.start()
window.bridge.ready.connect(lambda _r: mark("models_ready"))
window.bridge.result.connect(lambda _r: mark("first_result"))
deadline = time.time() + 180
while time.time() < deadline and len(marks) < 5:
    app.processEvents()
    if window.video.painted_frames:
        mark("first_frame")
    if window.status_labels["telemetry"].text() == "Telemetry: ok":
        mark("telemetry_ok")
    time.sleep(0.005)
window.shutdown(timeout=5)
print("MARKS " + json.dumps(marks))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True, help="video file to play")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--weights", type=Path, help="FaceNet weights (default: random)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kiosk-startup-"))
    weights = args.weights
    if weights is None:
        sys.path.insert(0, str(ROOT))
        from tests.weights import write_random_facenet

        weights = write_random_facenet(work / "facenet.pt")
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    results: list[dict[str, float]] = []
    for run in range(args.runs):
        data = work / f"data-{run}"  # a fresh data dir: MLflow creates its database each time
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                repr(time.time()),
                str(data),
                str(weights),
                str(args.video),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=600,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("MARKS ")), None)
        if out.returncode != 0 or line is None:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        marks = json.loads(line[6:])
        results.append(marks)
        print(
            f"run {run + 1}: "
            + "  ".join(f"{k} {marks.get(k, float('nan')):.2f}" for k in MILESTONES)
        )
    print(
        "median: "
        + "  ".join(
            f"{k} {statistics.median(r[k] for r in results if k in r):.2f}"
            for k in MILESTONES
            if any(k in r for r in results)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
