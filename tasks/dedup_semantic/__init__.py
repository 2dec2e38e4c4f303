"""`dedup_semantic`: documents that say what an earlier one says in other words (SemDeDup, Abbas et
al. 2023), and pruning to a share of the corpus by concept-cluster complexity (Abbas et al. 2024).

Each step is cached on what it depends on, so a new threshold or share embeds and clusters nothing:
- `embed` (per shard): every document's embedding in its language's space (an English encoder, a
  multilingual one), its length and keeper score. Keyed on the encoders and the keeper.
- `cluster_neighbours` (per group of k-means clusters, `geometry`): each embedded document's cluster,
  its distance to the centroid, and its nearest earlier document of that cluster in keeper order with
  their cosine. Keyed on the k-means knobs and the keeper.
- `decide` (over those columns only): SemDeDup's cut at `threshold`, then, with `prune`, the cut or the
  per-cluster quotas that keep `keep_share` of the documents.
- `apply` (per shard): marks and rejects from the decisions.

Documents no encoder embeds (a language neither covers, no text) are in no cluster and always kept.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from tasks import models
from tasks.clusters import INDEX_PREFIX, keeper_scores, marks, position
from tasks.contract import StageOutput, split_by_reason
from tasks.dedup_semantic.geometry import (
    centroid_distances,
    cluster_complexity,
    density_quotas,
    nearest_earlier,
    normalized,
    prune_to_share,
)

VERSION = 1
REASON = "dedup_semantic:cosine"  # within `threshold` of an earlier document of its cluster
PRUNE_REASON = "dedup_semantic:prune"  # removed to reach `keep_share`
ENGLISH, MULTILINGUAL = models.ENGLISH, models.MULTILINGUAL  # the embedding spaces; only one's documents are compared

EMBEDDING_SCHEMA = pa.schema(
    [
        ("position", pa.string()),
        ("n_chars", pa.int64()),
        ("keeper_score", pa.float64()),
        ("space", pa.string()),  # null: not embedded
        ("embedding", pa.list_(pa.float32())),
    ]
)
ASSIGNED_SCHEMA = pa.schema(
    [
        ("position", pa.string()),
        ("cluster", pa.int32()),
        ("distance", pa.float32()),  # cosine distance to the cluster's centroid
        ("n_chars", pa.int64()),
        ("keeper_score", pa.float64()),
        ("embedding", pa.list_(pa.float32())),
    ]
)
NEIGHBOUR_SCHEMA = pa.schema(
    [
        ("position", pa.string()),
        ("cluster", pa.int32()),
        ("rank", pa.int32()),  # in keeper order within the cluster
        ("nearest", pa.float32()),  # cosine to the nearest earlier document of the cluster; null for the first
        ("nearest_of", pa.string()),
    ]
)
CLUSTER_STATS_SCHEMA = pa.schema(
    [
        ("cluster", pa.int32()),
        ("space", pa.string()),
        ("size", pa.int64()),  # documents, those of the persistent index included
        ("spread", pa.float64()),  # mean cosine distance of its documents to the centroid
        ("centroid", pa.list_(pa.float32())),
    ]
)
# What the engine marks shards from (`flows.engine.corpus.Clusters`): a row per embedded document of the batch.
CLUSTER_SCHEMA = pa.schema(
    [
        ("position", pa.string()),
        ("keeper", pa.string()),  # itself when kept, else the kept document its removal leaves standing
        ("size", pa.int64()),
        ("cluster", pa.int32()),
        ("cosine", pa.float32()),
        ("reason", pa.string()),
    ]
)


class EmbeddingParams(BaseModel):
    """What the embeddings depend on (the phase's cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: str
    multilingual_encoder: str | None
    english: tuple[str, ...]
    max_tokens: int
    batch_size: int
    keeper: Literal["first", "longest", "highest_score"]
    keeper_column: str

    def space(self, lang: str | None) -> str | None:
        """The space a document of language `lang` is embedded in (`tasks.models.embedding_space`)."""
        return models.embedding_space(lang, self.english, self.multilingual_encoder)


class NeighbourParams(BaseModel):
    """What the clusters and nearest neighbours depend on beyond the embeddings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_size: int
    kmeans_sample: int
    kmeans_iterations: int
    seed: int
    keeper: Literal["first", "longest", "highest_score"]


class DedupSemanticParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Off by default: on 2 CPU cores the encoder takes ~20 min for 50k documents, the rest of the
    # DAG ~2.5 (bench/dedup_semantic_scale.py; #36's side-by-side at 09f4117). On a GPU, or where
    # rewrites matter, turn it on.
    enabled: bool = Field(False, description="Run semantic dedup (embeds every document: see the cost in the docs).")
    encoder: str = Field(
        models.PACKAGED_MINILM,
        description="Encoder of English documents (and of those with no `lang`): the packaged MiniLM, or a "
        "sentence-transformers model (local dir or hub id).",
    )
    multilingual_encoder: str | None = Field(
        models.PACKAGED_USE,
        description="Encoder of the other languages: the packaged multilingual USE (its 16 training languages), "
        "a sentence-transformers model (every language), or null: only English documents are compared.",
    )
    english: tuple[str, ...] = Field(("en",), description="`lang` labels the English encoder embeds.")
    # all-MiniLM-L6-v2 is trained with max_seq_length 256 (its sentence-transformers config)
    max_tokens: int = Field(256, ge=8, description="Encoder truncation in tokens: a document is its first ones.")
    batch_size: int = Field(128, ge=1, description="Documents per encoder call; bounds memory, not output.")
    # bench/dedup_semantic.py, dev sets (docs/benchmarks.md): at 0.85 rewrites MinHash misses 0.960,
    # GSM8K paraphrases 0.926, distinct topical documents removed 0.33%. SemDeDup's LAION cut is
    # 1 - eps with eps 0.03-0.1 on CLIP embeddings, a different encoder.
    threshold: float = Field(
        0.85,
        gt=0.0,
        le=1.0,
        description="Cosine at or above which a document is a copy of an earlier one of its cluster "
        "(SemDeDup's 1 - eps).",
    )
    # bench/dedup_semantic.py: clusters of ~1,000 lose no pair a full comparison finds; of ~50, 7% of GSM8K.
    cluster_size: int = Field(
        1000, ge=2, description="Target documents per k-means cluster (k = documents / this, per space)."
    )
    kmeans_sample: int = Field(
        50_000,
        ge=100,
        description="Most documents per space that k-means is fitted on (the rest are only assigned): "
        "bounds its memory and time whatever the corpus.",
    )
    kmeans_iterations: int = Field(25, ge=1, description="Lloyd iterations of k-means.")
    seed: int = Field(0, description="k-means initialisation and sample seed: the same clusters on every rerun.")
    keeper: Literal["first", "longest", "highest_score"] = Field(
        "first",
        description="Which document of a pair stays: first in input order, longest, or highest `keeper_column` "
        "(a quality scorer's column moves quality scoring before this stage).",
    )
    keeper_column: str = Field(
        "quality_score", description="Numeric column ranking documents when keeper = highest_score."
    )
    prune: Literal["none", "semdedup", "density"] = Field(
        "none",
        description="After the cut at `threshold`, prune to keep `keep_share` of the embedded documents: "
        "semdedup lowers the cut for every cluster alike; density gives each cluster a quota by its "
        "complexity (spread x distance to other clusters; Abbas et al. 2024), every cluster keeping one.",
    )
    keep_share: float = Field(0.8, gt=0.0, le=1.0, description="Share of the embedded documents a prune keeps.")
    density_temperature: float = Field(
        0.5,
        gt=0.0,
        description="Softmax temperature of density quotas, in units of the mean cluster complexity: lower "
        "gives complex clusters more of the quota.",
    )
    # Abbas et al. 2024 measure a cluster's separation against its nearest 20 centroids
    density_neighbours: int = Field(20, ge=1, description="Nearest other centroids a cluster's separation averages.")
    block: int = Field(1024, ge=1, description="Rows per similarity block; bounds memory, not output.")
    index: str | None = Field(
        None,
        description="Name of a persistent semantic-dedup index in the artifact store: shards an earlier run decided "
        "keep their marks; new shards are compared with every earlier run's kept documents (they stay).",
    )

    def embedding_params(self) -> EmbeddingParams:
        return EmbeddingParams(**self.model_dump(include=set(EmbeddingParams.model_fields)))

    def neighbour_params(self) -> NeighbourParams:
        return NeighbourParams(**self.model_dump(include=set(NeighbourParams.model_fields)))


def embed(table: pa.Table, params: EmbeddingParams, shard_name: str, first_row: int = 0) -> pa.Table:
    """Position, length, keeper score, space and embedding of every row, in row order (EMBEDDING_SCHEMA).
    Each space's documents go through its encoder (CUDA when present), in the caller's batches.
    `first_row`: the table's first row in the shard, when the table is a block of it."""
    scores = keeper_scores(table, params.keeper, params.keeper_column, "dedup_semantic")  # before the encoder
    texts = table.column("text").to_pylist()
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * len(texts)
    spaces = [params.space(lang) if text and text.strip() else None for text, lang in zip(texts, langs)]
    vectors: list[list[float] | None] = [None] * len(texts)
    for space, encoder in ((ENGLISH, params.encoder), (MULTILINGUAL, params.multilingual_encoder)):
        rows = [i for i, s in enumerate(spaces) if s == space]
        if not rows:
            continue
        model = models.load_encoder(encoder, models.default_device())
        embedded = models.encode(model, [texts[i] for i in rows], params.max_tokens, params.batch_size)
        for i, vector in zip(rows, embedded.cpu().numpy()):
            vectors[i] = vector
    positions = [position(shard_name, first_row + row) for row in range(len(texts))]
    return pa.table(
        [
            pa.array(positions, pa.string()),
            pc.utf8_length(table.column("text")).cast(pa.int64()),
            scores,
            pa.array(spaces, pa.string()),
            pa.array(vectors, pa.list_(pa.float32())),
        ],
        schema=EMBEDDING_SCHEMA,
    )


def matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<float32> column of equal-length rows as a (rows, dim) float32 array."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(column) == 0:
        return np.zeros((0, 0), np.float32)
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(column), -1)


