"""The ``dvc.yaml`` and ``params.yaml`` that ``kiosk gallery init`` writes into a registry.

The same two files sit at the FaceKiosk project root (a test keeps them equal),
so the pipeline can be read and reviewed with the code that runs it.
"""

from __future__ import annotations

PARAMS_YAML = """\
# Parameters of the gallery pipeline (dvc.yaml); `dvc exp run -S evaluate.target_far=0.01`
# tries another value. The recognition values must match the kiosks' settings, or the
# kiosks cannot use the embeddings this pipeline writes (they compute their own instead).
recognition:
  min_confidence: 0.9
  margin_ratio: 0.2
  use_alignment: true
  use_prewhitening: false
  use_tta_flip: true
  detection_width: 1280
  min_face_px: 40
  batch_size: 8
  # Empty: weights/20180402-114759-vggface2.pt of this registry, then the kiosk's usual search.
  weights_path: ""
evaluate:
  # The recommended threshold is the smallest L2 distance at which at most this fraction
  # of impostor pairs would be accepted.
  target_far: 0.001
mlflow:
  experiment: facekiosk-gallery
  # Empty: $MLFLOW_TRACKING_URI, else sqlite:///<registry>/.kiosk/mlflow.db
  tracking_uri: ""
"""

DVC_YAML = """\
# The gallery pipeline: `dvc repro` re-runs only the stages whose inputs changed.
stages:
  prepare:
    cmd: python -m kiosk.pipeline prepare
    deps:
      - images
    params:
      - recognition.min_confidence
      - recognition.margin_ratio
      - recognition.use_alignment
      - recognition.detection_width
      - recognition.min_face_px
    outs:
      - aligned
      - reports/prepare.json:
          cache: false
  embed:
    cmd: python -m kiosk.pipeline embed
    deps:
      - aligned
      - weights
    params:
      - recognition
    outs:
      - embeddings
  evaluate:
    cmd: python -m kiosk.pipeline evaluate
    deps:
      - embeddings
    params:
      - evaluate
    metrics:
      - metrics.json:
          cache: false
    plots:
      - plots/roc.csv:
          cache: false
          x: far
          y: tar
          title: ROC (leave-one-out over the gallery)
          x_label: false accept rate
          y_label: true accept rate
    outs:
      - plots/distances.csv:
          cache: false
plots:
  - Genuine and impostor distances:
      x: distance
      y:
        plots/distances.csv: [genuine, impostor]
      x_label: L2 distance
      y_label: pairs
"""
