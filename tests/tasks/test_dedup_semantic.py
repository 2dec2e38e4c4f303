"""The numerical core of semantic dedup: k-means on the sphere, nearest earlier neighbours in blocks,
SemDeDup's cut and density-based quotas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tasks.dedup_semantic as sem
from tasks.clusters import INDEX_PREFIX, keeper_scores, position
from tasks.dedup_semantic.geometry import (
    assign,
    centroid_distances,
    cluster_complexity,
    density_quotas,
    fit_centroids,
    n_clusters,
    nearest_earlier,
    normalized,
    prune_to_share,
    removed_at,
)
from tasks.errors import InputError


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

    distance = centroid_distances(vectors, labels, centroids)
    spread = np.bincount(labels, weights=distance) / np.bincount(labels)
    complexity = cluster_complexity(spread, centroids)
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


# The stage's steps over Arrow tables: neighbours in keeper order, the decisions, the marks.


def assigned_rows(vectors: np.ndarray, clusters: list[int], positions: list[str], n_chars=None) -> pa.Table:
    return pa.table(
        {
            "position": positions,
            "cluster": pa.array(clusters, pa.int32()),
            "distance": pa.array(np.full(len(positions), 0.1), pa.float32()),
            "n_chars": pa.array(n_chars or [100] * len(positions), pa.int64()),
            "keeper_score": pa.nulls(len(positions), pa.float64()),
            "embedding": pa.array(list(vectors.astype(np.float32)), pa.list_(pa.float32())),
        },
        schema=sem.ASSIGNED_SCHEMA,
    )


def stats_of(clusters: list[int], sizes: list[int], dim: int, spread=None) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "cluster": pa.array(clusters, pa.int32()),
            "space": [sem.ENGLISH] * len(clusters),
            "size": pa.array(sizes, pa.int64()),
            "spread": spread or [0.1] * len(clusters),
            "centroid": list(normalized(rng.normal(size=(len(clusters), dim)))),
        },
        schema=sem.CLUSTER_STATS_SCHEMA,
    )


def pos(i: int, shard: str = "s") -> str:
    return position(shard, i)


def test_neighbours_follow_the_keeper_order_and_stay_inside_a_cluster():
    a, b = np.eye(4)[0], np.eye(4)[1]
    vectors = normalized(np.stack([a, a + 0.05 * b, a, b]))
    rows = assigned_rows(vectors, [0, 0, 1, 0], [pos(0), pos(1), pos(2), pos(3)], n_chars=[10, 500, 10, 10])

    first, _ = sem.cluster_neighbours(rows, "first", block=2)
    longest, stats = sem.cluster_neighbours(rows, "longest", block=2)

    by_first = {r["position"]: r for r in first.to_pylist()}
    assert by_first[pos(1)]["nearest_of"] == pos(0) and by_first[pos(1)]["nearest"] > 0.99
    assert by_first[pos(0)]["nearest"] is None and by_first[pos(2)]["nearest"] is None  # alone in cluster 1
    by_longest = {r["position"]: r for r in longest.to_pylist()}
    assert by_longest[pos(1)]["rank"] == 0 and by_longest[pos(0)]["nearest_of"] == pos(1)
    assert dict(zip(stats.column("cluster").to_pylist(), stats.column("size").to_pylist())) == {0: 3, 1: 1}


def chain() -> pa.Table:
    """Cluster 0: d0 <- d1 (0.95) <- d2 (0.9 to d1), d3 far; cluster 1: d4, d5 (0.7 to d4)."""
    return pa.table(
        {
            "position": [pos(i) for i in range(6)],
            "cluster": pa.array([0, 0, 0, 0, 1, 1], pa.int32()),
            "rank": pa.array([0, 1, 2, 3, 0, 1], pa.int32()),
            "nearest": pa.array([None, 0.95, 0.9, 0.2, None, 0.7], pa.float32()),
            "nearest_of": [None, pos(0), pos(1), pos(0), None, pos(4)],
        },
        schema=sem.NEIGHBOUR_SCHEMA,
    )


def test_the_cut_removes_at_the_threshold_and_names_a_kept_document_up_the_chain():
    decisions, report = sem.decide(chain(), stats_of([0, 1], [4, 2], 8), sem.DedupSemanticParams(threshold=0.9))

    rows = {r["position"]: r for r in decisions.to_pylist()}
    assert [p for p, r in rows.items() if r["reason"]] == [pos(1), pos(2)]
    assert rows[pos(2)]["keeper"] == pos(0)  # its nearest, d1, went too
    assert rows[pos(3)]["keeper"] == pos(3) and rows[pos(3)]["cosine"] == pytest.approx(0.2)
    assert rows[pos(5)]["size"] == 2 and rows[pos(5)]["cluster"] == 1
    assert report["removed_copies"] == 2 and report["pruned"] == 0 and report["embedded"] == 6


def test_semdedup_prune_keeps_the_share_and_removes_the_most_redundant():
    params = sem.DedupSemanticParams(threshold=0.99, prune="semdedup", keep_share=0.5)

    decisions, report = sem.decide(chain(), stats_of([0, 1], [4, 2], 8), params)

    removed = [r["position"] for r in decisions.to_pylist() if r["reason"]]
    assert removed == [pos(1), pos(2), pos(5)]  # 0.95, 0.9, 0.7 go; 0.2 and the firsts stay
    assert {r["reason"] for r in decisions.to_pylist() if r["reason"]} == {sem.PRUNE_REASON}
    assert report["pruned"] == 3


def test_density_prune_gives_the_complex_cluster_more_and_every_cluster_one():
    rng = np.random.default_rng(2)
    n = 40
    neighbours = pa.table(
        {
            "position": [pos(i) for i in range(2 * n)],
            "cluster": pa.array([0] * n + [1] * n, pa.int32()),
            "rank": pa.array(list(range(n)) * 2, pa.int32()),
            "nearest": pa.array([None, *rng.uniform(0, 0.8, n - 1)] * 2, pa.float32()),
            "nearest_of": [None, *[pos(0)] * (n - 1), None, *[pos(n)] * (n - 1)],
        },
        schema=sem.NEIGHBOUR_SCHEMA,
    )
    stats = stats_of([0, 1], [n, n], 8, spread=[0.02, 0.4])  # cluster 1 is the spread-out one
    params = sem.DedupSemanticParams(prune="density", keep_share=0.25, density_temperature=0.2)

    decisions, report = sem.decide(neighbours, stats, params)

    kept = {c["cluster"]: c["kept"] for c in report["largest_clusters"]}
    assert kept[1] > kept[0] >= 1
    assert sum(kept.values()) == pytest.approx(0.25 * 2 * n, abs=1)
    assert all(r["keeper"] in {pos(0), pos(n)} for r in decisions.to_pylist() if r["reason"])


def test_documents_of_the_index_rank_first_are_never_decided_and_are_kept_neighbours():
    indexed = f"{INDEX_PREFIX}batch/s\t{0:012d}"
    neighbours = pa.table(
        {
            "position": [indexed, pos(1)],
            "cluster": pa.array([0, 0], pa.int32()),
            "rank": pa.array([0, 1], pa.int32()),
            "nearest": pa.array([None, 0.97], pa.float32()),
            "nearest_of": [None, indexed],
        },
        schema=sem.NEIGHBOUR_SCHEMA,
    )
    rows = assigned_rows(normalized(np.ones((2, 3))), [0, 0], [pos(1), indexed])

    ranked, _ = sem.cluster_neighbours(rows, "longest", block=4)
    decisions, _ = sem.decide(
        neighbours, stats_of([0], [2], 3), sem.DedupSemanticParams(prune="semdedup", keep_share=0.1)
    )

    assert ranked.column("position").to_pylist() == [indexed, pos(1)]
    assert decisions.to_pylist() == [
        {
            "position": pos(1),
            "keeper": indexed,
            "size": 2,
            "cluster": 0,
            "cosine": pytest.approx(0.97),
            "reason": sem.REASON,
        }
    ]


def test_marks_carry_cluster_cosine_and_kept_document_and_leave_unembedded_rows():
    table = pa.table({"id": ["a", "b", "c"], "text": ["x", "y", ""]})
    shard = pa.table({"position": [pos(0), pos(1), pos(2)]})
    clusters = pa.table(
        {
            "position": [pos(0), pos(1)],
            "keeper": [pos(0), pos(0)],
            "size": pa.array([2, 2], pa.int64()),
            "cluster": pa.array([3, 3], pa.int32()),
            "cosine": pa.array([None, 0.9], pa.float32()),
            "reason": [None, sem.REASON],
        },
        schema=sem.CLUSTER_SCHEMA,
    )

    out = sem.apply(table, sem.DedupSemanticParams(), shard, clusters)

    assert out.kept.column("id").to_pylist() == ["a", "c"]
    assert out.kept.column("semdup_cluster").to_pylist() == [3, None]
    rejected = out.rejected.to_pylist()[0]
    assert (rejected["semdup_of"], rejected["reason"], rejected["semdup_cluster"]) == (pos(0), sem.REASON, 3)


def test_sampling_for_kmeans_depends_on_positions_not_on_how_shards_split_them():
    positions = [pos(i, f"s{i % 3}") for i in range(2000)]

    whole = sem.sample_mask(positions, 0.1, seed=1)
    parts = np.concatenate([sem.sample_mask(positions[:700], 0.1, 1), sem.sample_mask(positions[700:], 0.1, 1)])

    assert (whole == parts).all() and 120 < whole.sum() < 280
    assert not (whole == sem.sample_mask(positions, 0.1, seed=2)).all()


def test_each_language_goes_to_its_space_and_uncovered_ones_to_none():
    params = sem.DedupSemanticParams().embedding_params()
    only_english = sem.DedupSemanticParams(multilingual_encoder=None).embedding_params()
    other = sem.DedupSemanticParams(multilingual_encoder="some/labse").embedding_params()

    assert [params.space(lang) for lang in ("en", None, "de", "sw")] == [
        sem.ENGLISH,
        sem.ENGLISH,
        sem.MULTILINGUAL,
        None,
    ]
    assert only_english.space("de") is None and other.space("sw") == sem.MULTILINGUAL


def test_embeddings_put_a_paraphrase_near_its_original_and_skip_empty_text():
    table = pa.table(
        {
            "text": [
                "The central bank raised interest rates by half a point on Tuesday to fight inflation.",
                "On Tuesday the central bank lifted interest rates by 0.5 points in its fight against inflation.",
                "A recipe for sourdough bread needs flour, water, salt and a starter.",
                "   ",
            ],
            "lang": ["en", "en", "en", "en"],
        }
    )

    out = sem.embed(table, sem.DedupSemanticParams().embedding_params(), "s")

    assert out.column("space").to_pylist() == [sem.ENGLISH] * 3 + [None]
    vectors = sem.matrix(out.column("embedding").filter(pc.is_valid(out.column("space"))))
    assert float(vectors[0] @ vectors[1]) > 0.7 > 0.3 > float(vectors[0] @ vectors[2])


def test_a_batch_with_nothing_embedded_decides_nothing():
    empty_stats = sem.CLUSTER_STATS_SCHEMA.empty_table()

    for prune in ("none", "semdedup", "density"):
        decisions, report = sem.decide(
            sem.NEIGHBOUR_SCHEMA.empty_table(), empty_stats, sem.DedupSemanticParams(prune=prune)
        )

        assert decisions.num_rows == 0 and decisions.schema == sem.CLUSTER_SCHEMA
        assert (report["embedded"], report["clusters"], report["largest_clusters"]) == (0, 0, [])


def test_keeper_scores_name_the_stage_whose_column_is_missing_or_not_numeric():
    table = pa.table({"text": ["a", "b"], "words": ["x", "y"], "score": [0.5, float("nan")]})
    by_score = sem.DedupSemanticParams(keeper="highest_score", keeper_column="score").embedding_params()

    assert keeper_scores(table, "highest_score", "score", "dedup_semantic").to_pylist() == [0.5, None]
    assert keeper_scores(table, "first", "missing", "dedup_semantic").null_count == 2
    with pytest.raises(InputError, match="dedup_semantic.keeper_column 'missing' is not a column"):
        sem.embed(table, by_score.model_copy(update={"keeper_column": "missing"}), "s")
    with pytest.raises(InputError, match="dedup_fuzzy.keeper_column 'words' is not numeric"):
        keeper_scores(table, "highest_score", "words", "dedup_fuzzy")


def test_other_languages_go_through_the_multilingual_encoder_in_a_space_of_their_own():
    table = pa.table(
        {
            "text": [
                "Die Zentralbank erhöhte am Dienstag die Zinsen um einen halben Punkt, um die Inflation zu dämpfen.",
                "Am Dienstag erhöhte die Notenbank den Leitzins um 0,5 Punkte im Kampf gegen die Teuerung.",
                "Für ein Sauerteigbrot braucht man Mehl, Wasser, Salz und einen Anstellgut.",
                "Ni ndoto ya kila mtoto kusoma vitabu vingi shuleni.",
            ],
            "lang": ["de", "de", "de", "sw"],
        }
    )

    out = sem.embed(table, sem.DedupSemanticParams().embedding_params(), "s")

    assert out.column("space").to_pylist() == [sem.MULTILINGUAL] * 3 + [None]  # Swahili: USE does not cover it
    vectors = sem.matrix(out.column("embedding").slice(0, 3))
    assert vectors.shape[1] == 512  # USE's, not MiniLM's 384
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
