"""Enrol, identify, remove: the gallery end to end through the Recognizer, and bad input.

With the suite's random FaceNet weights, distances are small and meaningless as
identity; the two "people" here are the astronaut and her channel-swapped copy,
about 0.2 apart, and the threshold is 0.1 (a JPEG re-encode of one image is ~0.04).
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from kiosk.errors import DuplicateFaceError, EnrollmentError, GalleryError
from kiosk.recognition import Recognizer
from kiosk.recognition import gallery as gallery_module
from kiosk.settings import Settings
from tests.helpers import no_face, two_faces, with_gallery, with_recognition, write_image

THRESHOLD = 0.1


@pytest.fixture
def test_settings(settings: Settings) -> Settings:
    return with_recognition(settings, threshold=THRESHOLD)


@pytest.fixture
def rec(test_settings: Settings, make_recognizer) -> Recognizer:
    return make_recognizer(test_settings)


@pytest.fixture
def other_person(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[:, :, ::-1])


def gallery_files(settings: Settings) -> set[str]:
    root = settings.gallery.dir
    return (
        {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if root.exists()
        else set()
    )


def test_enrol_then_identify_round_trip(rec: Recognizer, astronaut, other_person) -> None:
    ada = rec.enroll("Ada Lovelace", [("a1", astronaut)], staff_id="E-17").person
    grace = rec.enroll("Grace Hopper", [("g1", other_person)]).person
    assert ada.id.startswith("ada-lovelace-") and grace.id.startswith("grace-hopper-")
    assert rec.index.size == 2 and rec.index.people == 2

    (face,) = rec.identify(astronaut)
    assert face.match is not None and face.match.is_match
    assert (face.match.person_id, face.match.name) == (ada.id, "Ada Lovelace")
    assert face.match.distance < THRESHOLD
    (face,) = rec.identify(other_person)
    assert face.match is not None and face.match.person_id == grace.id

    stored = rec.store.get(ada.id)
    assert stored.staff_id == "E-17" and len(stored.images) == 1
    assert (rec.store.images_dir / ada.id / stored.images[0].file).is_file()


def test_unknown_face_is_not_matched(rec: Recognizer, astronaut, other_person) -> None:
    rec.enroll("Ada", [("a1", astronaut)])
    (face,) = rec.identify(other_person)
    assert face.match is not None
    assert not face.match.is_match and face.match.person_id is None
    assert face.match.distance > THRESHOLD


def test_several_images_become_several_templates(rec: Recognizer, astronaut) -> None:
    darker = (astronaut * 0.6).astype(np.uint8)
    person = rec.enroll("Ada", [("light", astronaut), ("dark", darker)]).person
    assert len(person.images) == 2 and rec.index.size == 2 and rec.index.people == 1
    assert rec.cache is not None
    templates = np.stack([rec.cache.get(i.sha256) for i in person.images])
    mean = templates.mean(axis=0)
    mean /= np.linalg.norm(mean)
    for image in (astronaut, darker):
        (face,) = rec.identify(image)
        assert face.match is not None and face.match.person_id == person.id
        query = rec.embed(image, [face.detection])[0]
        nearest = float(np.linalg.norm(templates - query, axis=1).min())
        assert face.match.distance == pytest.approx(nearest, abs=1e-4)
        assert face.match.distance < float(np.linalg.norm(mean - query))


def test_restart_uses_the_cache_instead_of_recomputing(
    test_settings: Settings, make_recognizer, astronaut, monkeypatch
) -> None:
    rec = make_recognizer(test_settings)
    rec.enroll("Ada", [("a1", astronaut), ("a2", (astronaut * 0.8).astype(np.uint8))])
    restarted = make_recognizer(test_settings, reload=False)
    calls: list[int] = []
    assert restarted.embedder is not None
    original = restarted.embedder.embed
    monkeypatch.setattr(restarted.embedder, "embed", lambda f: calls.append(len(f)) or original(f))
    restarted.reload_gallery()
    assert calls == [] and restarted.index.size == 2

    # A different preprocessing setting is a different cache: recomputed, never mixed.
    other = make_recognizer(with_recognition(test_settings, margin_ratio=0.3), reload=False)
    monkeypatch.setattr(other.embedder, "embed", lambda f: calls.append(len(f)) or original(f))
    other.reload_gallery()
    assert calls == [2] and other.index.size == 2


def test_remove_deletes_images_and_cached_embeddings(rec: Recognizer, astronaut) -> None:
    person = rec.enroll("Ada", [("a1", astronaut)]).person
    assert rec.cache is not None and len(rec.cache) == 1
    removed = rec.remove(person.id)
    assert removed.id == person.id
    assert not (rec.store.images_dir / person.id).exists()
    assert rec.index.size == 0 and len(rec.cache) == 0
    assert rec.cache.path.exists() and not np.load(rec.cache.path)["hashes"].size
    (face,) = rec.identify(astronaut)
    assert face.match is not None and not face.match.is_match
    with pytest.raises(GalleryError, match="no enrolled person"):
        rec.remove(person.id)
    with pytest.raises(GalleryError, match="not a valid person id"):
        rec.remove("../etc")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "the name is empty"),
        ("   \t ", "the name is empty"),
        ("x" * 101, "101 characters long; the limit is 100"),
        ("Ada/Lovelace", "path separator"),
        ("..\\..\\evil", "path separator"),
        ("Ada\x00Lovelace", "control or invisible character (U+0000)"),
        ("Ada\nLovelace", "control or invisible character (U+000A)"),
        ("Ada\u202eLovelace", "control or invisible character (U+202E)"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(
    rec: Recognizer, test_settings: Settings, astronaut, name: str, reason: str
) -> None:
    before = gallery_files(test_settings)
    with pytest.raises(EnrollmentError) as info:
        rec.enroll(name, [("a1", astronaut)])
    ((what, why),) = info.value.problems
    assert what == "name" and reason in why
    assert gallery_files(test_settings) == before


@pytest.mark.parametrize("name", ["Zoë Ångström", "李小龍", "O'Brien-Smith Jr.", " Ada "])
def test_unusual_but_valid_names_are_kept_as_typed(rec: Recognizer, astronaut, name: str) -> None:
    person = rec.enroll(name, [("a1", astronaut)]).person
    assert person.name == name.strip()
    assert rec.store.get(person.id).name == name.strip()
    assert person.id.isascii() and "/" not in person.id


def test_zero_or_several_faces_refuse_the_whole_enrolment(
    rec: Recognizer, test_settings: Settings, astronaut
) -> None:
    with pytest.raises(EnrollmentError) as info:
        rec.enroll(
            "Ada", [("good", astronaut), ("empty", no_face()), ("pair", two_faces(astronaut))]
        )
    problems = dict(info.value.problems)
    assert set(problems) == {"empty", "pair"}
    assert "no usable face" in problems["empty"]
    assert "2 faces found" in problems["pair"]
    assert gallery_files(test_settings) == set()
    assert rec.index.size == 0


def test_enrol_files_reports_every_bad_file_at_once(
    rec: Recognizer, test_settings: Settings, astronaut, tmp_path: Path
) -> None:
    good = write_image(tmp_path / "good.jpg", astronaut)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    noface = write_image(tmp_path / "wall.png", no_face())
    with pytest.raises(EnrollmentError) as info:
        rec.enroll_files("Ada", [good, empty, text, noface, tmp_path / "missing.jpg"])
    named = {Path(what).name for what, _ in info.value.problems}
    assert named == {"empty.jpg", "notes.png", "wall.png", "missing.jpg"}
    assert gallery_files(test_settings) == set()

    result = rec.enroll_files("Ada", [good])
    assert len(result.person.images) == 1


def test_same_face_under_a_second_name_warns_or_refuses(
    test_settings: Settings, make_recognizer, astronaut
) -> None:
    rec = make_recognizer(test_settings)
    ada = rec.enroll("Ada", [("a1", astronaut)]).person
    result = rec.enroll("Not Ada", [("n1", astronaut)])
    assert len(result.warnings) == 1
    assert "matches Ada" in result.warnings[0] and ada.id in result.warnings[0]

    strict = make_recognizer(with_gallery(test_settings, duplicate_policy="refuse"))
    before = gallery_files(test_settings)
    with pytest.raises(DuplicateFaceError, match="duplicate_policy = refuse"):
        strict.enroll("Third Name", [("t1", astronaut)])
    assert gallery_files(test_settings) == before


def test_an_image_unlike_the_others_gets_a_warning(
    rec: Recognizer, astronaut, other_person
) -> None:
    shots = [
        ("s1", astronaut),
        ("s2", np.ascontiguousarray(astronaut[8:, :])),
        ("s3", np.ascontiguousarray(astronaut[:, 4:])),
        ("wrong", other_person),
    ]
    result = rec.enroll("Ada", shots)
    assert [w.split()[0] for w in result.warnings] == ["wrong"]


def test_disk_full_mid_enrolment_leaves_nothing_behind(
    rec: Recognizer, test_settings: Settings, astronaut, monkeypatch
) -> None:
    real_write = gallery_module.atomic_write_bytes
    writes: list[Path] = []

    def fill_disk_on_second_write(path: Path, data: bytes) -> None:
        writes.append(path)
        if len(writes) == 2:
            raise GalleryError("the disk is full") from OSError(errno.ENOSPC, "No space left")
        real_write(path, data)

    monkeypatch.setattr(gallery_module, "atomic_write_bytes", fill_disk_on_second_write)
    with pytest.raises(GalleryError, match="disk is full"):
        rec.enroll("Ada", [("a1", astronaut), ("a2", (astronaut * 0.8).astype(np.uint8))])
    assert len(writes) == 2
    assert rec.store.list_people() == []
    assert not any("images/" in f or ".staging/" in f for f in gallery_files(test_settings))


def test_crashed_enrolment_leftovers_are_cleaned_on_start(
    test_settings: Settings, make_recognizer, astronaut
) -> None:
    rec = make_recognizer(test_settings)
    rec.enroll("Ada", [("a1", astronaut)])
    half = test_settings.gallery.dir / ".staging" / "bob-000000.dead"
    half.mkdir(parents=True)
    (half / "0123.jpg").write_bytes(b"half written")
    again = make_recognizer(test_settings)
    assert not half.exists()
    assert [p.name for p in again.store.list_people()] == ["Ada"]


def test_a_damaged_person_folder_is_skipped_not_fatal(
    rec: Recognizer, test_settings: Settings, astronaut, caplog
) -> None:
    rec.enroll("Ada", [("a1", astronaut)])
    broken = test_settings.gallery.dir / "images" / "broken-123456"
    broken.mkdir()
    (broken / "person.json").write_text("{not json")
    rec.reload_gallery()
    assert [p.name for p in rec.people.values()] == ["Ada"]
    assert "broken-123456" in caplog.text


def odd_but_valid_images(astronaut: np.ndarray, folder: Path) -> dict[str, Path]:
    """The astronaut as a phone, a scanner or an editor might save her."""
    from PIL import Image

    paths: dict[str, Path] = {}
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, k=1)))  # 90° CCW on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° CW to display": the photo is upright once EXIF is applied
    paths["exif-rotated"] = folder / "phone.jpg"
    sideways.save(paths["exif-rotated"], exif=exif, quality=95)
    gray = Image.fromarray(astronaut).convert("L")
    paths["grayscale"] = folder / "gray.png"
    gray.save(paths["grayscale"])
    paths["16-bit"] = folder / "scan16.png"
    Image.fromarray(np.asarray(gray, np.uint16) * 257).save(paths["16-bit"])
    rgba = Image.fromarray(astronaut).convert("RGBA")
    paths["rgba"] = folder / "cutout.png"
    rgba.save(paths["rgba"])
    return paths


@pytest.mark.parametrize("kind", ["exif-rotated", "grayscale", "16-bit", "rgba"])
def test_odd_image_formats_enrol_and_are_recognised(
    rec: Recognizer, astronaut, tmp_path: Path, kind: str
) -> None:
    path = odd_but_valid_images(astronaut, tmp_path)[kind]
    person = rec.enroll_files("Ada", [path]).person
    from kiosk.imaging import load_image

    image = load_image(path, max_pixels=10**8, max_bytes=10**8)
    assert image.shape == (512, 512, 3)  # upright, 8-bit RGB
    (face,) = rec.identify(image)
    assert face.match is not None and face.match.person_id == person.id


def test_sideways_photo_without_exif_handling_would_fail(rec: Recognizer, astronaut) -> None:
    """Guards the EXIF test above: the raw sideways pixels hold no usable upright face."""
    sideways = np.ascontiguousarray(np.rot90(astronaut, k=1))
    with pytest.raises(EnrollmentError, match="was not enrolled"):
        rec.enroll("Ada", [("sideways", sideways)])


def test_too_large_image_is_refused_before_decoding(
    test_settings: Settings, make_recognizer, astronaut, tmp_path: Path
) -> None:
    import dataclasses

    small_limit = dataclasses.replace(
        test_settings, images=dataclasses.replace(test_settings.images, max_pixels=100_000)
    )
    rec = make_recognizer(small_limit)
    path = write_image(tmp_path / "big.png", astronaut)  # 262,144 pixels
    with pytest.raises(EnrollmentError) as info:
        rec.enroll_files("Ada", [path])
    ((what, why),) = info.value.problems
    assert what == str(path) and "512x512" in why and "images.max_pixels" in why
    assert gallery_files(small_limit) == set()


def test_a_bad_staff_id_is_named_as_such(rec: Recognizer, astronaut) -> None:
    with pytest.raises(EnrollmentError, match="the staff id cannot be used") as info:
        rec.enroll("Ada", [("a1", astronaut)], staff_id="E/17")
    assert info.value.problems == [
        ("staff id", "the staff id contains a path separator ('/' or '\\')")
    ]
