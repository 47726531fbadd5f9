"""The registration dialog driven by a real LivePipeline on a looping video of a real face.

Every model call goes through ``pipeline.submit`` onto the recognition thread, as in
the kiosk. FaceNet has random weights (see conftest.py), so duplicates are made
from the very frames that are enrolled (distance ~0), never from "the same person".
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDialog

from kiosk.camera.frames import Frame
from kiosk.errors import EnrollmentError, ModelLoadError
from kiosk.live import LivePipeline
from kiosk.recognition import Recognizer
from kiosk.recognition.gallery import GalleryStore
from kiosk.recognition.quality import GOOD_GUIDANCE
from kiosk.settings import CameraSection, PipelineSection, Settings
from kiosk.ui.frame_image import to_qimage, to_qpixmap
from kiosk.ui.registration import MIN_SHOTS, RegistrationDialog
from tests.helpers import no_face, two_faces, with_gallery, with_recognition, write_image
from tests.video import face_patch, scene, write_video

pytestmark = pytest.mark.slow
THRESHOLD = 0.15  # see tests/test_worker.py
WAIT_MS = 60_000  # generous: two shared CPU cores run detection for the live video too


@pytest.fixture
def frames(astronaut: np.ndarray) -> list[np.ndarray]:
    """A face of ~120 px drifting 1 px per frame to the right and back (loops seamlessly)."""
    patch = face_patch(astronaut, 300)
    xs = [*range(150, 170), *range(170, 150, -1)]
    return [scene((640, 480), [(patch, x, 60)]) for x in xs]


@pytest.fixture
def live_settings(settings: Settings, tmp_path: Path, frames: list[np.ndarray]) -> Settings:
    video = write_video(tmp_path / "ada.avi", frames, fps=10.0)
    return dataclasses.replace(
        with_recognition(settings, threshold=THRESHOLD),
        pipeline=PipelineSection(torch_threads=2),
        camera=CameraSection(source=str(video), loop_files=True),
    )


@pytest.fixture
def recognizer_(live_settings: Settings, make_recognizer) -> Recognizer:
    rec: Recognizer = make_recognizer(live_settings)
    return rec


@pytest.fixture
def pipeline(live_settings: Settings, recognizer_: Recognizer) -> Iterator[LivePipeline]:
    pipe = LivePipeline(live_settings, recognizer_)
    pipe.start()
    try:
        yield pipe
    finally:
        assert pipe.stop(timeout=10.0), "the live pipeline did not stop"


class Answers:
    """Records every question/notice and answers questions from a script."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.notices: list[str] = []
        self.locked: bool | None = None

    def confirm(self, parent: object, text: str) -> bool:
        self.asked.append(text)
        if isinstance(parent, RegistrationDialog):  # the shots cannot change meanwhile
            self.locked = not (parent.import_button.isEnabled() or parent.can_capture())
        return self.answers.pop(0)

    def notify(self, _parent: object, text: str) -> None:
        self.notices.append(text)


@pytest.fixture
def open_dialog(qtbot, live_settings: Settings, pipeline: LivePipeline):
    def open_(
        settings: Settings | None = None,
        latest_frame: Callable[[], Frame | None] | None = None,
        **kwargs: Any,
    ) -> RegistrationDialog:
        dialog = RegistrationDialog(
            settings or live_settings,
            pipeline.submit,
            latest_frame or pipeline.latest_frame,
            **kwargs,
        )
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog

    return open_


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def capture(qtbot, dialog: RegistrationDialog, count: int) -> None:
    for _ in range(count):
        qtbot.waitUntil(dialog.capture_button.isEnabled, timeout=WAIT_MS)
        click(qtbot, dialog.capture_button)


def import_files(qtbot, dialog: RegistrationDialog, paths: list[Path]) -> None:
    chosen = list(paths)
    dialog._choose_images = lambda _parent: chosen
    before = len(dialog.shots) + len(dialog.rejected_files())
    click(qtbot, dialog.import_button)
    qtbot.waitUntil(
        lambda: len(dialog.shots) + len(dialog.rejected_files()) == before + len(chosen),
        timeout=WAIT_MS,
    )


def frame_files(tmp_path: Path, frames: list[np.ndarray], count: int = MIN_SHOTS) -> list[Path]:
    return [write_image(tmp_path / f"frame{i}.png", frames[i * 3]) for i in range(count)]


