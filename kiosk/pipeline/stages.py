"""The three pipeline stages, on the kiosk's own detection, alignment and embedding code.

* ``prepare``: every enrolment image in ``images/`` -> ``aligned/<person>/<sha16>.png``
  (160x160, exactly what the kiosk embeds), and ``reports/prepare.json`` listing
  each rejected image and why;
* ``embed``: ``embeddings/embeddings.npz`` (one vector per image, keyed by the
  image's sha256 like the kiosk's cache, plus the embedding-config key) and
  ``embeddings/templates.npz`` (one mean template per person);
* ``evaluate``: leave-one-out genuine and impostor distances, ROC AUC, EER, TAR at
  FAR 1e-2 and 1e-3 and the threshold recommended for ``evaluate.target_far``, in
  ``metrics.json``, ``plots/roc.csv`` and ``plots/distances.csv``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kiosk.errors import KioskError
from kiosk.pipeline import tracking
from kiosk.pipeline.params import PipelineParams
from kiosk.recognition.gallery import GalleryStore, decode_stored

log = logging.getLogger(__name__)

ALIGNED = "aligned"
EMBEDDINGS_FILE = "embeddings/embeddings.npz"
TEMPLATES_FILE = "embeddings/templates.npz"
PREPARE_REPORT = "reports/prepare.json"
METRICS_FILE = "metrics.json"
ROC_FILE = "plots/roc.csv"
DISTANCES_FILE = "plots/distances.csv"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# -- prepare -------------------------------------------------------------------------------


def prepare(params: PipelineParams) -> dict[str, Any]:
    from kiosk.recognition.align import align_face
    from kiosk.recognition.detector import DetectorConfig, FaceDetector
    from kiosk.recognition.device import resolve_device

    rec = params.settings.recognition
    detector = FaceDetector(DetectorConfig.from_settings(rec), resolve_device(rec.device))
    store = GalleryStore(params.root)
    out = params.root / ALIGNED
    shutil.rmtree(out, ignore_errors=True)
    people = store.list_people()
    accepted, rejected = 0, []
    for person in people:
        for image in person.images:
            where = f"{person.id}/{image.file}"
            try:
                rgb = decode_stored(store.image_path(person, image).read_bytes())
            except (OSError, KioskError) as exc:
                rejected.append({"image": where, "reason": f"unreadable: {exc}"})
                continue
            faces = detector.detect(rgb)
            if len(faces) != 1:
                why = "no usable face" if not faces else f"{len(faces)} faces"
                rejected.append({"image": where, "reason": why})
                continue
            crop = align_face(
                rgb, faces[0], margin_ratio=rec.margin_ratio, use_alignment=rec.use_alignment
            )
            target = out / person.id / f"{image.sha256[:16]}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            accepted += 1
    out.mkdir(exist_ok=True)
    total = accepted + len(rejected)
    report = {
        "people": len(people),
        "images": total,
        "accepted": accepted,
        "rejected": rejected,
    }
    _write_text(params.root / PREPARE_REPORT, json.dumps(report, indent=2) + "\n")
    with tracking.stage_run(params, "prepare"):
        import mlflow

        tracking.log_dataset(total, len(people), str(params.root / "images"))
        mlflow.log_metrics({"images_accepted": accepted, "images_rejected": len(rejected)})
    return report


# -- embed ---------------------------------------------------------------------------------


def embed(params: PipelineParams) -> dict[str, Any]:
    from kiosk.recognition.device import resolve_device
    from kiosk.recognition.embedder import EmbedderConfig, FaceEmbedder
    from kiosk.recognition.index import gallery_embedding_key
    from kiosk.recognition.weights import load_facenet

    rec = params.settings.recognition
    device = resolve_device(rec.device)
    facenet = load_facenet(
        weights_path=rec.weights_path,
        gallery_dir=params.root,
        allow_download=False,
        device=device,
    )
    embedder = FaceEmbedder(
        facenet.model,
        device,
        EmbedderConfig(rec.use_prewhitening, rec.use_tta_flip, rec.batch_size),
    )
    store = GalleryStore(params.root)
    hashes, ids, crops = [], [], []
    for person in store.list_people():
        for image in person.images:
            path = params.root / ALIGNED / person.id / f"{image.sha256[:16]}.png"
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                continue  # rejected by prepare
            crops.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            hashes.append(image.sha256)
            ids.append(person.id)
    vectors = embedder.embed(crops)
    key = gallery_embedding_key(facenet.fingerprint, rec)
    out = params.root / EMBEDDINGS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(
        buf,
        hashes=np.array(hashes, dtype="U64"),
        person_ids=np.array(ids, dtype="U64"),
        vectors=vectors.astype(np.float32),
        config_key=np.array(key),
        model_fingerprint=np.array(facenet.fingerprint),
    )
    out.write_bytes(buf.getvalue())
    people = sorted(set(ids))
    templates = (
        np.stack(
            [
                _unit(vectors[[i for i, p in enumerate(ids) if p == pid]].mean(axis=0))
                for pid in people
            ]
        )
        if people
        else np.zeros((0, vectors.shape[1] if len(vectors) else 512), np.float32)
    )
    buf = io.BytesIO()
    np.savez(buf, person_ids=np.array(people, dtype="U64"), templates=templates)
    (params.root / TEMPLATES_FILE).write_bytes(buf.getvalue())
    with tracking.stage_run(params, "embed"):
        import mlflow

        tracking.log_dataset(len(hashes), len(people), str(params.root / ALIGNED))
        mlflow.set_tags({"model_fingerprint": facenet.fingerprint, "embedding_config_key": key})
        mlflow.log_metrics({"embeddings": len(hashes), "people": len(people)})
        version = tracking.register_embedder(
            facenet.model, facenet.fingerprint, facenet.source, facenet.path.name
        )
    return {"embeddings": len(hashes), "people": len(people), "model_version": version}


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).astype(np.float32)


# -- evaluate ------------------------------------------------------------------------------


def leave_one_out(vectors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image as a probe against everyone else's templates, itself left out.

    Genuine: its distance to the nearest *other* template of its own person (people
    with one image have none). Impostor: its distance to each other person (nearest
    template). Returns (genuine, impostor) L2 distances.
    """
    if len(vectors) == 0:
        return np.zeros(0), np.zeros(0)
    sims = vectors @ vectors.T
    dist = np.sqrt(np.clip(2.0 - 2.0 * sims, 0.0, None))
    np.fill_diagonal(dist, np.inf)
    people = sorted(set(ids.tolist()))
    genuine, impostor = [], []
    for p in people:
        cols = ids == p
        nearest = dist[:, cols].min(axis=1)
        own = ids == p
        genuine += [d for d in nearest[own] if math.isfinite(d)]
        impostor += nearest[~own].tolist()
    return np.array(genuine), np.array(impostor)


