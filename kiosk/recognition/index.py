"""Embedding cache and the template index that matching runs on.

**Templates.** Every enrolment image of a person is one template (its FaceNet
embedding). A face's distance to a person is the distance to that person's
*nearest* template. Several views (glasses on/off, head turned a little, new
haircut) then each cover what they look like, where one averaged template would
blur them into a point that matches none of them well. The cost is more rows,
which the matcher absorbs: all templates sit in one (N, 512) matrix, and one
matrix multiply scores a face against every template at once.

**Distance.** Embeddings are unit-norm, so the L2 distance is
``sqrt(2 - 2 * cosine)``: 0 for identical, about 1.41 for unrelated (orthogonal),
2 for opposite. Galleries of more than 20,000 templates are scanned in float16
(half the memory traffic, about 1e-4 error in the cosine); the winning person's
distance is then recomputed exactly in float32, so reported distances are exact.

**Cache.** Embeddings are cached per image hash, in one file per *embedding
configuration* (model fingerprint + every preprocessing setting that changes the
vector), so restarts load instead of recompute, and changing a setting or the
weights can never mix incompatible vectors.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from kiosk.fsutil import atomic_write_bytes, file_lock
from kiosk.recognition.embedder import EMBEDDING_DIM
from kiosk.recognition.types import Match
from kiosk.settings import RecognitionSection

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def embedding_config_key(model_fingerprint: str, **preprocessing: object) -> str:
    """A short stable key for (weights, preprocessing) that names an embedding cache file."""
    blob = json.dumps(
        {"v": CACHE_VERSION, "model": model_fingerprint, **preprocessing}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def gallery_embedding_key(model_fingerprint: str, rec: RecognitionSection) -> str:
    """The key of a gallery's embeddings: the model and every setting that shapes them.

    The kiosk's cache and the pipeline's ``embed`` stage both use it, so a kiosk uses
    the pipeline's embeddings exactly when it would have computed the same ones.
    """
    return embedding_config_key(
        model_fingerprint,
        margin_ratio=rec.margin_ratio,
        use_alignment=rec.use_alignment,
        use_prewhitening=rec.use_prewhitening,
        use_tta_flip=rec.use_tta_flip,
        detection_width=rec.detection_width,
    )


class EmbeddingCache:
    """image sha256 -> embedding, persisted in ``<dir>/<config key>.npz``."""

    def __init__(self, directory: Path, key: str) -> None:
        self.path = directory / f"{key}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        self._vectors.update(self._read())

    def _read(self) -> dict[str, np.ndarray]:
        if not self.path.exists():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                hashes, vectors = data["hashes"], data["vectors"]
                if vectors.shape != (len(hashes), EMBEDDING_DIM):
                    raise ValueError(f"shape {vectors.shape} does not fit {len(hashes)} hashes")
                return {str(h): v for h, v in zip(hashes, vectors.astype(np.float32), strict=True)}
        except (OSError, ValueError, KeyError) as exc:
            log.warning(
                "ignoring unreadable embedding cache %s (%s); it will be rebuilt", self.path, exc
            )
            return {}

    def __len__(self) -> int:
        return len(self._vectors)

    def seed_from(self, path: Path) -> int:
        """Add the vectors of a pipeline-built embeddings file (a registry's
        ``embeddings/embeddings.npz``) for images not cached yet, if it was built with this
        cache's configuration key; returns how many were added. Kiosks of a fleet thus
        never recompute a large gallery."""
        if not path.is_file():
            return 0
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["config_key"]) != self.path.stem:
                    log.info("%s was built with another model or settings; not used", path)
                    return 0
                hashes, vectors = data["hashes"], data["vectors"].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable embeddings file %s (%s)", path, exc)
            return 0
        if vectors.shape != (len(hashes), EMBEDDING_DIM):
            log.warning("ignoring embeddings file %s: shape %s", path, vectors.shape)
            return 0
        added = 0
        for h, v in zip(hashes.tolist(), vectors, strict=True):
            if h not in self._vectors:
                self._vectors[h] = v
                added += 1
        self._dirty = self._dirty or added > 0
        return added

    def get(self, image_hash: str) -> np.ndarray | None:
        return self._vectors.get(image_hash)

    def put(self, image_hash: str, vector: np.ndarray) -> None:
        self._vectors[image_hash] = np.asarray(vector, dtype=np.float32)
        self._dirty = True

    def discard(self, hashes: Iterable[str]) -> None:
        for h in hashes:
            if self._vectors.pop(h, None) is not None:
                self._dirty = True

    def save(self, keep: set[str] | None = None) -> None:
        """Write the cache atomically; with ``keep``, drop every hash not in it."""
        if keep is not None:
            self.discard([h for h in self._vectors if h not in keep])
        if not self._dirty:
            return
        with file_lock(self.path.with_suffix(".lock")):
            hashes = sorted(self._vectors)
            vectors = (
                np.stack([self._vectors[h] for h in hashes])
                if hashes
                else np.zeros((0, EMBEDDING_DIM), np.float32)
            )
            buf = io.BytesIO()
            np.savez(buf, hashes=np.array(hashes, dtype="U64"), vectors=vectors)
            atomic_write_bytes(self.path, buf.getvalue())
        self._dirty = False


def forget_images(cache_dir: Path, hashes: Iterable[str]) -> None:
    """Drop these images' embeddings from every cache file (every model and setting).

    Used when a person is removed: their vectors must not outlive their images.
    """
    hashes = set(hashes)
    for path in sorted(cache_dir.glob("*.npz")):
        cache = EmbeddingCache(cache_dir, path.stem)
        cache.discard(hashes)
        cache.save()


class TemplateIndex:
    """All templates of all people, matched with one matrix multiply.

    Immutable: a gallery change builds a new index and swaps the reference, so a
    recognition thread never sees a half-built one.
    """

    #: Above this many templates the scan runs in float16 (half the memory traffic).
    HALF_PRECISION_FROM = 20_000

    def __init__(self, entries: Sequence[tuple[str, str, np.ndarray]], threshold: float) -> None:
        """``entries`` are (person_id, display name, embedding) rows, in any order."""
        self.threshold = threshold
        self._names: dict[str, str] = {pid: name for pid, name, _ in entries}
        ids = np.array([pid for pid, _, _ in entries], dtype=str)
        vectors = (
            np.stack([e[2] for e in entries]).astype(np.float32, copy=False)
            if entries
            else np.zeros((0, EMBEDDING_DIM), np.float32)
        )
        order = np.argsort(ids, kind="stable")  # group each person's rows together
        ids, self._vectors = ids[order], np.ascontiguousarray(vectors[order])
        # First and one-past-last row of each person's block.
        self._starts = (
            np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            if len(ids)
            else (np.zeros(0, np.int64))
        )
        self._ends = np.append(self._starts[1:], len(ids)).astype(np.int64)
        self._person_ids: list[str] = [str(ids[s]) for s in self._starts]
        self._half = (
            torch.from_numpy(self._vectors).half() if self.size > self.HALF_PRECISION_FROM else None
        )

    @property
    def size(self) -> int:
        """Number of templates."""
        return len(self._vectors)

    @property
    def people(self) -> int:
        return len(self._person_ids)

    def with_threshold(self, threshold: float) -> TemplateIndex:
        clone = object.__new__(TemplateIndex)
        clone.__dict__.update(self.__dict__)
        clone.threshold = threshold
        return clone

    def match(self, embeddings: np.ndarray) -> list[Match]:
        """The best person for each (M, 512) unit-norm embedding."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        if self.size == 0:
            return [
                Match(None, None, float("inf"), self.threshold, False)
                for _ in range(len(embeddings))
            ]
        if self._half is None:
            sims = embeddings @ self._vectors.T
        else:
            sims = (torch.from_numpy(embeddings).half() @ self._half.T).float().numpy()
        per_person = np.maximum.reduceat(sims, self._starts, axis=1)
        best = per_person.argmax(axis=1)
        results = []
        for emb, p in zip(embeddings, best, strict=True):
            block = self._vectors[self._starts[p] : self._ends[p]]
            cosine = float(np.max(block @ emb))
            distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * cosine)))
            pid = self._person_ids[p]
            is_match = distance <= self.threshold
            results.append(
                Match(
                    person_id=pid if is_match else None,
                    name=self._names[pid] if is_match else None,
                    distance=distance,
                    threshold=self.threshold,
                    is_match=is_match,
                    nearest_id=pid,
                )
            )
        return results
