"""The offline-first FaceNet weights search and the real loading code."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from kiosk.errors import DetectionOnlyError, ModelLoadError
from kiosk.recognition import Recognizer
from kiosk.recognition.weights import (
    VGGFACE2_FILENAME,
    facenet_cache_path,
    load_facenet,
    load_weights_file,
)
from kiosk.settings import Settings, settings_for_data_dir

CPU = torch.device("cpu")


def search(weights_path: Path, gallery: Path, allow_download: bool = False):
    return load_facenet(
        weights_path=weights_path, gallery_dir=gallery, allow_download=allow_download, device=CPU
    )


def test_explicit_path_loads_an_eval_model_with_the_file_fingerprint(
    facenet_weights_file: Path, tmp_path: Path
) -> None:
    loaded = search(facenet_weights_file, tmp_path / "gallery")
    assert loaded.source == "recognition.weights_path"
    assert loaded.path == facenet_weights_file
    digest = hashlib.sha256(facenet_weights_file.read_bytes()).hexdigest()
    assert loaded.fingerprint == digest[:16]
    assert not loaded.model.training
    out = loaded.model(torch.zeros(2, 3, 160, 160))
    assert out.shape == (2, 512)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-4)


def test_gallery_weights_then_facenet_cache_are_searched_in_order(
    facenet_weights_file: Path, tmp_path: Path
) -> None:
    gallery = tmp_path / "gallery"
    cache = facenet_cache_path()
    assert str(cache).startswith(str(tmp_path.parent.parent))  # TORCH_HOME is a temp dir
    cache.parent.mkdir(parents=True)
    shutil.copy(facenet_weights_file, cache)
    assert search(Path(), gallery).source == "facenet-pytorch cache"

    (gallery / "weights").mkdir(parents=True)
    shutil.copy(facenet_weights_file, gallery / "weights" / VGGFACE2_FILENAME)
    assert search(Path(), gallery).source.startswith("gallery weights/")

    assert search(facenet_weights_file, gallery).source == "recognition.weights_path"


def test_release_style_file_with_a_classifier_head_loads(
    facenet_weights_file: Path, tmp_path: Path
) -> None:
    state = torch.load(facenet_weights_file, weights_only=True)
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    path = tmp_path / VGGFACE2_FILENAME
    torch.save(state, path)
    model = load_weights_file(path, CPU, source="t").model
    assert not hasattr(model, "logits")


def bad_files(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 100)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    other = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    nan = tmp_path / "nan.pt"
    state = torch.load(good, weights_only=True)
    state["last_linear.weight"][0, 0] = float("nan")
    torch.save(state, nan)
    pickle_obj = tmp_path / "object.pt"
    torch.save({"not": "tensors"}, pickle_obj)
    return {
        "corrupt": (corrupt, "not a readable torch weights file"),
        "truncated": (truncated, "not a readable torch weights file"),
        "other model": (other, "not InceptionResnetV1 weights"),
        "nan": (nan, "NaN or infinite"),
        "not tensors": (pickle_obj, "no state dict of tensors"),
    }


def test_each_kind_of_bad_file_is_refused_with_its_reason(
    facenet_weights_file: Path, tmp_path: Path
) -> None:
    for label, (path, reason) in bad_files(tmp_path, facenet_weights_file).items():
        with pytest.raises(ModelLoadError, match=reason):
            load_weights_file(path, CPU, source=label)


def test_a_bad_explicit_file_falls_through_to_the_next_candidate(
    facenet_weights_file: Path, tmp_path: Path
) -> None:
    gallery = tmp_path / "gallery"
    (gallery / "weights").mkdir(parents=True)
    shutil.copy(facenet_weights_file, gallery / "weights" / VGGFACE2_FILENAME)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"nope")
    assert search(broken, gallery).source.startswith("gallery weights/")


def test_nothing_found_lists_every_place_tried_and_the_fix(tmp_path: Path) -> None:
    explicit = tmp_path / "missing.pt"
    gallery = tmp_path / "gallery"
    with pytest.raises(ModelLoadError) as info:
        search(explicit, gallery)
    err = info.value
    places = [where for where, _ in err.tried]
    assert len(places) == 4
    assert str(explicit) in places[0]
    assert str(gallery / "weights" / VGGFACE2_FILENAME) in places[1]
    assert str(facenet_cache_path()) in places[2]
    assert "allow_download = false" in err.tried[3][1]
    text = str(err)
    assert "KIOSK_RECOGNITION_WEIGHTS_PATH" in text and "KIOSK_RECOGNITION_ALLOW_DOWNLOAD" in text
    assert all(where in text for where in places)


def release_like_state(good: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(good, weights_only=True)
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    return state


def test_download_goes_through_facenet_pytorchs_own_loader_into_its_cache(
    facenet_weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facenet_pytorch.models.inception_resnet_v1 as irv1

    calls: list[tuple[str, str]] = []

    def fake_download(url: str, dst: str, *args: object, **kwargs: object) -> None:
        calls.append((url, dst))
        torch.save(release_like_state(facenet_weights_file), dst)

    monkeypatch.setattr(irv1, "download_url_to_file", fake_download)
    loaded = search(Path(), tmp_path / "gallery", allow_download=True)
    assert loaded.source == "downloaded"
    assert len(calls) == 1 and calls[0][0].endswith(VGGFACE2_FILENAME)
    assert Path(calls[0][1]) == facenet_cache_path() == loaded.path
    # Next time it is found offline, without a download.
    assert search(Path(), tmp_path / "gallery", allow_download=True).source == (
        "facenet-pytorch cache"
    )
    assert len(calls) == 1


def test_a_failed_download_is_reported_not_raised_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facenet_pytorch.models.inception_resnet_v1 as irv1

    def offline(url: str, dst: str, *args: object, **kwargs: object) -> None:
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(irv1, "download_url_to_file", offline)
    with pytest.raises(ModelLoadError) as info:
        search(Path(), tmp_path / "gallery", allow_download=True)
    assert info.value.tried[-1] == (
        "facenet-pytorch download",
        "ConnectionError: Name or service not known",
    )
    assert not facenet_cache_path().exists()


def test_without_weights_the_kiosk_runs_detection_only(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    settings: Settings = settings_for_data_dir(tmp_path / "data")
    recognizer = Recognizer.create(settings)
    assert recognizer.detection_only
    assert isinstance(recognizer.model_error, ModelLoadError)
    faces = recognizer.identify(astronaut)
    assert len(faces) == 1 and faces[0].match is None
    with pytest.raises(DetectionOnlyError, match="KIOSK_RECOGNITION_WEIGHTS_PATH") as info:
        recognizer.enroll("Ada", [("shot", astronaut)])
    assert isinstance(info.value.__cause__, ModelLoadError)
    assert not (settings.gallery.dir / "images").exists()
