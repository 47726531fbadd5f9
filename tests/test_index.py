"""Template index (one matmul, nearest template per person) and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.recognition import EmbeddingCache, TemplateIndex
from kiosk.recognition.index import embedding_config_key


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 512)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(v: np.ndarray, distance: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly ``distance`` (L2) from unit vector ``v``."""
    noise = rng.standard_normal(512).astype(np.float32)
    noise -= noise @ v * v
    noise /= np.linalg.norm(noise)
    cos = 1 - distance**2 / 2
    return (cos * v + np.sqrt(1 - cos**2) * noise).astype(np.float32)


def test_empty_index_says_unknown_with_infinite_distance() -> None:
    (m,) = TemplateIndex([], 0.9).match(unit(np.random.default_rng(0), 1))
    assert (m.person_id, m.is_match, m.distance) == (None, False, float("inf"))


@pytest.mark.parametrize("half_from", [10**9, 100])  # float32 scan, then the float16 scan
def test_match_agrees_with_brute_force_and_reports_exact_distances(
    half_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TemplateIndex, "HALF_PRECISION_FROM", half_from)
    rng = np.random.default_rng(1)
    vecs = unit(rng, 3000)
    ids = [f"p{i % 600:04d}" for i in range(3000)]  # 5 templates per person, interleaved
    index = TemplateIndex([(pid, pid.upper(), v) for pid, v in zip(ids, vecs, strict=True)], 0.9)
    assert (index.size, index.people) == (3000, 600)
    assert (index._half is not None) == (half_from < 3000)
    queries = np.stack([near(vecs[i], 0.5, rng) for i in (5, 1234, 2999)])
    for q, m in zip(queries, index.match(queries), strict=True):
        dists = np.linalg.norm(vecs - q, axis=1)
        best = int(np.argmin(dists))
        assert m.person_id == ids[best] and m.name == ids[best].upper()
        assert m.distance == pytest.approx(float(dists[best]), abs=1e-5)
        assert m.is_match


def test_a_persons_distance_is_to_their_nearest_template() -> None:
    rng = np.random.default_rng(2)
    a1, a2, b = unit(rng, 3)
    index = TemplateIndex([("a", "A", a1), ("a", "A", a2), ("b", "B", b)], 0.9)
    q = near(a2, 0.3, rng)
    (m,) = index.match(q[None])
    assert m.person_id == "a"
    assert m.distance == pytest.approx(0.3, abs=1e-4)  # to a2, not to a1 or to their mean


def test_threshold_is_inclusive_and_unknown_keeps_the_nearest_for_diagnostics() -> None:
    rng = np.random.default_rng(3)
    (v,) = unit(rng, 1)
    index = TemplateIndex([("a", "A", v)], 0.6)
    inside, outside = near(v, 0.59, rng), near(v, 0.61, rng)
    m_in, m_out = index.match(np.stack([inside, outside]))
    assert m_in.is_match and m_in.person_id == "a"
    assert not m_out.is_match and m_out.person_id is None and m_out.name is None
    assert m_out.nearest_id == "a" and m_out.distance == pytest.approx(0.61, abs=1e-4)
    assert index.with_threshold(0.7).match(outside[None])[0].is_match


def test_cache_round_trips_and_prunes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    key = embedding_config_key("abc", margin_ratio=0.2)
    cache = EmbeddingCache(tmp_path, key)
    v1, v2 = unit(rng, 2)
    cache.put("h1", v1)
    cache.put("h2", v2)
    cache.save()
    again = EmbeddingCache(tmp_path, key)
    assert len(again) == 2 and np.array_equal(again.get("h1"), v1)
    again.save(keep={"h2"})
    assert EmbeddingCache(tmp_path, key).get("h1") is None
    assert np.array_equal(EmbeddingCache(tmp_path, key).get("h2"), v2)


def test_cache_key_changes_with_model_and_preprocessing() -> None:
    base = embedding_config_key("m1", margin_ratio=0.2, use_tta_flip=True)
    assert base == embedding_config_key("m1", use_tta_flip=True, margin_ratio=0.2)
    assert base != embedding_config_key("m2", margin_ratio=0.2, use_tta_flip=True)
    assert base != embedding_config_key("m1", margin_ratio=0.3, use_tta_flip=True)
    assert base != embedding_config_key("m1", margin_ratio=0.2, use_tta_flip=False)


def test_corrupt_cache_is_ignored_and_rebuilt(tmp_path: Path, caplog) -> None:
    key = embedding_config_key("abc")
    (tmp_path / f"{key}.npz").write_bytes(b"not a zip file")
    cache = EmbeddingCache(tmp_path, key)
    assert len(cache) == 0
    assert "unreadable embedding cache" in caplog.text
    cache.put("h", unit(np.random.default_rng(5), 1)[0])
    cache.save()
    assert len(EmbeddingCache(tmp_path, key)) == 1
