"""`dedup_semantic`: documents that say what an earlier one says in other words, and pruning by
concept-cluster complexity (`tasks/dedup_semantic/`). Off by default (`dedup_semantic.enabled`).

Corpus-wide: embeddings per shard (the phase, on the workers); then, cached under the k-means knobs
(`neighbours_dir`): k-means per embedding space fitted on a bounded sample, every shard assigned and
split into buckets of whole clusters, each bucket's nearest earlier neighbours in blocks; then, under
the decision knobs, the cut and the prune over those columns only (`decide_batch`), which the engine
marks shards from (`flows/engine/corpus.py`). So a new threshold or share embeds and clusters nothing.
No Prefect here; every function that runs on a worker takes plain paths and the store URL.
"""

from __future__ import annotations

import math
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

import tasks.dedup_semantic as sem
from flows.engine.context import RunContext
from flows.engine.corpus import Clusters, CorpusSteps, shard_name_args
from flows.engine.index import IndexEntry
from flows.engine.stage import Phase, Stage
from flows.engine.store import ArtifactStore, StageRef, digest
from flows.report.section import Section, html_table, markdown_html
from tasks import models
from tasks.clusters import INDEX_PREFIX
from tasks.dedup_semantic.geometry import fit_centroids, n_clusters, normalized

BUCKET_DOCUMENTS = 20_000  # documents per neighbour task, about: bounds a task's embeddings in memory
REPORT_FILE = "_report.json"  # beside the decisions; `_` keeps it out of the clusters' Parquet dataset


def count_spaces(store_url: str, path: str) -> dict[str, int]:
    """Worker side: embedded documents per space in one shard's embeddings."""
    spaces = ArtifactStore(store_url).read_table(path, columns=["space"]).column("space")
    return {row["values"]: row["counts"] for row in pc.value_counts(spaces.drop_null()).to_pylist()}


def fit_space(store_url: str, paths: list[str], space: str, k: int, rate: float, params) -> np.ndarray:
    """Worker side: k-means centroids of one space, fitted on a sample of its documents (`sample_mask`),
    reading one shard at a time: memory is one shard and the sample."""
    store, sample = ArtifactStore(store_url), []
    for path in paths:
        rows = store.read_table(path, columns=["position", "space", "embedding"])
        rows = rows.filter(pc.equal(rows.column("space"), space))
        chosen = sem.sample_mask(rows.column("position").to_pylist(), rate, params.seed)
        if chosen.any():
            sample.append(normalized(sem.matrix(rows.column("embedding").filter(pa.array(chosen)))))
    return fit_centroids(np.concatenate(sample), k, params.seed, params.kmeans_iterations)


def assign_shard(path: str, name: str, *, store_url: str, centroids: str, n_buckets: int, target: str) -> None:
    """Worker side: one shard's embedded documents with their cluster (the centroids read from the
    `centroids` table), written per bucket (cluster modulo `n_buckets`) as `<target>/<bucket>/<name>.parquet`."""
    store = ArtifactStore(store_url)
    table, spaces = store.read_table(path), spaces_of(store.read_table(centroids))
    parts = [sem.assigned(table, space, matrix, offset) for space, (offset, matrix) in spaces.items()]
    rows = pa.concat_tables([sem.ASSIGNED_SCHEMA.empty_table(), *parts])
    buckets = rows.column("cluster").to_numpy() % n_buckets
    for bucket in np.unique(buckets):
        store.write_table(f"{target}/{bucket:05d}/{name}.parquet", rows.filter(pa.array(buckets == bucket)))


def spaces_of(centroids: pa.Table) -> dict[str, tuple[int, np.ndarray]]:
    """Space -> (its first cluster id, its centroids in cluster order), from a CLUSTER_STATS table."""
    centroids = centroids.sort_by("cluster")
    spaces = {}
    for space in sorted(set(centroids.column("space").to_pylist())):
        rows = centroids.filter(pc.equal(centroids.column("space"), space))
        spaces[space] = (rows.column("cluster")[0].as_py(), sem.matrix(rows.column("centroid")))
    return spaces