def sample_mask(positions: list[str], rate: float, seed: int) -> np.ndarray:
    """Which documents a k-means fit samples: a hash of position and seed under `rate`, so the sample
    does not depend on how the corpus is split into shards or on the order they are read."""
    import hashlib

    if rate >= 1:
        return np.ones(len(positions), dtype=bool)
    bound = int(rate * 2**64)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(f"{seed}\t{p}".encode(), digest_size=8).digest(), "little") < bound
            for p in positions
        ],
        dtype=bool,
    )


def assigned(embeddings: pa.Table, space: str, centroids: np.ndarray, offset: int) -> pa.Table:
    """The rows of one space, each with its nearest centroid's cluster id (`offset` + label) and
    its cosine distance to it (ASSIGNED_SCHEMA)."""
    rows = embeddings.filter(pc.equal(embeddings.column("space"), space))
    vectors = normalized(matrix(rows.column("embedding")))
    if rows.num_rows == 0:
        return ASSIGNED_SCHEMA.empty_table()
    labels = (vectors @ centroids.T).argmax(axis=1).astype(np.int32)
    return pa.table(
        [
            rows.column("position"),
            pa.array(labels + offset, pa.int32()),
            pa.array(centroid_distances(vectors, labels, centroids).astype(np.float32)),
            rows.column("n_chars"),
            rows.column("keeper_score"),
            rows.column("embedding"),
        ],
        schema=ASSIGNED_SCHEMA,
    )