def test_live_capture_is_gated_by_quality_and_saves_the_person(
    qtbot, open_dialog, pipeline: LivePipeline, live_settings: Settings
) -> None:
    blank = {"on": False, "id": 10**9}

    def latest_frame() -> Frame | None:
        if blank["on"]:  # a new empty frame each time, as a camera would deliver
            blank["id"] += 1
            return Frame(blank["id"], time.monotonic(), time.time(), no_face())
        return pipeline.latest_frame()

    answers = Answers()
    dialog = open_dialog(latest_frame=latest_frame, confirm=answers.confirm)
    assert not dialog.capture_button.isEnabled() and not dialog.save_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.guidance_label.text() == GOOD_GUIDANCE, timeout=WAIT_MS)
    capture(qtbot, dialog, 3)
    assert dialog.counter_label.text() == "3 of 5"
    assert dialog.shot_list.count() == 3

    blank["on"] = True
    qtbot.waitUntil(
        lambda: dialog.quality is not None and dialog.quality.problem == "no_face",
        timeout=WAIT_MS,
    )
    assert "No face" in dialog.guidance_label.text()
    assert not dialog.capture_button.isEnabled()
    dialog.capture()  # Space or a stray call cannot capture a frame the gate refused
    assert len(dialog.shots) == 3

    blank["on"] = False
    capture(qtbot, dialog, 2)
    assert dialog.counter_label.text() == "5 shots: ready"
    assert not dialog.save_button.isEnabled()  # no name yet
    qtbot.keyClicks(dialog.name_edit, "Ada Lovelace")
    qtbot.keyClicks(dialog.staff_edit, "E-17")
    assert dialog.save_button.isEnabled()
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        click(qtbot, dialog.save_button)
    person = saved.args[0].person
    assert (person.name, person.staff_id, len(person.images)) == ("Ada Lovelace", "E-17", 5)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert answers.asked == []  # nobody enrolled yet: no duplicate question
    (stored,) = GalleryStore(live_settings.gallery.dir).list_people()
    assert stored.id == person.id and len(stored.images) == 5
    known = pipeline.submit(lambda rec: (sorted(rec.people), rec.index.size)).result(timeout=30)
    assert known == ([person.id], 5)


def test_space_captures_but_types_a_space_in_the_name(qtbot, open_dialog) -> None:
    dialog = open_dialog()
    dialog.activateWindow()
    qtbot.waitActive(dialog)
    qtbot.waitUntil(dialog.capture_button.isEnabled, timeout=WAIT_MS)
    dialog.shot_list.setFocus()
    qtbot.keyClick(dialog.shot_list, Qt.Key.Key_Space)
    assert len(dialog.shots) == 1
    dialog.name_edit.setFocus()
    qtbot.waitUntil(dialog.capture_button.isEnabled, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.name_edit, "Ada Lovelace")
    assert dialog.name_edit.text() == "Ada Lovelace" and len(dialog.shots) == 1


def test_delete_and_retake_replace_the_selected_shots(qtbot, open_dialog) -> None:
    dialog = open_dialog()
    capture(qtbot, dialog, 3)
    first = [s.label for s in dialog.shots]
    dialog.shot_list.item(1).setSelected(True)
    click(qtbot, dialog.delete_button)
    assert [s.label for s in dialog.shots] == [first[0], first[2]]
    dialog.shot_list.item(0).setSelected(True)
    click(qtbot, dialog.retake_button)
    assert [s.label for s in dialog.shots] == [first[2]]
    qtbot.waitUntil(lambda: len(dialog.shots) == 2, timeout=WAIT_MS)  # retaken by itself
    assert dialog.shots[1].label not in first


def test_auto_capture_takes_varied_shots_until_enough(qtbot, open_dialog) -> None:
    dialog = open_dialog()
    dialog.auto_capture.setChecked(True)
    qtbot.waitUntil(lambda: len(dialog.shots) == MIN_SHOTS, timeout=3 * WAIT_MS)
    qtbot.wait(1500)
    assert len(dialog.shots) == MIN_SHOTS  # it stops at the minimum
    boxes = [s.detection.box for s in dialog.shots]
    assert len(set(boxes)) == MIN_SHOTS  # five different frames, not one five times