def bucket_neighbours(assigned_dir: str, target: str, *, store_url: str, keeper: str, block: int) -> pa.Table:
    """Worker side: the nearest earlier neighbours of one bucket's clusters, written to `target`; the
    clusters' sizes and summed centroid distances returned."""
    store = ArtifactStore(store_url)
    rows = ds.dataset(assigned_dir, format="parquet", filesystem=store.fs, schema=sem.ASSIGNED_SCHEMA).to_table()
    neighbours, stats = sem.cluster_neighbours(rows, keeper, block)
    store.write_table(target, neighbours)
    return stats


def neighbours_dir(ctx: RunContext, params, embeddings: StageRef, entries: list[IndexEntry]) -> str:
    """The clusters and nearest earlier neighbours of the batch's embedded documents and the index
    entries', computed once per (embeddings, entries, k-means knobs): `neighbours/*.parquet` and
    `clusters.parquet` (CLUSTER_STATS_SCHEMA)."""
    store, client = ctx.store, ctx.client
    knobs = params.neighbour_params()
    key = digest(
        "neighbours", sem.VERSION, knobs, [s.key for s in embeddings.shards], [(e.batch, e.shard) for e in entries]
    )
    final = store.stage_dir("dedup_semantic.neighbours", key)
    if store.fs.exists(f"{final}/_SUCCESS"):
        return final
    paths = ctx.paths(embeddings) + [e.path for e in entries]
    names = [s.name for s in embeddings.shards] + [e.name.replace("/", "_") for e in entries]
    work = f"{final}.tmp-{uuid.uuid4().hex}"
    counts: dict[str, int] = {}
    for shard_counts in client.gather(client.map(count_spaces, [store.url] * len(paths), paths, pure=False)):
        for space, n in shard_counts.items():
            counts[space] = counts.get(space, 0) + n
    spaces, offset = {}, 0
    for space in sorted(counts):
        k = n_clusters(counts[space], params.cluster_size)
        rate = min(1.0, params.kmeans_sample / counts[space])
        centroids = client.submit(fit_space, store.url, paths, space, k, rate, knobs, pure=False).result()
        spaces[space] = (offset, centroids)
        offset += len(centroids)
    centroids = f"{work}/centroids.parquet"  # read by every assignment task: too large to send with each
    store.write_table(centroids, cluster_stats(spaces, []))
    threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    n_buckets = max(1, min(offset, max(2 * threads, math.ceil(sum(counts.values()) / BUCKET_DOCUMENTS))))
    client.gather(
        client.map(
            assign_shard,
            paths,
            names,
            store_url=store.url,
            centroids=centroids,
            n_buckets=n_buckets,
            target=f"{work}/assigned",
            pure=False,
        )
    )
    buckets = (
        sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(f"{work}/assigned", detail=False))
        if store.fs.exists(f"{work}/assigned")
        else []
    )
    stats = client.gather(
        client.map(
            bucket_neighbours,
            [f"{work}/assigned/{b}" for b in buckets],
            [f"{work}/out/neighbours/{b}.parquet" for b in buckets],
            store_url=store.url,
            keeper=knobs.keeper,
            block=params.block,
            pure=False,
        )
    )
    store.write_table(f"{work}/out/clusters.parquet", cluster_stats(spaces, stats))
    if not buckets:  # nothing embedded: an empty neighbours file keeps the folder a dataset
        store.write_table(f"{work}/out/neighbours/empty.parquet", sem.NEIGHBOUR_SCHEMA.empty_table())
    store.publish_dir(f"{work}/out", final)
    store.fs.rm(work, recursive=True)  # the assigned copies of the embeddings and the centroids
    return final