def keeper_order(rows: pa.Table, keeper: str) -> pa.Table:
    """Rows by cluster, then keeper order: documents of the persistent index first (already published),
    then the longest or highest scored when the keeper goes by those, then input order."""
    indexed = pc.starts_with(rows.column("position"), INDEX_PREFIX)
    order = [("cluster", "ascending"), ("indexed", "descending"), ("position", "ascending")]
    if keeper in ("longest", "highest_score"):
        order.insert(2, ("n_chars" if keeper == "longest" else "keeper_score", "descending"))
    return rows.append_column("indexed", indexed).sort_by(order).drop_columns(["indexed"])


def cluster_neighbours(rows: pa.Table, keeper: str, block: int) -> tuple[pa.Table, pa.Table]:
    """For whole clusters of assigned rows: each document's rank and nearest earlier document in its
    cluster (NEIGHBOUR_SCHEMA), and each cluster's size and summed centroid distance."""
    rows = keeper_order(rows, keeper)
    clusters = rows.column("cluster").to_numpy()
    vectors = normalized(matrix(rows.column("embedding")))
    positions = rows.column("position").to_pylist()
    nearest = np.full(len(positions), np.nan, np.float32)
    nearest_of: list[str | None] = [None] * len(positions)
    rank = np.zeros(len(positions), np.int32)
    starts = np.flatnonzero(np.r_[True, clusters[1:] != clusters[:-1]]) if len(clusters) else np.array([], int)
    for start, stop in zip(starts, [*starts[1:], len(clusters)]):
        best, of = nearest_earlier(vectors[start:stop], block)
        rank[start:stop] = np.arange(stop - start)
        has = of >= 0
        nearest[start:stop][has] = best[has]
        for i in np.flatnonzero(has):
            nearest_of[start + i] = positions[start + of[i]]
    neighbours = pa.table(
        [
            rows.column("position"),
            rows.column("cluster"),
            pa.array(rank),
            pa.array(nearest, pa.float32(), mask=np.isnan(nearest)),
            pa.array(nearest_of, pa.string()),
        ],
        schema=NEIGHBOUR_SCHEMA,
    )
    stats = rows.group_by("cluster", use_threads=False).aggregate([("position", "count"), ("distance", "sum")])
    names = {"position_count": "size", "distance_sum": "distance_sum", "cluster": "cluster"}
    stats = stats.rename_columns([names[name] for name in stats.column_names])
    return neighbours, stats.select(["cluster", "size", "distance_sum"])


