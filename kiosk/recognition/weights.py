"""Finding and loading the FaceNet (InceptionResnetV1, vggface2) weights, offline first.

Search order, first usable file wins:

1. ``recognition.weights_path`` (an explicit file);
2. ``<gallery>/weights/20180402-114759-vggface2.pt``: the DVC-tracked copy that
   ``dvc pull`` brings to every kiosk of a fleet;
3. facenet-pytorch's own cache, ``$TORCH_HOME/checkpoints/`` (default
   ``~/.cache/torch/checkpoints/``), where an earlier download left it;
4. only if ``recognition.allow_download`` is on: facenet-pytorch's download
   (``InceptionResnetV1(pretrained="vggface2")``, written atomically into 3).

Every candidate is checked: a torch state dict (loaded with ``weights_only``) whose
keys and shapes are exactly InceptionResnetV1's, with finite values. When nothing
works, :class:`ModelLoadError` lists every place tried and why, and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from kiosk.errors import ModelLoadError

log = logging.getLogger(__name__)

VGGFACE2_FILENAME = "20180402-114759-vggface2.pt"
MODEL_NAME = "InceptionResnetV1-vggface2"


@dataclass(frozen=True)
class WeightsCandidate:
    label: str
    path: Path


@dataclass
class LoadedFaceNet:
    model: torch.nn.Module
    path: Path
    source: str
    fingerprint: str  # first 16 hex digits of the file's sha256


def facenet_cache_path() -> Path:
    """Where facenet-pytorch's own download puts (and looks for) the vggface2 file."""
    from facenet_pytorch.models.inception_resnet_v1 import get_torch_home

    return Path(get_torch_home()) / "checkpoints" / VGGFACE2_FILENAME


def weight_candidates(weights_path: Path, gallery_dir: Path) -> list[WeightsCandidate]:
    found = []
    if str(weights_path) not in ("", "."):
        found.append(WeightsCandidate("recognition.weights_path", weights_path))
    found.append(
        WeightsCandidate(
            "gallery weights/ (DVC-tracked)", gallery_dir / "weights" / VGGFACE2_FILENAME
        )
    )
    found.append(WeightsCandidate("facenet-pytorch cache", facenet_cache_path()))
    return found


def fix_hint(gallery_dir: Path) -> str:
    return (
        f"Fix: put {VGGFACE2_FILENAME} (facenet-pytorch's vggface2 release) into "
        f"{gallery_dir / 'weights'} (or `dvc pull` it with the gallery), or set "
        "KIOSK_RECOGNITION_WEIGHTS_PATH to the file, or set KIOSK_RECOGNITION_ALLOW_DOWNLOAD=1 "
        "once on a machine with internet access."
    )


def load_facenet(
    *, weights_path: Path, gallery_dir: Path, allow_download: bool, device: torch.device
) -> LoadedFaceNet:
    """Load FaceNet from the first usable candidate, or raise :class:`ModelLoadError`."""
    tried: list[tuple[str, str]] = []
    for candidate in weight_candidates(weights_path, gallery_dir):
        where = f"{candidate.label}: {candidate.path}"
        if not candidate.path.is_file():
            tried.append((where, "not found"))
            continue
        try:
            loaded = load_weights_file(candidate.path, device, source=candidate.label)
        except ModelLoadError as exc:
            tried.append((where, str(exc)))
            log.warning("skipping FaceNet weights at %s: %s", candidate.path, exc)
            continue
        log.info("FaceNet weights from %s (%s)", candidate.path, candidate.label)
        return loaded
    if allow_download:
        try:
            _download_with_facenet_pytorch()
            return load_weights_file(facenet_cache_path(), device, source="downloaded")
        except ModelLoadError as exc:
            tried.append(("facenet-pytorch download", str(exc)))
        except Exception as exc:  # network errors come in many types (requests, urllib, OSError)
            tried.append(("facenet-pytorch download", f"{type(exc).__name__}: {exc}"))
    else:
        tried.append(("facenet-pytorch download", "off (recognition.allow_download = false)"))
    raise ModelLoadError(
        "FaceNet weights (vggface2) are not available, so faces can be detected but not "
        "recognised. " + fix_hint(gallery_dir) + " Places tried:",
        tried,
    )


def _download_with_facenet_pytorch() -> None:
    """facenet-pytorch's real download path: it fetches into its cache (temp file + move)."""
    from facenet_pytorch import InceptionResnetV1

    InceptionResnetV1(pretrained="vggface2")


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_weights_file(path: Path, device: torch.device, *, source: str) -> LoadedFaceNet:
    """Load and verify one weights file into a fresh InceptionResnetV1 in eval mode."""
    from facenet_pytorch import InceptionResnetV1

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(f"not a readable torch weights file ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError("the file holds no state dict of tensors")
    # The released vggface2 file carries the 8631-class training head; embeddings don't use it.
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    model = InceptionResnetV1(pretrained=None, classify=False)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ModelLoadError(f"not InceptionResnetV1 weights: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise ModelLoadError(
            "not InceptionResnetV1 weights: "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:2]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:2]})"
        )
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise ModelLoadError("the weights contain NaN or infinite values (corrupt file)")
    model.eval().to(device)
    return LoadedFaceNet(model, path, source, file_fingerprint(path))