def cluster_stats(spaces: dict[str, tuple[int, np.ndarray]], stats: list[pa.Table]) -> pa.Table:
    """Every cluster of every space: its size, spread and centroid (CLUSTER_STATS_SCHEMA)."""
    found = pa.concat_tables(stats) if stats else None
    size = dict(zip(found.column("cluster").to_pylist(), found.column("size").to_pylist())) if found else {}
    spread = dict(zip(found.column("cluster").to_pylist(), found.column("distance_sum").to_pylist())) if found else {}
    rows = [
        {
            "cluster": offset + label,
            "space": space,
            "size": size.get(offset + label, 0),
            "spread": spread.get(offset + label, 0.0) / max(size.get(offset + label, 0), 1),
            "centroid": centroid.tolist(),
        }
        for space, (offset, centroids) in spaces.items()
        for label, centroid in enumerate(centroids)
    ]
    return pa.Table.from_pylist(rows, schema=sem.CLUSTER_STATS_SCHEMA)


def decide_batch(store_url: str, neighbours: str, params, target: str) -> dict:
    """Worker side: the batch's decisions under the threshold and prune, from the cached neighbour
    columns only, written to `target/decisions.parquet` with the report's figures beside them."""
    store = ArtifactStore(store_url)
    rows = ds.dataset(f"{neighbours}/neighbours", format="parquet", filesystem=store.fs, schema=sem.NEIGHBOUR_SCHEMA)
    decisions, report = sem.decide(rows.to_table(), store.read_table(f"{neighbours}/clusters.parquet"), params)
    store.write_table(f"{target}/decisions.parquet", decisions)
    store.write_json(f"{target}/{REPORT_FILE}", report)
    return report


def build_clusters(
    ctx: RunContext, params, phases: list[StageRef], entries: list[IndexEntry], clusters_dir: str
) -> None:
    """Neighbours (cached under the k-means knobs), then the decisions, published to `clusters_dir`."""
    neighbours = neighbours_dir(ctx, params, phases[0], entries)
    work = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    ctx.client.submit(decide_batch, ctx.store.url, neighbours, params, work, pure=False).result()
    ctx.store.publish_dir(work, clusters_dir)


PAIRS_TEXT_CHARS = 300  # of each text in the report's sampled pairs


def report_section(ctx: RunContext, upstream: StageRef | None, ref: StageRef) -> Section:
    """What the batch removed and why: cluster sizes, the nearest-neighbour cosines, sampled removed
    pairs with both texts, and for a prune the largest clusters' complexity and keep share."""
    store = ctx.store
    clusters_dir = store.manifest("dedup_semantic", ref.key)["clusters"]  # None: every shard decided before
    report = store.read_json(f"{clusters_dir}/{REPORT_FILE}") if clusters_dir else {}
    report["pairs"] = sampled_pairs(ctx, upstream, ref)
    return Section("dedup_semantic", "dedup-semantic-report", report, markdown(report), html(report))


def sampled_pairs(ctx: RunContext, upstream: StageRef, ref: StageRef) -> list[dict]:
    """Up to `run.report_sample_pairs` removed documents, spread over the shards, each with the kept
    document it leaves standing (those from the persistent index keep no text and are not sampled)."""
    store, wanted = ctx.store, ctx.cfg.run.report_sample_pairs
    per_shard = math.ceil(wanted / max(len(ref.shards), 1))
    columns = ["id", "text", "semdup_of", "semdup_cosine", "reason"]
    rejected = (store.read_rejected("dedup_semantic", shard, columns) for shard in ref.shards)
    removed = [
        row
        for table in rejected
        if table is not None
        for row in table.slice(0, per_shard).to_pylist()
        if not row["semdup_of"].startswith(INDEX_PREFIX)
    ][:wanted]
    at = [row["semdup_of"].rsplit("\t", 1) for row in removed]
    kept = {
        shard.name: store.read_view(upstream.stage, shard, ["id", "text"])
        for shard in upstream.shards
        if shard.name in {name for name, _ in at}
    }
    pairs = []
    for row, (name, line) in zip(removed, at):
        keeper = kept[name].slice(int(line), 1).to_pylist()[0]
        pairs.append(
            {
                "reason": row["reason"],
                "cosine": None if row["semdup_cosine"] is None else round(row["semdup_cosine"], 3),
                "removed_id": row.get("id"),
                "kept_id": keeper.get("id"),
                "removed": row["text"][:PAIRS_TEXT_CHARS],
                "kept": keeper["text"][:PAIRS_TEXT_CHARS],
            }
        )
    return pairs