def decide(neighbours: pa.Table, stats: pa.Table, params: DedupSemanticParams) -> tuple[pa.Table, dict]:
    """The batch's decisions (CLUSTER_SCHEMA, one row per embedded document outside the index) and
    what the report shows of them.

    A document goes when its nearest earlier document of its cluster is at `threshold` or above
    (REASON); with `prune`, more go, the most redundant first, until `keep_share` of the batch's
    embedded documents stay (PRUNE_REASON): semdedup across the batch, density within each cluster
    down to its quota of that share, the quotas shared among what the cut left. A removed document's
    `keeper` is that neighbour, or the first kept one up the chain of nearest earlier documents (a
    neighbour may itself have gone).
    """
    neighbours = neighbours.sort_by([("cluster", "ascending"), ("rank", "ascending")])
    positions = neighbours.column("position").to_pylist()
    n = len(positions)
    index_of = {p: i for i, p in enumerate(positions)}
    of = np.array([-1 if p is None else index_of[p] for p in neighbours.column("nearest_of").to_pylist()], np.int64)
    nearest = neighbours.column("nearest").to_numpy(zero_copy_only=False)
    nearest = np.where(np.isnan(nearest), -np.inf, nearest).astype(np.float32)
    cluster = neighbours.column("cluster").to_numpy()
    batch = ~np.array([p.startswith(INDEX_PREFIX) for p in positions], dtype=bool)
    by_copy = batch & (nearest >= params.threshold)
    pruned = np.zeros(n, dtype=bool)
    stats = stats.sort_by("cluster")
    ids = stats.column("cluster").to_numpy()
    at = np.searchsorted(ids, cluster)  # each row's cluster, as a row of `stats`
    sizes = np.bincount(at[batch], minlength=len(ids)).astype(np.int64)
    complexity = _per_space(stats, params.density_neighbours)
    if params.prune == "semdedup":
        rows = np.flatnonzero(batch)
        pruned[rows] = prune_to_share(nearest[rows], params.keep_share) & (nearest[rows] > -np.inf)
    elif params.prune == "density" and len(ids):
        target = math.ceil(params.keep_share * int(batch.sum()))
        left = np.bincount(at[batch & ~by_copy], minlength=len(ids)).astype(np.int64)  # what the cut leaves
        scale = params.density_temperature * max(float(complexity[left > 0].mean()) if left.any() else 0.0, 1e-12)
        quotas = np.maximum(density_quotas(left, complexity, target, scale), np.minimum(left, 1))
        rows = np.flatnonzero(batch & ~by_copy)
        # by cluster, then most redundant first (later first on ties): each cluster's first rows go
        ordered = rows[np.lexsort((-rows, -nearest[rows], at[rows]))]
        first = np.searchsorted(at[ordered], np.arange(len(ids)))
        for c in np.flatnonzero(left > quotas):
            pruned[ordered[first[c] : first[c] + left[c] - quotas[c]]] = True
    removed = by_copy | pruned
    keeper = np.where(removed, of, np.arange(n))
    while True:  # up the chain to a kept document: every step goes to an earlier rank, so it ends
        step = removed[keeper] & (keeper >= 0)
        if not step.any():
            break
        keeper[step] = of[keeper[step]]
    removed &= keeper >= 0  # a cluster's first document stays whatever the prune (it has no keeper)
    size_of = dict(zip(ids.tolist(), stats.column("size").to_pylist()))
    reasons = np.where(by_copy & removed, REASON, np.where(removed, PRUNE_REASON, None))
    out = pa.table(
        [
            pa.array(positions, pa.string()),
            pa.array([positions[k] if r else p for p, k, r in zip(positions, keeper, removed)], pa.string()),
            pa.array([size_of[c] for c in cluster.tolist()], pa.int64()),
            pa.array(cluster, pa.int32()),
            neighbours.column("nearest"),
            pa.array(reasons.tolist(), pa.string()),
        ],
        schema=CLUSTER_SCHEMA,
    ).filter(pa.array(batch))
    kept = np.bincount(at[batch & ~removed], minlength=len(ids)).astype(np.int64)
    return out, _report(
        nearest[batch], by_copy & removed, pruned & removed & ~by_copy, ids, sizes, kept, complexity, params
    )