def _roc(genuine: np.ndarray, impostor: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, FAR, TAR) at every distinct distance, plus both ends."""
    thresholds = np.unique(np.concatenate([genuine, impostor, [0.0, 2.0]]))
    g, i = np.sort(genuine), np.sort(impostor)
    tar = np.searchsorted(g, thresholds, side="right") / max(len(g), 1)
    far = np.searchsorted(i, thresholds, side="right") / max(len(i), 1)
    return list(zip(thresholds.tolist(), far.tolist(), tar.tolist(), strict=True))


def _tar_at(roc: list[tuple[float, float, float]], far: float) -> float:
    return max((t for _, f, t in roc if f <= far), default=0.0)


def recommended_threshold(impostor: np.ndarray, target_far: float) -> float | None:
    """The largest distance that accepts at most ``target_far`` of the impostor pairs."""
    if len(impostor) == 0:
        return None
    ordered = np.sort(impostor)
    allowed = math.floor(target_far * len(ordered))  # impostors we may accept
    limit = float(ordered[allowed]) if allowed < len(ordered) else 2.0
    return round(max(limit - 1e-4, 1e-4), 4)


def evaluate(params: PipelineParams) -> dict[str, Any]:
    with np.load(params.root / EMBEDDINGS_FILE, allow_pickle=False) as data:
        vectors, ids = data["vectors"].astype(np.float32), data["person_ids"]
        key = str(data["config_key"])
    genuine, impostor = leave_one_out(vectors, ids)
    roc = _roc(genuine, impostor)
    fars = np.array([f for _, f, _ in roc])
    tars = np.array([t for _, _, t in roc])
    have_both = len(genuine) > 0 and len(impostor) > 0
    auc = float(np.trapezoid(tars, fars)) if have_both else None
    eer = None
    if have_both:
        gap = np.abs(fars - (1.0 - tars))
        k = int(np.argmin(gap))
        eer = float((fars[k] + 1.0 - tars[k]) / 2.0)
    threshold = recommended_threshold(impostor, params.target_far)
    metrics: dict[str, Any] = {
        "images": len(vectors),
        "people": len(set(ids.tolist())),
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "roc_auc": auc,
        "eer": eer,
        "tar_at_far_1e-2": _tar_at(roc, 1e-2) if have_both else None,
        "tar_at_far_1e-3": _tar_at(roc, 1e-3) if have_both else None,
        "target_far": params.target_far,
        "recommended_threshold": threshold,
        "embedding_config_key": key,
    }
    _write_text(params.root / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    _write_text(
        params.root / ROC_FILE,
        "threshold,far,tar\n" + "".join(f"{t:.4f},{f:.6f},{r:.6f}\n" for t, f, r in roc),
    )
    edges = np.linspace(0.0, 2.0, 41)
    g_hist, _ = np.histogram(genuine, edges)
    i_hist, _ = np.histogram(impostor, edges)
    _write_text(
        params.root / DISTANCES_FILE,
        "distance,genuine,impostor\n"
        + "".join(
            f"{(lo + hi) / 2:.3f},{g},{i}\n"
            for lo, hi, g, i in zip(edges[:-1], edges[1:], g_hist, i_hist, strict=True)
        ),
    )
    with tracking.stage_run(params, "evaluate"):
        import mlflow

        tracking.log_dataset(len(vectors), metrics["people"], str(params.root / EMBEDDINGS_FILE))
        mlflow.log_metrics(
            {
                k.replace("-", "_"): float(v)
                for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
        for file in (ROC_FILE, DISTANCES_FILE, METRICS_FILE):
            mlflow.log_artifact(str(params.root / file))
    return metrics