def markdown(report: dict) -> str:
    if "embedded" not in report:
        return "### Semantic dedup\n\nEvery shard was decided by an earlier run (persistent index)."
    sizes = " | ".join(f"{k}: {v}" for k, v in report["cluster_sizes"])
    cosines = " | ".join(f"{k}: {v}" for k, v in report["nearest_cosine"])
    prune = (
        f" Pruned {report['pruned']:,} more to keep {report['keep_share']:.0%} ({report['prune']})."
        if report["prune"] != "none"
        else ""
    )
    return (
        f"### Semantic dedup\n\n{report['embedded']:,} documents embedded in {report['clusters']:,} k-means clusters "
        f"(sizes {sizes}). Removed {report['removed_copies']:,} within cosine {report['threshold']} of an earlier "
        f"document of their cluster.{prune}\n\nCosine to the nearest earlier document: {cosines}."
    )


def html(report: dict) -> str:
    from flows.report.plots import bars

    parts = [markdown_html(markdown(report).split("\n\n", 1)[-1])]
    if report.get("nearest_cosine"):
        labels, counts = zip(*report["nearest_cosine"])
        parts.append(
            "<figure>"
            + bars(
                list(labels),
                list(counts),
                "#2b8cbe",
                "Cosine to the nearest earlier document",
                "documents",
            )
            + "</figure>"
        )
    if report.get("prune") not in (None, "none") and report.get("largest_clusters"):
        parts.append(html_table(report["largest_clusters"], ["cluster", "size", "complexity", "kept", "keep_share"]))
    if report.get("pairs"):
        parts.append(html_table(report["pairs"], ["reason", "cosine", "removed_id", "removed", "kept_id", "kept"]))
    return "".join(parts)


def scores_keeper(cfg) -> tuple[str, ...]:
    """As fuzzy dedup: a keeper chosen by a quality scorer's column moves quality scoring first."""
    params = cfg.dedup_semantic
    column = params.keeper_column if params.keeper == "highest_score" else None
    return ("quality",) if column in {spec.column for spec in cfg.quality.scorers} else ()


def limits(params) -> tuple[str, ...]:
    """What semantic dedup leaves, for the dataset card (figures: docs/benchmarks.md)."""
    if not params.enabled:
        return ("off: rewritten copies and paraphrases that share few words (which MinHash cannot see) were kept",)
    if params.multilingual_encoder is None:
        spaces = "only English documents (and those without `lang`) were compared; the others were never removed"
    elif params.multilingual_encoder == models.PACKAGED_USE:
        others = len(set(models.USE_LANGUAGES) - set(params.english))
        spaces = (
            f"English was compared with English, and the {others} other languages the packaged USE covers with "
            "each other; documents in other languages were never removed"
        )
    else:
        spaces = "English was compared with English, the other languages with each other"
    code = (
        "code is compared as text: a renamed, restructured function is not found (HumanEval paraphrases: 0.17 on "
        "the dev set with the packaged encoders)"
    )
    return (spaces, code)


STAGE = Stage(
    "dedup_semantic",
    sem,
    sem.DedupSemanticParams,
    phases=(
        Phase(
            "dedup_semantic.embeddings",
            sem.embed,
            params=sem.DedupSemanticParams.embedding_params,
            shard_args=shard_name_args,
            reads=lambda params: (
                ("text", "lang") + ((params.keeper_column,) if params.keeper == "highest_score" else ())
            ),
            split=True,  # an encoder's forward pass per document: a large shard's rows go to every worker
            numbered=True,  # positions are rows of the shard
        ),
    ),
    corpus=CorpusSteps(
        build_clusters,
        Clusters("position", sem.CLUSTER_SCHEMA, sem.apply, mark_columns=("position",)),
        index_file="docs",
        index_param="index",
    ),
    active=lambda params: params.enabled,
    limits=limits,
    needs=scores_keeper,
    uses_torch=lambda params: params.enabled,
    report=report_section,
)