def _per_space(stats: pa.Table, neighbours: int) -> np.ndarray:
    """Each cluster's complexity, its separation measured against the centroids of its own space only
    (two encoders' spaces are not comparable)."""
    spaces = np.array(stats.column("space").to_pylist(), dtype=object)
    out = np.zeros(stats.num_rows, np.float32)
    for space in set(spaces.tolist()):
        rows = np.flatnonzero(spaces == space)
        centroids = normalized(matrix(stats.column("centroid").take(pa.array(rows))))
        out[rows] = cluster_complexity(stats.column("spread").to_numpy()[rows], centroids, neighbours)
    return out


COSINE_BINS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
SIZE_BUCKETS = ((1, 10), (11, 100), (101, 1000), (1001, 5000), (5001, None))
CLUSTERS_SHOWN = 20


def _report(nearest, by_copy, pruned, ids, sizes, kept, complexity, params) -> dict:
    """Counts, the histogram of nearest-neighbour cosines and of cluster sizes, and the largest
    clusters' complexity and keep share."""
    has = nearest > -np.inf
    edges = [-1.0, *COSINE_BINS[:-1], 1.0001]
    counts, _ = np.histogram(nearest[has], bins=edges)
    labels = [f"< {COSINE_BINS[0]}"] + [f"{lo}-{hi}" for lo, hi in zip(COSINE_BINS[:-1], COSINE_BINS[1:-1])]
    labels.append(f">= {COSINE_BINS[-2]}")
    size_hist = [  # lists, not mappings: the order survives a JSON round trip
        [f"{lo}+" if hi is None else f"{lo}-{hi}", int(sum(lo <= s and (hi is None or s <= hi) for s in sizes if s))]
        for lo, hi in SIZE_BUCKETS
    ]
    largest = np.argsort(-sizes, kind="stable")[:CLUSTERS_SHOWN]
    return {
        "embedded": int(len(nearest)),
        "removed_copies": int(by_copy.sum()),
        "pruned": int(pruned.sum()),
        "threshold": params.threshold,
        "prune": params.prune,
        "keep_share": params.keep_share if params.prune != "none" else None,
        "clusters": int((sizes > 0).sum()),
        "cluster_sizes": size_hist,
        "nearest_cosine": [list(pair) for pair in zip(labels, counts.tolist())],
        "largest_clusters": [
            {
                "cluster": int(ids[i]),
                "size": int(sizes[i]),
                "complexity": round(float(complexity[i]), 5),
                "kept": int(kept[i]),
                "keep_share": round(float(kept[i]) / sizes[i], 3) if sizes[i] else None,
            }
            for i in largest
            if sizes[i]
        ],
    }


def apply(table: pa.Table, params: DedupSemanticParams, shard_positions: pa.Table, clusters: pa.Table) -> StageOutput:
    """Mark cluster, cosine to the nearest earlier document and, on removed rows, the kept document
    (`semdup_of`); reject with the decision's reason. Rows in no cluster (not embedded) stay, unmarked."""
    positions = shard_positions.column("position").combine_chunks().cast(pa.string())
    clusters = clusters.select(CLUSTER_SCHEMA.names).cast(CLUSTER_SCHEMA)
    found = marks(positions, positions, clusters, "position")
    at = found.found
    out = table.append_column(
        pa.field("semdup_cluster", pa.int32()), clusters.column("cluster").combine_chunks().take(at)
    )
    out = out.append_column(
        pa.field("semdup_cosine", pa.float32()), clusters.column("cosine").combine_chunks().take(at)
    )
    null = pa.nulls(len(positions), pa.string())
    out = out.append_column(pa.field("semdup_of", pa.string()), pc.if_else(found.duplicate, found.keeper, null))
    reasons = pc.if_else(found.duplicate, clusters.column("reason").combine_chunks().take(at), null)
    return split_by_reason(out, reasons)
