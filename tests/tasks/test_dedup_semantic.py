"""The numerical core of semantic dedup: k-means on the sphere, nearest earlier neighbours in blocks,
SemDeDup's cut and density-based quotas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.dedup_semantic import (
    assign,
    cluster_complexity,
    density_quotas,
    fit_centroids,
    n_clusters,
    nearest_earlier,
    normalized,
    prune_to_share,
    removed_at,
)


def topics(rng: np.random.Generator, n_topics: int, per_topic: int, spread: float, dim: int = 16) -> np.ndarray:
    centres = normalized(rng.normal(size=(n_topics, dim)))
    return normalized(np.repeat(centres, per_topic, axis=0) + spread * rng.normal(size=(n_topics * per_topic, dim)))


def test_kmeans_on_the_sphere_finds_separated_topics():
    rng = np.random.default_rng(0)
    vectors = topics(rng, 4, 50, 0.05)

    centroids = fit_centroids(vectors, 4, seed=0, iterations=50)
    labels, cosine = assign(vectors, centroids)

    assert np.allclose(np.linalg.norm(centroids, axis=1), 1, atol=1e-5)
    assert [len(set(labels[i * 50 : (i + 1) * 50])) for i in range(4)] == [1, 1, 1, 1]
    assert len(set(labels)) == 4 and cosine.min() > 0.9


def test_k_follows_the_target_cluster_size():
    assert [n_clusters(n, 1000) for n in (0, 1, 1000, 1001, 50_000)] == [1, 1, 1, 2, 50]


def test_nearest_earlier_names_the_closest_document_ranked_before():
    a, b = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    vectors = normalized(np.stack([a, b, a + 0.01 * b, b]))

    best, of = nearest_earlier(vectors)

    assert of.tolist() == [-1, 0, 0, 1]
    assert best[0] == -np.inf and best[1] == pytest.approx(0) and best[3] == pytest.approx(1)
    assert removed_at(best, 0.95).tolist() == [False, False, True, True]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(0, 10_000))
def test_blocks_give_the_pairwise_answer(n, block, seed):
    vectors = normalized(np.random.default_rng(seed).normal(size=(n, 5)))
    sims = vectors @ vectors.T

    best, of = nearest_earlier(vectors, block=block)

    for i in range(1, n):
        assert best[i] == pytest.approx(sims[i, :i].max(), abs=1e-6)
        assert sims[i, of[i]] == pytest.approx(best[i], abs=1e-6) and of[i] < i


def test_prune_to_share_removes_the_most_redundant_first():
    nearest = np.array([-np.inf, 0.2, 0.99, 0.5, 0.99], dtype=np.float32)

    assert prune_to_share(nearest, 0.6).tolist() == [False, False, True, False, True]
    assert prune_to_share(nearest, 1.0).sum() == 0 and prune_to_share(nearest, 0.0).sum() == 5


def test_complex_clusters_keep_more_and_quotas_sum_to_the_target():
    rng = np.random.default_rng(1)
    tight, loose = topics(rng, 1, 100, 0.02), topics(rng, 1, 100, 0.6)
    vectors = np.concatenate([tight, loose])
    labels = np.repeat([0, 1], 100).astype(np.int32)
    centroids = normalized(np.stack([tight.mean(0), loose.mean(0)]))

    complexity = cluster_complexity(vectors, labels, centroids)
    quotas = density_quotas(np.array([100, 100]), complexity, keep=100, temperature=complexity.max() / 2)

    assert complexity[1] > complexity[0]
    assert quotas.sum() == 100 and quotas[1] > quotas[0]


@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=12),
    st.floats(0.01, 10),
    st.integers(0, 400),
    st.integers(0, 1000),
)
def test_quotas_never_exceed_a_cluster_and_reach_the_target_when_they_can(sizes, temperature, keep, seed):
    sizes = np.array(sizes)
    complexity = np.random.default_rng(seed).random(len(sizes)).astype(np.float32)

    quotas = density_quotas(sizes, complexity, keep, temperature)

    assert (quotas <= sizes).all() and (quotas >= 0).all()
    assert quotas.sum() == min(keep, sizes.sum())
