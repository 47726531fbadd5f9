"""The admin's registration (enrolment) dialog: live capture with quality gating.

The dialog shows the camera, says in one big line what the person should change
("Move closer", "Face the camera", ...), and only lets the admin capture a shot
when :class:`~kiosk.recognition.quality.QualityGate` accepts the frame. Shots can
also be imported from files; every shot is gated the same way. Saving checks the
shots against the gallery first (a face already enrolled under another name is a
question, or a refusal with ``gallery.duplicate_policy = "refuse"``), then enrols.

Threads. Every model call (detection, embedding, enrolment) is a job handed to
``submit``, which runs it on the recognition thread between two frames and returns
a :class:`concurrent.futures.Future`. The dialog never registers callbacks on those
futures: a future completes on the recognition thread, and a callback there could
touch widgets from the wrong thread or after the dialog is gone. Instead the
dialog's display timer (GUI thread, ~15 Hz) polls the futures it owns and handles
the finished ones. Closing the dialog stops the timer, cancels its own jobs that
have not started and forgets the rest, so nothing ever calls back into a deleted
widget; the worker itself is left alone.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QIcon,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.camera.frames import Frame
from kiosk.errors import DetectionOnlyError, EnrollmentError, ImageError, KioskError
from kiosk.imaging import load_image
from kiosk.recognition.gallery import validate_name
from kiosk.recognition.quality import (
    QualityGate,
    ShotQuality,
    crop_face,
    min_enrol_face_px,
    motion,
    pose,
)
from kiosk.recognition.types import Detection, Match
from kiosk.settings import ImagesSection, Settings
from kiosk.ui.frame_image import to_qimage, to_qpixmap

if TYPE_CHECKING:
    from kiosk.recognition.recognizer import EnrollResult, Recognizer

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Shots needed before Save is enabled: enough poses and moments that one bad frame
#: cannot dominate the person's templates (enrol() also warns about an odd one out).
MIN_SHOTS = 5
#: Display and polling rate of the dialog (the camera may be faster; newest frame wins).
TICK_MS = 66
#: Auto-capture takes at most one shot per this many seconds...
AUTO_CAPTURE_INTERVAL_S = 0.7
#: ...and only when the face moved (fraction of its size) or turned (yaw proxy) by at
#: least this much since the previous shot, so the shots are not five copies of one.
AUTO_MIN_CHANGE = 0.04
THUMB_SIZE = QSize(96, 96)
#: What auto-capture asks for when the face has not changed since the last shot.
VARY_GUIDANCE = "Good: now turn or tilt your head a little"

DETECTION_ONLY_MESSAGE = (
    "Recognition is off: FaceNet's weights were not found, so nobody can be enrolled. "
    "Fix: put the vggface2 weights file where recognition.weights_path points (or set "
    "recognition.allow_download = true) and restart FaceKiosk; `kiosk doctor` shows "
    "where it looked."
)

#: Why an imported file was refused, per quality problem (a file cannot "move closer").
IMPORT_REASONS = {
    "no_face": "no face found",
    "several_faces": "more than one face; use a picture of this person only",
    "too_small": "the face is too small ({face_px:.0f} px; at least {min_px} px needed)",
    "too_dark": "the face is too dark",
    "too_bright": "the face is over-exposed",
    "blurry": "the face is blurry",
    "not_frontal": "the face is not turned to the camera",
    "moving": "the face is moving",
}

OK_COLOUR = QColor(46, 204, 113)
PROBLEM_COLOUR = QColor(243, 156, 18)
REFUSED_COLOUR = QColor(231, 76, 60)


class Submit(Protocol):
    """Runs ``job(recognizer)`` on the recognition thread (``LivePipeline.submit``)."""

    def __call__(self, job: Callable[[Recognizer], T], /) -> Future[T]: ...


@dataclass(frozen=True)
class Shot:
    """One enrolment image: the whole frame (what the gallery stores) and its thumbnail."""

    id: int
    label: str
    image: np.ndarray
    crop: np.ndarray
    detection: Detection
    source: str  # "camera" or the imported file's path


@dataclass(frozen=True)
class Duplicate:
    """A shot that matches someone already enrolled."""

    label: str
    name: str
    person_id: str
    distance: float


def ask_question(parent: QWidget, text: str) -> bool:
    """The default confirmation: a modal Yes/No box."""
    answer = QMessageBox.question(parent, "Register person", text)
    return answer == QMessageBox.StandardButton.Yes


def show_information(parent: QWidget, text: str) -> None:
    """The default notice (enrolment warnings): a modal message box."""
    QMessageBox.information(parent, "Register person", text)


def choose_image_files(parent: QWidget) -> list[Path]:
    """The default file chooser for "Import images…"."""
    files, _ = QFileDialog.getOpenFileNames(
        parent,
        "Import face images",
        "",
        "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff);;All files (*)",
        options=QFileDialog.Option.ReadOnly,  # choosing files, never deleting or renaming
    )
    return [Path(f) for f in files]


def _load_and_detect(
    rec: Recognizer, path: Path, limits: ImagesSection
) -> tuple[np.ndarray, list[Detection]]:
    """Job: decode an imported file (on the worker, so a big file never freezes the GUI)."""
    image = load_image(path, max_pixels=limits.max_pixels, max_bytes=limits.max_bytes)
    return image, rec.detector.detect(image)


def _probe_detection_only(rec: Recognizer) -> str | None:
    """Job: the model error when the recognizer cannot embed (so cannot enrol)."""
    return str(rec.model_error or "FaceNet is not loaded") if rec.detection_only else None


def _find_duplicates(rec: Recognizer, shots: Sequence[Shot]) -> list[Duplicate]:
    """Job: the shots that already match an enrolled person, closest first."""
    embedder = rec.require_embedder()  # DetectionOnlyError in detection-only mode
    faces = [rec.align(s.image, [s.detection])[0] for s in shots]
    matches: list[Match] = rec.index.match(embedder.embed(faces))
    found = [
        Duplicate(s.label, m.name or "?", m.person_id or "?", m.distance)
        for s, m in zip(shots, matches, strict=True)
        if m.is_match
    ]
    return sorted(found, key=lambda d: d.distance)


class _Preview(QWidget):
    """The newest frame, scaled to fit, with the assessed faces boxed in their verdict's colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(480, 360)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._frame: Frame | None = None
        self._image = to_qimage(np.zeros((1, 1, 3), np.uint8))
        self._boxes: list[tuple[tuple[float, float, float, float], QColor]] = []
        self._placeholder = "Waiting for the camera…"

    def show_frame(self, frame: Frame | None) -> None:
        if frame is self._frame:
            return
        self._frame = frame
        if frame is not None:
            self._image = to_qimage(frame.image)
        self.update()

    def set_boxes(self, boxes: list[tuple[tuple[float, float, float, float], QColor]]) -> None:
        self._boxes = boxes
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 20))
        if self._frame is None:
            painter.setPen(QColor(220, 220, 220))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
            return
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        target = QRectF(
            (self.width() - iw * scale) / 2,
            (self.height() - ih * scale) / 2,
            iw * scale,
            ih * scale,
        )
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self._image)
        for (x1, y1, x2, y2), colour in self._boxes:
            painter.setPen(QPen(colour, 3))
            painter.drawRect(
                QRectF(
                    target.x() + x1 * scale,
                    target.y() + y1 * scale,
                    (x2 - x1) * scale,
                    (y2 - y1) * scale,
                )
            )