def test_import_keeps_good_files_and_lists_every_bad_one_with_its_reason(
    qtbot, open_dialog, tmp_path: Path, astronaut: np.ndarray
) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    good = write_image(tmp_path / "ada.png", astronaut)
    pair = write_image(tmp_path / "pair.png", two_faces(astronaut))
    dialog = open_dialog()
    capture(qtbot, dialog, 1)
    import_files(qtbot, dialog, [corrupt, good, pair])
    assert [s.label for s in dialog.shots][1:] == ["ada.png"]
    assert dialog.shots[0].source == "camera"  # what was there before is kept
    assert dialog.shots[1].image.shape == astronaut.shape  # the whole picture is enrolled
    rejected = dialog.rejected_files()
    assert len(rejected) == 2
    assert rejected[0].startswith("broken.jpg: ") and "decode" in rejected[0]
    assert rejected[1] == "pair.png: more than one face; use a picture of this person only"
    assert dialog.rejected_list.isVisible()


def test_a_face_already_enrolled_is_a_question_and_save_anyway_saves(
    qtbot, open_dialog, pipeline: LivePipeline, live_settings: Settings, tmp_path: Path, frames
) -> None:
    pipeline.submit(lambda rec: rec.enroll("Ada", [("frame", frames[0])])).result(timeout=60)
    answers = Answers(False, True)
    dialog = open_dialog(confirm=answers.confirm, notify=answers.notify)
    import_files(qtbot, dialog, frame_files(tmp_path, frames))
    assert len(dialog.shots) == MIN_SHOTS, dialog.rejected_files()
    qtbot.keyClicks(dialog.name_edit, "Ada Twin")

    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: len(answers.asked) == 1, timeout=WAIT_MS)
    assert answers.asked[0].startswith("This face already matches Ada (distance 0.")
    assert answers.asked[0].endswith("Save anyway?")
    assert answers.locked is True
    assert "Not saved" in dialog.message_label.text()
    assert dialog.isVisible() and len(dialog.shots) == MIN_SHOTS
    assert len(GalleryStore(live_settings.gallery.dir).list_people()) == 1

    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        click(qtbot, dialog.save_button)
    assert saved.args[0].person.name == "Ada Twin"
    assert saved.args[0].warnings and answers.notices  # enrol() warned too; it was shown
    assert "matches Ada" in answers.notices[0]
    people = GalleryStore(live_settings.gallery.dir).list_people()
    assert sorted(p.name for p in people) == ["Ada", "Ada Twin"]


def test_refuse_policy_says_it_cannot_be_saved(
    qtbot, open_dialog, pipeline: LivePipeline, live_settings: Settings, tmp_path: Path, frames
) -> None:
    pipeline.submit(lambda rec: rec.enroll("Ada", [("frame", frames[0])])).result(timeout=60)
    answers = Answers()
    dialog = open_dialog(
        settings=with_gallery(live_settings, duplicate_policy="refuse"), confirm=answers.confirm
    )
    import_files(qtbot, dialog, frame_files(tmp_path, frames))
    qtbot.keyClicks(dialog.name_edit, "Ada Twin")
    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: "cannot be saved" in dialog.message_label.text(), timeout=WAIT_MS)
    assert "already matches Ada" in dialog.message_label.text()
    assert answers.asked == []
    assert [p.name for p in GalleryStore(live_settings.gallery.dir).list_people()] == ["Ada"]
    assert dialog.isVisible() and len(dialog.shots) == MIN_SHOTS


