"""The headless recognition core: detect (MTCNN), align, embed (FaceNet), match.

Never imports Qt. Names are imported lazily (PEP 562), so that
``from kiosk.recognition.gallery import GalleryStore`` does not pay for torch;
the first access to a torch-backed name (``Recognizer``, ``FaceDetector``...)
imports it, which takes seconds: the UI does that from a worker thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.recognition.align import align_face, alignment_matrix
    from kiosk.recognition.detector import DetectorConfig, FaceDetector
    from kiosk.recognition.embedder import EmbedderConfig, FaceEmbedder
    from kiosk.recognition.gallery import GalleryStore, Person, validate_name
    from kiosk.recognition.index import EmbeddingCache, TemplateIndex
    from kiosk.recognition.recognizer import EnrollResult, Recognizer
    from kiosk.recognition.types import (
        Detection,
        FaceResult,
        Match,
        PipelineStats,
        VerificationEvent,
    )
    from kiosk.recognition.weights import LoadedFaceNet, load_facenet, load_weights_file

_WHERE = {
    "align_face": "align",
    "alignment_matrix": "align",
    "DetectorConfig": "detector",
    "FaceDetector": "detector",
    "EmbedderConfig": "embedder",
    "FaceEmbedder": "embedder",
    "GalleryStore": "gallery",
    "Person": "gallery",
    "validate_name": "gallery",
    "EmbeddingCache": "index",
    "TemplateIndex": "index",
    "EnrollResult": "recognizer",
    "Recognizer": "recognizer",
    "Detection": "types",
    "FaceResult": "types",
    "Match": "types",
    "PipelineStats": "types",
    "VerificationEvent": "types",
    "LoadedFaceNet": "weights",
    "load_facenet": "weights",
    "load_weights_file": "weights",
}

__all__ = [
    "Detection",
    "DetectorConfig",
    "EmbedderConfig",
    "EmbeddingCache",
    "EnrollResult",
    "FaceDetector",
    "FaceEmbedder",
    "FaceResult",
    "GalleryStore",
    "LoadedFaceNet",
    "Match",
    "Person",
    "PipelineStats",
    "Recognizer",
    "TemplateIndex",
    "VerificationEvent",
    "align_face",
    "alignment_matrix",
    "load_facenet",
    "load_weights_file",
    "validate_name",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"kiosk.recognition.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'kiosk.recognition' has no attribute {name!r}")
