"""The recognition core's facade: detect, align, embed, match, enrol.

:class:`Recognizer` ties the detector, the embedder (when FaceNet weights are
available), the gallery store, the embedding cache and the template index
together. It is plain Python (no Qt) and is shared by the CLI, the live pipeline
and the UI. Without FaceNet weights it runs in *detection-only* mode: faces are
found and boxed, nobody is recognised, and ``model_error`` says how to fix it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiosk.errors import (
    DetectionOnlyError,
    DuplicateFaceError,
    EnrollmentError,
    ImageError,
    KioskError,
    ModelLoadError,
)
from kiosk.imaging import load_image
from kiosk.recognition.align import align_face
from kiosk.recognition.detector import DetectorConfig, FaceDetector
from kiosk.recognition.device import resolve_device
from kiosk.recognition.embedder import EmbedderConfig, FaceEmbedder
from kiosk.recognition.gallery import (
    GalleryStore,
    Person,
    decode_stored,
    encode_for_storage,
    sha256_hex,
    validate_name,
)
from kiosk.recognition.index import (
    EmbeddingCache,
    TemplateIndex,
    forget_images,
    gallery_embedding_key,
)
from kiosk.recognition.types import Detection, FaceResult
from kiosk.recognition.weights import LoadedFaceNet, load_facenet
from kiosk.settings import DEFAULT_THRESHOLD, Settings

log = logging.getLogger(__name__)


#: What the gallery pipeline (dvc.yaml in a registry) leaves in the gallery dir.
PIPELINE_EMBEDDINGS = Path("embeddings") / "embeddings.npz"
PIPELINE_METRICS = "metrics.json"


def recommended_threshold(gallery_dir: Path) -> float | None:
    """The threshold the gallery pipeline recommended for this gallery version, if any."""
    try:
        data = json.loads((gallery_dir / PIPELINE_METRICS).read_text(encoding="utf-8"))
        value = data["recommended_threshold"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(value, int | float) and 0.0 < float(value) <= 2.0:
        return float(value)
    return None


def effective_threshold(settings: Settings) -> float:
    """``recognition.threshold``; with ``"auto"``, the pipeline's recommendation for the
    gallery version in use, else the default (with a warning)."""
    value = settings.recognition.threshold
    if value != "auto":
        return float(value)
    recommended = recommended_threshold(settings.gallery.dir)
    if recommended is None:
        log.warning(
            "recognition.threshold is 'auto' but the gallery has no recommended threshold "
            "(run `dvc repro` in the registry); using %.2f",
            DEFAULT_THRESHOLD,
        )
        return DEFAULT_THRESHOLD
    return recommended


@dataclass
class EnrollResult:
    person: Person
    warnings: list[str] = field(default_factory=list)


class Recognizer:
    """Everything the kiosk needs to recognise faces against its gallery."""

    def __init__(
        self,
        settings: Settings,
        detector: FaceDetector,
        facenet: LoadedFaceNet | None,
        model_error: ModelLoadError | None = None,
    ) -> None:
        self.settings = settings
        rec = settings.recognition
        self.detector = detector
        self.facenet = facenet
        self.model_error = model_error
        self.embedder = (
            FaceEmbedder(
                facenet.model,
                detector.device,
                EmbedderConfig(rec.use_prewhitening, rec.use_tta_flip, rec.batch_size),
            )
            if facenet is not None
            else None
        )
        self.store = GalleryStore(settings.gallery.dir)
        self.store.recover()
        self.cache: EmbeddingCache | None = None
        if facenet is not None:
            key = gallery_embedding_key(facenet.fingerprint, rec)
            self.cache = EmbeddingCache(settings.cache_dir / "embeddings", key)
        self.index = TemplateIndex([], effective_threshold(settings))
        self.people: dict[str, Person] = {}

    @classmethod
    def create(cls, settings: Settings) -> Recognizer:
        """Load MTCNN and, when its weights can be found, FaceNet; then load the gallery."""
        rec = settings.recognition
        device = resolve_device(rec.device)
        detector = FaceDetector(DetectorConfig.from_settings(rec), device)
        facenet, error = None, None
        try:
            facenet = load_facenet(
                weights_path=rec.weights_path,
                gallery_dir=settings.gallery.dir,
                allow_download=rec.allow_download,
                device=device,
            )
        except ModelLoadError as exc:
            log.warning("detection-only mode: %s", exc)
            error = exc
        recognizer = cls(settings, detector, facenet, error)
        recognizer.reload_gallery()
        return recognizer

    # -- state ---------------------------------------------------------------------------

    @property
    def detection_only(self) -> bool:
        return self.embedder is None

    @property
    def model_fingerprint(self) -> str | None:
        return self.facenet.fingerprint if self.facenet else None

    def require_embedder(self) -> FaceEmbedder:
        if self.embedder is None:
            assert self.model_error is not None
            raise DetectionOnlyError(str(self.model_error)) from self.model_error
        return self.embedder

    # -- per image -----------------------------------------------------------------------

    def align(self, image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        rec = self.settings.recognition
        return [
            align_face(image, d, margin_ratio=rec.margin_ratio, use_alignment=rec.use_alignment)
            for d in detections
        ]

    def embed(self, image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """Embeddings of these faces of one image, in one batch."""
        return self.require_embedder().embed(self.align(image, detections))

    def identify(self, image: np.ndarray) -> list[FaceResult]:
        """Every usable face in ``image`` (largest first) and who it is.

        In detection-only mode the faces come back with ``match=None``.
        """
        detections = self.detector.detect(image)
        if self.embedder is None or not detections:
            return [FaceResult(d, None) for d in detections]
        matches = self.index.match(self.embed(image, detections))
        return [FaceResult(d, m) for d, m in zip(detections, matches, strict=True)]

    # -- gallery -------------------------------------------------------------------------

    def reload_gallery(self) -> None:
        """Re-read the people on disk and rebuild the index (embedding what is not cached)."""
        people = self.store.list_people()
        self.people = {p.id: p for p in people}
        if self.embedder is None or self.cache is None:
            self.index = TemplateIndex([], effective_threshold(self.settings))
            return
        seeded = self.cache.seed_from(self.store.root / PIPELINE_EMBEDDINGS)
        if seeded:
            log.info("%d embeddings taken from the gallery pipeline's file", seeded)
        entries: list[tuple[str, str, np.ndarray]] = []
        missing: list[tuple[Person, str, np.ndarray, Detection]] = []
        for person in people:
            for img in person.images:
                vec = self.cache.get(img.sha256)
                if vec is not None:
                    entries.append((person.id, person.name, vec))
                    continue
                face = self._stored_face(person, img.file)
                if face is not None:
                    missing.append((person, img.sha256, *face))
        if missing:
            log.info("embedding %d gallery images that are not cached yet", len(missing))
            faces = [self.align(image, [det])[0] for _, _, image, det in missing]
            vectors = self.embedder.embed(faces)
            for (person, digest, _, _), vec in zip(missing, vectors, strict=True):
                self.cache.put(digest, vec)
                entries.append((person.id, person.name, vec))
        try:
            self.cache.save(keep={i.sha256 for p in people for i in p.images})
        except KioskError as exc:  # a cache we cannot write only costs time
            log.warning("embedding cache not saved: %s", exc)
        self.index = TemplateIndex(entries, effective_threshold(self.settings))

    def _stored_face(self, person: Person, file: str) -> tuple[np.ndarray, Detection] | None:
        path = self.store.images_dir / person.id / file
        try:
            image = decode_stored(path.read_bytes())
        except (OSError, KioskError) as exc:
            log.warning("gallery image %s of %s unreadable: %s", path, person.name, exc)
            return None
        detections = self.detector.detect(image)
        if len(detections) != 1:
            log.warning(
                "gallery image %s of %s has %d usable faces; not used",
                path,
                person.name,
                len(detections),
            )
            return None
        return image, detections[0]

    def enroll_files(
        self, name: str, paths: Sequence[Path], staff_id: str | None = None
    ) -> EnrollResult:
        """Enrol from image files; every problem with every file is reported at once."""
        images: list[tuple[str, np.ndarray]] = []
        problems: list[tuple[str, str]] = []
        limits = self.settings.images
        for path in paths:
            try:
                images.append(
                    (
                        str(path),
                        load_image(path, max_pixels=limits.max_pixels, max_bytes=limits.max_bytes),
                    )
                )
            except ImageError as exc:
                problems.append((str(path), str(exc)))
        return self._enroll(name, staff_id, images, problems)

    def enroll(
        self, name: str, images: Sequence[tuple[str, np.ndarray]], staff_id: str | None = None
    ) -> EnrollResult:
        """Enrol from RGB images, each labelled (file name, "shot 3", ...) for messages."""
        return self._enroll(name, staff_id, list(images), [])

    def _enroll(
        self,
        name: str,
        staff_id: str | None,
        images: list[tuple[str, np.ndarray]],
        problems: list[tuple[str, str]],
    ) -> EnrollResult:
        gallery = self.settings.gallery
        name = validate_name(name, gallery.max_name_length)
        if staff_id is not None:
            staff_id = validate_name(staff_id, gallery.max_name_length, what="staff id")
        embedder = self.require_embedder()
        if not images and not problems:
            raise EnrollmentError("no images were given; nothing was enrolled")
        encoded, faces, labels = [], [], []
        for label, rgb in images:
            data = encode_for_storage(rgb)
            stored = decode_stored(data)  # detect on exactly what the gallery will keep
            detections = self.detector.detect(stored)
            if len(detections) != 1:
                problems.append((label, self._face_count_problem(len(detections))))
                continue
            encoded.append(data)
            faces.append(self.align(stored, detections)[0])
            labels.append(label)
        if problems:
            raise EnrollmentError(f"{name} was not enrolled; nothing was written", problems)
        vectors = embedder.embed(faces)
        warnings = self._consistency_warnings(labels, vectors)
        duplicates = [
            (label, m)
            for label, m in zip(labels, self.index.match(vectors), strict=True)
            if m.is_match
        ]
        if duplicates:
            details = [
                (label, f"matches {m.name} ({m.person_id}) at distance {m.distance:.3f}")
                for label, m in duplicates
            ]
            if gallery.duplicate_policy == "refuse":
                raise DuplicateFaceError(
                    f"{name} looks like someone already enrolled; nothing was written "
                    "(gallery.duplicate_policy = refuse)",
                    details,
                )
            warnings += [f"{label} {why}" for label, why in details]
        person = self.store.add_person(name, staff_id, encoded)
        if self.cache is not None:
            for data, vec in zip(encoded, vectors, strict=True):
                self.cache.put(sha256_hex(data), vec)
        self.reload_gallery()
        return EnrollResult(person, warnings)

    def _face_count_problem(self, count: int) -> str:
        rec = self.settings.recognition
        if count == 0:
            return (
                f"no usable face found (faces under {rec.min_face_px} px or detected with "
                f"probability under {rec.min_confidence} are ignored)"
            )
        return f"{count} faces found; use a picture that shows only this person"

    def _consistency_warnings(self, labels: list[str], vectors: np.ndarray) -> list[str]:
        """Warn about an image that looks unlike the person's other images."""
        if len(vectors) < 3:
            return []
        dist = np.sqrt(np.clip(2.0 - 2.0 * vectors @ vectors.T, 0.0, None))
        median = np.nanmedian(np.where(np.eye(len(vectors), dtype=bool), np.nan, dist), axis=1)
        limit = self.index.threshold
        return [
            f"{label} looks unlike the other images (median distance {d:.3f} > {limit}); "
            "check it shows the same person"
            for label, d in zip(labels, median, strict=True)
            if d > limit
        ]

    def remove(self, person_id: str) -> Person:
        person = remove_person(self.settings, person_id)
        if self.cache is not None:
            self.cache.discard(i.sha256 for i in person.images)
        self.reload_gallery()
        return person


def remove_person(settings: Settings, person_id: str) -> Person:
    """Delete a person's folder and their embeddings from every cache; no models needed."""
    person = GalleryStore(settings.gallery.dir).remove_person(person_id)
    forget_images(settings.cache_dir / "embeddings", (i.sha256 for i in person.images))
    return person
