"""The headless recognition core: detect (MTCNN), align, embed (FaceNet), match.

Never imports Qt. Importing this package pulls in torch (seconds); the UI does it
from a worker thread.
"""

from kiosk.recognition.align import align_face, alignment_matrix
from kiosk.recognition.detector import DetectorConfig, FaceDetector
from kiosk.recognition.embedder import EmbedderConfig, FaceEmbedder
from kiosk.recognition.gallery import GalleryStore, Person, validate_name
from kiosk.recognition.index import EmbeddingCache, TemplateIndex
from kiosk.recognition.recognizer import EnrollResult, Recognizer
from kiosk.recognition.types import Detection, FaceResult, Match
from kiosk.recognition.weights import LoadedFaceNet, load_facenet, load_weights_file

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
    "Recognizer",
    "TemplateIndex",
    "align_face",
    "alignment_matrix",
    "load_facenet",
    "load_weights_file",
    "validate_name",
]