class RegistrationDialog(QDialog):
    """Register a person from live camera shots and/or image files; see the module docstring.

    ``saved`` is emitted with the :class:`~kiosk.recognition.recognizer.EnrollResult`
    once the person is in the gallery (and in the worker's index), just before the
    dialog accepts. ``confirm`` and ``notify`` replace the modal message boxes (tests).
    """

    saved = Signal(object)

    def __init__(
        self,
        settings: Settings,
        submit: Submit,
        latest_frame: Callable[[], Frame | None],
        parent: QWidget | None = None,
        *,
        choose_images: Callable[[QWidget], list[Path]] | None = None,
        confirm: Callable[[QWidget, str], bool] | None = None,
        notify: Callable[[QWidget, str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Register person")
        self._settings = settings
        self._submit = submit
        self._latest_frame = latest_frame
        self._choose_images = choose_images or choose_image_files
        self._confirm = confirm or ask_question
        self._notify = notify or show_information
        self._gate = QualityGate(settings)
        self._closed = False

        self._jobs: list[tuple[Future[Any], Callable[[Future[Any]], None]]] = []
        self._detecting: Future[Any] | None = None
        self._submitted_frame_id: int | None = None
        self._previous: Detection | None = None
        self._quality: ShotQuality | None = None
        self._quality_frame: Frame | None = None
        self._quality_used = False  # this assessment's frame was captured already
        self._shots: dict[int, Shot] = {}
        self._next_shot_id = 1
        self._last_shot_at = 0.0
        self._retakes = 0
        self._imports_pending = 0
        self._busy: str | None = None  # "checking" or "saving"
        self._detection_only: str | None = None

        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._own(self._submit(_probe_detection_only), self._probed)
        self._refresh()

    # -- public state (for the window and tests) ------------------------------------------

    @property
    def shots(self) -> list[Shot]:
        return list(self._shots.values())

    @property
    def quality(self) -> ShotQuality | None:
        """The latest assessment of a live frame."""
        return self._quality

    def can_capture(self) -> bool:
        return (
            self._busy is None
            and self._quality is not None
            and self._quality.ok
            and not self._quality_used
        )

    # -- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.preview = _Preview(self)
        self.guidance_label = QLabel("Starting the camera…", self)
        font = QFont(self.guidance_label.font())
        font.setPointSize(max(16, font.pointSize() + 8))
        font.setBold(True)
        self.guidance_label.setFont(font)
        self.guidance_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.guidance_label.setWordWrap(True)

        self.capture_button = QPushButton("Capture (Space)", self)
        self.capture_button.clicked.connect(self.capture)
        self._space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self._space.activated.connect(self.capture)
        self.auto_capture = QCheckBox("Auto-capture", self)
        self.auto_capture.setToolTip(
            f"Take a shot whenever the picture is good, at most one per "
            f"{AUTO_CAPTURE_INTERVAL_S:.1f} s, until {MIN_SHOTS} shots"
        )
        self.counter_label = QLabel(self)

        left = QVBoxLayout()
        left.addWidget(self.preview, 1)
        left.addWidget(self.guidance_label)
        row = QHBoxLayout()
        row.addWidget(self.capture_button)
        row.addWidget(self.auto_capture)
        row.addStretch(1)
        row.addWidget(self.counter_label)
        left.addLayout(row)

        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("required")
        self.name_error = QLabel(self)
        self.staff_edit = QLineEdit(self)
        self.staff_edit.setPlaceholderText("optional")
        self.staff_error = QLabel(self)
        for label in (self.name_error, self.staff_error):
            label.setStyleSheet("color: #c0392b;")
            label.setWordWrap(True)
            label.hide()
        self.name_edit.textChanged.connect(self._refresh)
        self.staff_edit.textChanged.connect(self._refresh)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("", self.name_error)
        form.addRow("Staff id", self.staff_edit)
        form.addRow("", self.staff_error)

        self.shot_list = QListWidget(self)
        self.shot_list.setViewMode(QListView.ViewMode.IconMode)
        self.shot_list.setIconSize(THUMB_SIZE)
        self.shot_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.shot_list.setMovement(QListView.Movement.Static)
        self.shot_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.shot_list.itemSelectionChanged.connect(self._refresh)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete_selected)
        self.retake_button = QPushButton("Retake", self)
        self.retake_button.setToolTip("Delete the selected shots and capture new ones")
        self.retake_button.clicked.connect(self.retake_selected)
        self.import_button = QPushButton("Import images…", self)
        self.import_button.clicked.connect(self.import_images)
        self.rejected_list = QListWidget(self)
        self.rejected_list.setMaximumHeight(90)
        self.rejected_list.hide()
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy_label = QLabel(self)
        self.save_button = QPushButton("Save", self)
        self.save_button.clicked.connect(self.save)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.reject)

        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(QLabel("Shots", self))
        right.addWidget(self.shot_list, 1)
        shot_row = QHBoxLayout()
        shot_row.addWidget(self.delete_button)
        shot_row.addWidget(self.retake_button)
        shot_row.addWidget(self.import_button)
        right.addLayout(shot_row)
        right.addWidget(self.rejected_list)
        right.addWidget(self.message_label)
        right.addWidget(self.busy_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.cancel_button)
        right.addLayout(buttons)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)
        self.name_edit.setFocus()

    # -- jobs on the recognition thread ---------------------------------------------------

    def _own(self, future: Future[Any], handler: Callable[[Future[Any]], None]) -> None:
        """Handle ``future`` on the GUI thread once it is done (polled by the timer)."""
        self._jobs.append((future, handler))

    def _poll_jobs(self) -> None:
        done = [job for job in self._jobs if job[0].done()]
        if not done:
            return
        self._jobs = [job for job in self._jobs if job not in done]
        for future, handler in done:
            if self._closed:
                return
            try:
                handler(future)
            except Exception as exc:  # a bug in one handler must not strand the dialog
                log.exception("registration: handling a recognition job failed")
                self._busy = None  # whatever was in progress is over; the shots are kept
                self._save_failed(exc)

    def _tick(self) -> None:
        if self._closed:
            return
        self._poll_jobs()
        frame = self._latest_frame()
        self.preview.show_frame(frame)
        if (
            frame is not None
            and self._detecting is None
            and frame.frame_id != self._submitted_frame_id
        ):
            self._submitted_frame_id = frame.frame_id
            image = frame.image
            future = self._submit(lambda rec: rec.detector.detect(image))
            self._detecting = future
            self._own(future, functools.partial(self._assessed, frame))

    def _assessed(self, frame: Frame, future: Future[list[Detection]]) -> None:
        self._detecting = None
        try:
            detections = future.result()
        except Exception as exc:  # the worker stopped, or the models failed to load
            self._quality, self._quality_frame, self._previous = None, None, None
            self._set_guidance(f"Recognition is not available: {exc}", ok=False)
            self.preview.set_boxes([])
            self._refresh()
            return
        quality = self._gate.assess(frame.image, detections, self._previous)
        self._previous = quality.detection
        self._quality, self._quality_frame, self._quality_used = quality, frame, False
        colour = OK_COLOUR if quality.ok else PROBLEM_COLOUR
        if quality.problem == "several_faces":
            colour = REFUSED_COLOUR
        self.preview.set_boxes([(d.box, colour) for d in detections])
        self._set_guidance(quality.guidance, ok=quality.ok)
        if quality.ok and self._busy is None:
            if self._retakes > 0:
                self._retakes -= 1
                self.capture()
            elif self.auto_capture.isChecked() and len(self._shots) < MIN_SHOTS:
                self._auto_capture(quality)
        self._refresh()

    def _auto_capture(self, quality: ShotQuality) -> None:
        """Capture when the last shot is old enough and the face moved or turned since."""
        if quality.detection is None:
            return
        last = next((s for s in reversed(self.shots) if s.source == "camera"), None)
        if last is not None:
            turned = abs(pose(quality.detection)[0] - pose(last.detection)[0])
            if max(motion(quality.detection, last.detection), turned) < AUTO_MIN_CHANGE:
                # A person who holds perfectly still would get five copies of one shot.
                self._set_guidance(VARY_GUIDANCE, ok=True)
                return
        if time.monotonic() - self._last_shot_at >= AUTO_CAPTURE_INTERVAL_S:
            self.capture()

    # -- shots ------------------------------------------------------------------------------

    def capture(self) -> None:
        """Keep the assessed frame as a shot (only when the gate accepted it)."""
        if not self.can_capture():
            return
        assert self._quality is not None and self._quality.detection is not None
        assert self._quality_frame is not None
        self._quality_used = True
        self._add_shot(None, self._quality_frame.image, self._quality.detection, "camera")

    def _add_shot(
        self, label: str | None, image: np.ndarray, detection: Detection, source: str
    ) -> Shot:
        shot_id = self._next_shot_id
        self._next_shot_id += 1
        labels = {s.label for s in self._shots.values()}
        label = label or f"shot {shot_id}"
        unique, n = label, 2
        while unique in labels:
            unique, n = f"{label} ({n})", n + 1
        shot = Shot(shot_id, unique, image, crop_face(image, detection.box), detection, source)
        self._shots[shot_id] = shot
        item = QListWidgetItem(QIcon(to_qpixmap(shot.crop, THUMB_SIZE)), unique)
        item.setData(Qt.ItemDataRole.UserRole, shot_id)
        item.setToolTip(source)
        self.shot_list.addItem(item)
        if source == "camera":
            self._last_shot_at = time.monotonic()
        self._refresh()
        return shot

    def delete_selected(self) -> int:
        """Remove the selected shots; returns how many."""
        if self._busy is not None:
            return 0
        items = self.shot_list.selectedItems()
        for item in items:
            self._shots.pop(int(item.data(Qt.ItemDataRole.UserRole)), None)
            self.shot_list.takeItem(self.shot_list.row(item))
        self._refresh()
        return len(items)

    def retake_selected(self) -> None:
        """Delete the selected shots and capture as many new ones when the picture is good."""
        self._retakes += self.delete_selected()
        self._refresh()

    def import_images(self) -> None:
        """Add shots from image files; each is decoded, detected and gated like a live frame."""
        if self._busy is not None:
            return
        paths = self._choose_images(self)
        limits = self._settings.images
        for path in paths:
            job = functools.partial(_load_and_detect, path=path, limits=limits)
            self._own(self._submit(job), functools.partial(self._imported, path))
            self._imports_pending += 1
        self._refresh()

    def _imported(self, path: Path, future: Future[tuple[np.ndarray, list[Detection]]]) -> None:
        self._imports_pending -= 1
        try:
            image, detections = future.result()
        except ImageError as exc:
            self._reject_file(path, str(exc))
        except Exception as exc:
            log.warning("import of %s failed", path, exc_info=True)
            self._reject_file(path, str(exc))
        else:
            quality = self._gate.assess(image, detections)
            if quality.ok and quality.detection is not None:
                self._add_shot(path.name, image, quality.detection, str(path))
            else:
                self._reject_file(path, self._import_reason(quality))
        self._refresh()

    def _import_reason(self, quality: ShotQuality) -> str:
        template = IMPORT_REASONS.get(quality.problem or "", quality.guidance)
        return template.format(
            face_px=quality.metrics.get("face_px", 0.0),
            min_px=min_enrol_face_px(self._settings),
        )

    def _reject_file(self, path: Path, reason: str) -> None:
        self.rejected_list.show()
        self.rejected_list.addItem(f"{path.name}: {reason}")

    def rejected_files(self) -> list[str]:
        """The refused imports, "file: reason" each."""
        return [self.rejected_list.item(i).text() for i in range(self.rejected_list.count())]

    # -- saving ------------------------------------------------------------------------------

    def _validated(self) -> tuple[str, str | None] | None:
        """(name, staff id or None) when both are valid; the reasons shown inline otherwise."""
        limit = self._settings.gallery.max_name_length
        name, staff, ok = "", None, True
        try:
            name = validate_name(self.name_edit.text(), limit)
            self.name_error.hide()
        except EnrollmentError as exc:
            ok = False
            self._show_field_error(self.name_error, exc, show=bool(self.name_edit.text()))
        staff_text = self.staff_edit.text().strip()
        if staff_text:
            try:
                staff = validate_name(staff_text, limit, what="staff id")
                self.staff_error.hide()
            except EnrollmentError as exc:
                ok = False
                self._show_field_error(self.staff_error, exc, show=True)
        else:
            self.staff_error.hide()
        return (name, staff) if ok else None

    @staticmethod
    def _show_field_error(label: QLabel, exc: EnrollmentError, *, show: bool) -> None:
        label.setText("; ".join(why for _what, why in exc.items) or str(exc))
        label.setVisible(show)

    def save(self) -> None:
        """Check the shots against the gallery, ask if they match someone, then enrol."""
        fields = self._validated()
        if fields is None:
            self.name_error.setVisible(True)
            return
        if self._busy is not None or len(self._shots) < MIN_SHOTS or self._detection_only:
            return
        shots = self.shots
        self._set_busy("checking", "Checking whether this face is already enrolled…")
        self._own(
            self._submit(lambda rec: _find_duplicates(rec, shots)),
            lambda f: self._checked(fields, shots, f),
        )

    def _checked(
        self,
        fields: tuple[str, str | None],
        shots: list[Shot],
        future: Future[list[Duplicate]],
    ) -> None:
        # Still busy while the question is open: the shots being checked cannot change.
        try:
            duplicates = future.result()
        except Exception as exc:
            self._set_busy(None)
            self._save_failed(exc)
            return
        if duplicates:
            best = duplicates[0]
            text = f"This face already matches {best.name} (distance {best.distance:.2f})."
            if self._settings.gallery.duplicate_policy == "refuse":
                self._set_busy(None)
                self._show_message(
                    f"{text} It cannot be saved: gallery.duplicate_policy is 'refuse'. "
                    f"Remove {best.name} first if this is the same person.",
                    error=True,
                )
                return
            if not self._confirm(self, f"{text} Save anyway?"):
                self._set_busy(None)
                self._show_message(f"{text} Not saved.", error=False)
                return
        name, staff_id = fields
        images = [(s.label, s.image) for s in shots]
        self._set_busy("saving", f"Saving {name}…")
        self._own(
            self._submit(lambda rec: rec.enroll(name, images, staff_id)),
            self._enrolled,
        )

    def _enrolled(self, future: Future[EnrollResult]) -> None:
        self._set_busy(None)
        try:
            result = future.result()
        except Exception as exc:
            self._save_failed(exc)
            return
        self._show_message(f"{result.person.name} was registered.", error=False)
        self.saved.emit(result)
        if result.warnings:
            self._notify(
                self,
                f"{result.person.name} was registered, with warnings:\n"
                + "\n".join(f"• {w}" for w in result.warnings),
            )
        self.accept()

    def _save_failed(self, exc: BaseException) -> None:
        if isinstance(exc, DetectionOnlyError):
            self._detection_only = str(exc)
            self._show_message(f"{DETECTION_ONLY_MESSAGE}\n{exc}", error=True)
        elif isinstance(exc, EnrollmentError):
            message = str(exc.args[0]) if exc.args else "The person was not registered."
            lines = [f"• {what}: {why}" for what, why in exc.items]
            self._show_message("\n".join([f"Not saved: {message}.", *lines]), error=True)
        elif isinstance(exc, KioskError):
            self._show_message(f"Not saved: {exc}", error=True)
        else:
            log.error("registration failed", exc_info=exc)
            self._show_message(f"Not saved: unexpected error ({exc!r}); see the log.", error=True)
        self._refresh()

    def _probed(self, future: Future[str | None]) -> None:
        try:
            problem = future.result()
        except Exception:  # the live loop reports an unavailable worker already
            return
        if problem:
            self._detection_only = problem
            self._show_message(f"{DETECTION_ONLY_MESSAGE}\n{problem}", error=True)
            self._refresh()

    # -- state shown -----------------------------------------------------------------------

    def _set_busy(self, what: str | None, text: str = "") -> None:
        self._busy = what
        self.busy_label.setText(text)
        self._refresh()

    def _set_guidance(self, text: str, *, ok: bool) -> None:
        self.guidance_label.setText(text)
        colour = OK_COLOUR if ok else PROBLEM_COLOUR
        self.guidance_label.setStyleSheet(f"color: {colour.name()};")

    def _show_message(self, text: str, *, error: bool) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #c0392b;" if error else "")

    def _refresh(self) -> None:
        idle = self._busy is None
        count = len(self._shots)
        self.counter_label.setText(
            f"{count} of {MIN_SHOTS}" if count < MIN_SHOTS else f"{count} shots: ready"
        )
        self.capture_button.setEnabled(self.can_capture())
        selected = bool(self.shot_list.selectedItems())
        self.delete_button.setEnabled(idle and selected)
        self.retake_button.setEnabled(idle and selected)
        self.import_button.setEnabled(idle)
        for widget in (self.name_edit, self.staff_edit, self.shot_list, self.auto_capture):
            widget.setEnabled(idle)
        self.cancel_button.setEnabled(self._busy != "saving")
        fields_ok = self._validated() is not None
        self.save_button.setEnabled(
            idle and fields_ok and count >= MIN_SHOTS and self._detection_only is None
        )
        if idle and self._imports_pending:
            self.busy_label.setText(f"Importing {self._imports_pending} image(s)…")
        elif idle:
            self.busy_label.clear()

    # -- closing ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop polling and forget every job; cancel the ones the worker has not started."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        for future, _handler in self._jobs:
            future.cancel()  # only succeeds for jobs still queued: those never run
        self._jobs.clear()
        self._detecting = None

    def reject(self) -> None:
        if self._busy == "saving":  # the enrolment is being written; let it finish
            self.busy_label.setText("Saving… please wait")
            return
        super().reject()

    def done(self, result: int) -> None:
        self._shutdown()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._busy == "saving":
            event.ignore()
            self.busy_label.setText("Saving… please wait")
            return
        self._shutdown()
        super().closeEvent(event)
