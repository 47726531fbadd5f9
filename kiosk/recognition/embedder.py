"""FaceNet embeddings: aligned 160x160 faces in, L2-normalised 512-d vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

EMBEDDING_DIM = 512


@dataclass(frozen=True)
class EmbedderConfig:
    use_prewhitening: bool = False
    use_tta_flip: bool = True
    batch_size: int = 8


class FaceEmbedder:
    """Runs an ``InceptionResnetV1`` (already loaded, see :mod:`kiosk.recognition.weights`).

    ``embed`` takes aligned RGB uint8 faces and returns an (N, 512) float32 array of
    unit-norm embeddings. Inference is batched (``batch_size`` faces per forward
    pass) under ``torch.inference_mode``. With ``use_tta_flip`` each face and its
    mirror image go through the network in the same batch and their embeddings
    are averaged and re-normalised.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, config: EmbedderConfig):
        self.model = model.eval().to(device)
        self.device = device
        self.config = config

    def _standardise(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.config.use_prewhitening:
            return (batch - 127.5) / 128.0  # facenet-pytorch's fixed_image_standardization
        # Per-image standardisation (facenet-pytorch's prewhiten, applied per face).
        flat = batch.flatten(1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        std = flat.std(dim=1).clamp(min=1.0 / flat.shape[1] ** 0.5).view(-1, 1, 1, 1)
        return (batch - mean) / std

    def embed(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        stacked = np.ascontiguousarray(
            np.stack(list(faces)) if not isinstance(faces, np.ndarray) else faces
        )
        if stacked.ndim != 4 or stacked.shape[3] != 3 or stacked.dtype != np.uint8:
            raise ValueError(f"expected (N, H, W, 3) uint8 faces, got {stacked.shape}")
        out = []
        step = self.config.batch_size
        with torch.inference_mode():
            for start in range(0, len(stacked), step):
                chunk = torch.from_numpy(stacked[start : start + step]).to(self.device)
                x = self._standardise(chunk.permute(0, 3, 1, 2).float())
                if self.config.use_tta_flip:
                    n = x.shape[0]
                    both = self.model(torch.cat([x, torch.flip(x, dims=[3])]))
                    emb = torch.nn.functional.normalize(both[:n] + both[n:], dim=1)
                else:
                    emb = self.model(x)
                out.append(emb.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)