def test_an_enrolment_error_lists_every_problem_and_keeps_the_shots(
    qtbot,
    open_dialog,
    recognizer_: Recognizer,
    live_settings: Settings,
    tmp_path: Path,
    frames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(name: str, images: object, staff_id: str | None = None) -> object:
        raise EnrollmentError(
            f"{name} was not enrolled; nothing was written",
            [("frame1.png", "no usable face found"), ("frame3.png", "2 faces found")],
        )

    monkeypatch.setattr(recognizer_, "enroll", refuse)
    dialog = open_dialog()
    import_files(qtbot, dialog, frame_files(tmp_path, frames))
    qtbot.keyClicks(dialog.name_edit, "Ada")
    click(qtbot, dialog.save_button)
    assert dialog.busy_label.text()  # busy, and nothing can be changed meanwhile
    assert not any(
        w.isEnabled()
        for w in (dialog.save_button, dialog.name_edit, dialog.import_button, dialog.shot_list)
    )
    qtbot.waitUntil(lambda: "Not saved" in dialog.message_label.text(), timeout=WAIT_MS)
    message = dialog.message_label.text()
    assert "frame1.png: no usable face found" in message
    assert "frame3.png: 2 faces found" in message
    assert dialog.isVisible() and len(dialog.shots) == MIN_SHOTS
    assert dialog.save_button.isEnabled() and dialog.name_edit.isEnabled()
    assert GalleryStore(live_settings.gallery.dir).list_people() == []

    monkeypatch.undo()  # the problem is fixed: the same shots save now
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        click(qtbot, dialog.save_button)
    assert len(saved.args[0].person.images) == MIN_SHOTS


def test_detection_only_mode_explains_the_fix_instead_of_saving(
    qtbot, live_settings: Settings, make_recognizer, tmp_path: Path, frames
) -> None:
    detector = make_recognizer(live_settings, reload=False).detector
    missing = ModelLoadError("FaceNet weights not found", [("weights_path", "not set")])
    rec = Recognizer(live_settings, detector, None, missing)
    pipe = LivePipeline(live_settings, rec)
    pipe.start()
    try:
        dialog = RegistrationDialog(live_settings, pipe.submit, pipe.latest_frame)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: "weights" in dialog.message_label.text(), timeout=WAIT_MS)
        assert "recognition.weights_path" in dialog.message_label.text()
        import_files(qtbot, dialog, frame_files(tmp_path, frames))
        qtbot.keyClicks(dialog.name_edit, "Ada")
        assert len(dialog.shots) == MIN_SHOTS
        assert not dialog.save_button.isEnabled()
        dialog.close()
    finally:
        assert pipe.stop(timeout=10.0)


def test_closing_forgets_pending_jobs(qtbot, open_dialog, pipeline: LivePipeline) -> None:
    dialog = open_dialog()
    qtbot.waitUntil(lambda: dialog._detecting is not None, timeout=WAIT_MS)
    in_flight, before = dialog._detecting, dialog.quality
    dialog.close()
    assert dialog._jobs == [] and not dialog._timer.isActive()
    assert in_flight is not None
    qtbot.waitUntil(in_flight.done, timeout=WAIT_MS)  # finished or cancelled: nobody listens
    qtbot.wait(300)
    assert dialog.quality is before  # its result was never handled
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_names_are_validated_inline_without_a_camera(qtbot) -> None:
    never: list[Future[Any]] = []

    def submit(job: object) -> Future[Any]:
        never.append(Future())
        return never[-1]

    dialog = RegistrationDialog(Settings(), submit, lambda: None)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.name_edit, "Ada/Lovelace")
    assert dialog.name_error.isVisible()
    assert "path separator" in dialog.name_error.text()
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "Ada Lovelace")
    assert not dialog.name_error.isVisible()
    dialog.staff_edit.setText("E\x0717")
    assert dialog.staff_error.isVisible() and "control" in dialog.staff_error.text()
    assert not dialog.save_button.isEnabled()
    assert dialog.guidance_label.text() == "Starting the camera…"
    dialog.close()
    assert all(f.cancelled() for f in never)  # the probe job never started: cancelled


def test_frames_become_qimages_that_own_their_pixels(qtbot) -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    view = rgb[:, ::-1]  # a mirrored view: negative strides
    image = to_qimage(view)
    rgb[:] = 255  # the frame is reused: the QImage must not change
    assert (image.width(), image.height()) == (6, 4)
    pixel = image.pixelColor(3, 1)
    assert (pixel.red(), pixel.green(), pixel.blue()) == (10, 20, 30)
    grey = to_qimage(np.full((3, 5), 77, np.uint8))
    assert grey.pixelColor(4, 2).red() == 77
    assert to_qpixmap(np.zeros((40, 80, 3), np.uint8), fit=QSize(20, 20)).width() == 20
    with pytest.raises(ValueError):
        to_qimage(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError):
        to_qimage(np.zeros((4, 4, 3), np.float32))


def test_a_failing_job_handler_is_reported_and_the_others_still_run(qtbot, open_dialog) -> None:
    from concurrent.futures import Future

    dialog = open_dialog()
    handled = []

    def broken(_future: Future[Any]) -> None:
        raise RuntimeError("bug in a handler")

    for handler in (broken, handled.append):
        done: Future[Any] = Future()
        done.set_result(None)
        dialog._own(done, handler)
    dialog._busy = "saving"
    dialog._poll_jobs()
    assert len(handled) == 1  # the second job was still handled
    assert "unexpected error" in dialog.message_label.text()
    assert dialog._busy is None and dialog.cancel_button.isEnabled()
