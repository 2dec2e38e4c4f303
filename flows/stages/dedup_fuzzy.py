"""`dedup_fuzzy`: near-duplicate documents by MinHash-LSH, one keeper per cluster (`tasks/dedup_fuzzy/`).

Corpus-wide: MinHash signatures and band rows per shard (the phases); on the Dask cluster, band rows
shuffled on the band hash → candidate edges → verified edges (enough agreeing MinHash values) →
connected components → keepers (`build_clusters`); the engine marks each shard from the clusters
(`flows/engine/corpus.py`). The report section estimates precision from sampled pairs. No Prefect
here; every function that runs on a worker takes plain paths and the store URL, never a table or
model through the scheduler.
"""

from __future__ import annotations

import math
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

import tasks.dedup_fuzzy
from flows.engine.context import RunContext
from flows.engine.corpus import Clusters, CorpusSteps, shard_name_args
from flows.engine.index import IndexEntry
from flows.engine.stage import Phase, Stage
from flows.engine.store import ArtifactStore, StageRef
from flows.report.section import Section

_EDGE_META = tasks.dedup_fuzzy.EDGE_SCHEMA.empty_table().to_pandas()
_BAND_META = tasks.dedup_fuzzy.BAND_SCHEMA.empty_table().to_pandas()


def indexed_band_rows(signatures_path: str, params, store_url: str):
    """Worker side: the band rows of an index entry's signatures under this run's layout."""
    return tasks.dedup_fuzzy.band_rows(ArtifactStore(store_url).read_table(signatures_path), params).to_pandas()


def candidate_edges_partition(buckets):
    """Worker side, one shuffled partition of band rows (whole buckets): its star edges."""
    return tasks.dedup_fuzzy.candidate_edges(pa.Table.from_pandas(buckets, preserve_index=False)).to_pandas()


def end_signatures_partition(ends, params, store_url: str, signature_paths: dict[str, str]):
    """Worker side, the edge ends of whole shards: each shard's signature file read once, only its
    rows that are edge ends kept."""
    store = ArtifactStore(store_url)
    parts = [
        tasks.dedup_fuzzy.end_signatures(
            store.read_table(signature_paths[shard], columns=["position", "minhash"]),
            pa.array(shard_ends["position"], pa.string()),
            params,
        )
        for shard, shard_ends in ends.groupby("shard", sort=True)
    ]
    return pa.concat_tables([tasks.dedup_fuzzy.END_SCHEMA.empty_table(), *parts]).to_pandas()


def verified_edges_partition(joined, params):
    """Worker side, edges joined to both ends' MinHash: those whose estimated Jaccard is high enough."""
    table = pa.Table.from_pandas(joined, preserve_index=False)
    return tasks.dedup_fuzzy.verify_joined_edges(table, params).to_pandas()


def fuzzy_candidates(
    client,
    store: ArtifactStore,
    params,
    band_paths: list[str],
    indexed_signature_paths: list[str],
    spill_dir: str,
):
    """Band rows (this batch's, and those of the index entries' signatures, derived here so that an
    index built under another layout still matches) shuffled on the band hash, star edges per
    bucket, each edge once, spilled."""
    import dask.dataframe as dd

    from flows.parallel.components import spill

    bands = dd.read_parquet(band_paths, filesystem=store.fs)
    if indexed_signature_paths:
        indexed = dd.from_map(
            indexed_band_rows, indexed_signature_paths, params=params, store_url=store.url, meta=_BAND_META
        )
        bands = dd.concat([bands, indexed])
    edges = bands.shuffle(on="band_hash").map_partitions(candidate_edges_partition, meta=_EDGE_META)
    # one pair matching in several bands lands in several partitions: keep it once
    return spill(client, edges.drop_duplicates(), spill_dir, store.fs)


def verify_candidates(
    client, store: ArtifactStore, params, candidates, signature_paths: dict[str, str], spill_dir: str
):
    """The candidate edges whose ends agree in enough MinHash values, at a cost linear in the corpus,
    and the ends' packed signatures (END_SCHEMA; every node of a verified edge has one).

    Edge ends are shuffled by shard, so one task per shard reads that shard's signature file once and
    keeps only its rows that are edge ends; those join the edges (hash joins on src, then dst), and
    each joined partition is filtered by the pure `verify_joined_edges`. Memory per task is bounded by
    a shard's ends or a partition of edges, never the whole edge list.
    """
    import dask.dataframe as dd

    from flows.parallel.components import spill

    ends = dd.concat([candidates[[end]].rename(columns={end: "position"}) for end in ("src", "dst")])
    ends = ends.assign(shard=ends["position"].map_partitions(_shards, meta=("shard", "string")))
    end_meta = tasks.dedup_fuzzy.END_SCHEMA.empty_table().to_pandas()
    end_sigs = ends.shuffle(on="shard", npartitions=len(signature_paths)).map_partitions(
        end_signatures_partition,
        params,
        store.url,
        signature_paths,
        meta=end_meta,
    )
    end_sigs = spill(client, end_sigs, f"{spill_dir}/ends", store.fs, tasks.dedup_fuzzy.END_SCHEMA)
    joined = candidates
    for end in ("src", "dst"):
        joined = joined.merge(
            end_sigs.rename(columns={"position": end, "minhash": f"{end}_minhash"}), on=end, how="left"
        )
    verified = joined.map_partitions(verified_edges_partition, params, meta=_EDGE_META)
    return spill(client, verified, f"{spill_dir}/edges", store.fs), end_sigs


def _shards(positions):
    return tasks.dedup_fuzzy.position_shards(pa.array(positions, pa.string())).to_pandas()


# Band rows up to which one task on one worker builds the clusters (`clusters_in_one_task`) instead of
# Dask shuffles, each of which costs a fixed 0.1-0.3 s however few rows it moves: ~59,000 documents at
# the default 17 bands. The task's transient memory grows with the rows (a band's group-by at a time,
# but every band row read at once) and stays, at this bound, under what a scoring stage's model adds
# to a worker (docs/benchmarks.md, "Fuzzy dedup's fixed cost").
IN_MEMORY_BAND_ROWS = 1_000_000


def build_clusters(
    ctx: RunContext, params, signatures: list[StageRef], entries: list[IndexEntry], clusters_dir: str
) -> None:
    """Buckets → edges (verified) → components → keepers (members checked against them), written to
    `clusters_dir`: in one task when the batch's band rows fit `IN_MEMORY_BAND_ROWS`, else on the Dask
    cluster with memory bounded by partitions. Both write the same rows. `signatures` are the
    signature and band-row refs."""
    fs = ctx.store.fs
    work = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    signature_paths = dict(zip((s.name for s in signatures[0].shards), ctx.paths(signatures[0])))
    signature_paths |= {entry.name: entry.path for entry in entries}
    band_paths, indexed_paths = ctx.paths(signatures[1]), [e.path for e in entries]
    if band_row_count(ctx.store, params, band_paths, indexed_paths) <= IN_MEMORY_BAND_ROWS:
        ctx.client.submit(
            clusters_in_one_task,
            band_paths,
            indexed_paths,
            signature_paths,
            params,
            ctx.store.url,
            f"{work}/clusters/part.0.parquet",
            pure=False,
        ).result()
    else:
        clusters_on_dask(ctx, params, band_paths, indexed_paths, signature_paths, work)
    ctx.store.publish_dir(f"{work}/clusters", clusters_dir)
    if fs.exists(work):  # on an object store, publishing took the one-task path's only objects
        fs.rm(work, recursive=True)


def band_row_count(store: ArtifactStore, params, band_paths: list[str], indexed_signature_paths: list[str]) -> int:
    """The batch's band rows, from Parquet footers: the band files' rows, and `bands` per indexed
    document (an upper bound: a document without shingles has none)."""
    bands, _ = params.layout
    return sum(store.num_rows(path) for path in band_paths) + bands * sum(
        store.num_rows(path) for path in indexed_signature_paths
    )


def clusters_in_one_task(
    band_paths: list[str],
    indexed_signature_paths: list[str],
    signature_paths: dict[str, str],
    params,
    store_url: str,
    target: str,
) -> int:
    """Worker side, a batch that fits one worker: its band rows (the index entries' derived here) →
    candidate edges → `clusters_of_edges` on the edge ends' signature rows, written to `target`."""
    fz, store = tasks.dedup_fuzzy, ArtifactStore(store_url)
    schema = fz.signature_schema(params)

    def signature_rows(path: str) -> pa.Table:
        return store.read_table(path, columns=schema.names).select(schema.names).cast(schema)

    indexed = {path: signature_rows(path) for path in indexed_signature_paths}  # read once: bands, then ends
    bands = [store.read_table(path).select(fz.BAND_SCHEMA.names).cast(fz.BAND_SCHEMA) for path in band_paths]
    bands += [fz.band_rows(table, params) for table in indexed.values()]
    edges = fz.candidate_edges(pa.concat_tables([fz.BAND_SCHEMA.empty_table(), *bands]))
    del bands
    ends = pc.unique(pa.concat_arrays([edges.column(end).combine_chunks() for end in ("src", "dst")]))
    sigs = [  # a file at a time, only its edge ends kept
        table.filter(pc.is_in(table.column("position"), value_set=ends))
        for table in (indexed[path] if path in indexed else signature_rows(path) for path in signature_paths.values())
    ]
    clusters = fz.clusters_of_edges(edges, pa.concat_tables([schema.empty_table(), *sigs]), params)
    store.write_table(target, clusters)
    return clusters.num_rows


def clusters_on_dask(ctx: RunContext, params, band_paths, indexed_paths, signature_paths: dict[str, str], work: str):
    """The clusters of a batch larger than one worker's share, shuffled on the Dask cluster, written
    under `work`/clusters."""
    import dask.dataframe as dd

    from flows.parallel.components import connected_components

    fs = ctx.store.fs
    edges = fuzzy_candidates(ctx.client, ctx.store, params, band_paths, indexed_paths, f"{work}/candidates")
    if params.verify:
        edges, end_sigs = verify_candidates(ctx.client, ctx.store, params, edges, signature_paths, f"{work}/verified")
    labels = connected_components(ctx.client, edges, f"{work}/labels", fs)
    ranks = dd.read_parquet(
        list(signature_paths.values()), columns=["position", "n_chars", "keeper_score"], filesystem=fs
    )
    members = labels.rename(columns={"node": "position"}).merge(ranks, on="position")
    if params.verify:  # each member's MinHash, to check it against its keeper's (`choose_keepers`)
        members = members.merge(end_sigs, on="position")
    cluster_meta = tasks.dedup_fuzzy.CLUSTER_SCHEMA.empty_table().to_pandas()
    clusters = members.shuffle(on="component").map_partitions(keepers_partition, params, meta=cluster_meta)
    ctx.client.compute(
        clusters.to_parquet(
            f"{work}/clusters",
            write_index=False,
            compute=False,
            schema=tasks.dedup_fuzzy.CLUSTER_SCHEMA,
            filesystem=fs,
        )
    ).result()


def keepers_partition(members, params):
    table = pa.Table.from_pandas(members, preserve_index=False)
    return tasks.dedup_fuzzy.choose_keepers(table, params).to_pandas()


SIZE_BUCKETS = ((2, 2), (3, 4), (5, 8), (9, 16), (17, 64), (65, None))
S_CURVE_JACCARDS = tuple(round(0.02 * i, 2) for i in range(51))  # where the report evaluates the S-curve
S_CURVE_SHOWN = ("0.50", "0.60", "0.70", "0.80", "0.90")  # of those, the ones the Markdown lists


def fuzzy_quality(ctx, upstream, fuzzy) -> Section:
    """Clusters of this run's batch, their size histogram, the expected S-curve of the parameters and
    a sampled precision estimate of the fuzzy dedup.

    The S-curve is the probability that a pair at each Jaccard is removed (`removal_probability`:
    LSH candidate and verification); precision is the share of sampled (removed, keeper) pairs whose
    exact shingle Jaccard reaches the target; pairs are spread evenly over the shards, the first of
    each shard's removals.
    """
    fz = tasks.dedup_fuzzy
    params, store = ctx.cfg.dedup_fuzzy, ctx.store
    clusters_dir = store.manifest("dedup_fuzzy", fuzzy.key)["clusters"]  # None: every shard decided before
    clusters = (
        fz.CLUSTER_SCHEMA.empty_table()
        if clusters_dir is None
        else ds.dataset(
            clusters_dir,
            format="parquet",
            filesystem=store.fs,
            schema=fz.CLUSTER_SCHEMA,
        ).to_table(columns=["component", "size"])
    )
    sizes = clusters.group_by("component").aggregate([("size", "max")]).column("size_max").to_pylist()
    sizes = [n for n in sizes if n > 1]  # a member unlike its keeper stays, as a cluster of its own
    histogram = {
        f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}": sum(
            lo <= n and (hi is None or n <= hi) for n in sizes
        )
        for lo, hi in SIZE_BUCKETS
    }
    per_shard = math.ceil(ctx.cfg.run.report_sample_pairs / max(len(fuzzy.shards), 1))
    rejected = (store.read_rejected("dedup_fuzzy", shard, ["text", "dup_of"]) for shard in fuzzy.shards)
    removed = [  # keepers from the persistent index keep no text: those pairs are not sampled
        row
        for table in rejected
        if table is not None
        for row in table.slice(0, per_shard).to_pylist()
        if not row["dup_of"].startswith(fz.INDEX_PREFIX)
    ][: ctx.cfg.run.report_sample_pairs]
    keeper_at = [row["dup_of"].rsplit("\t", 1) for row in removed]  # (shard name, row) of each keeper
    texts_of = {  # each upstream shard that holds a sampled keeper is read once
        shard.name: store.read_view(upstream.stage, shard, ["text"]).column("text")
        for shard in upstream.shards
        if shard.name in {name for name, _ in keeper_at}
    }
    keepers = [texts_of[name][int(line)].as_py() for name, line in keeper_at]
    jaccards = fz.shingle_jaccard([r["text"] for r in removed], keepers, params)
    bands, rows = params.layout
    report = {
        "clusters": len(sizes),
        "docs_in_clusters": sum(sizes),
        "cluster_sizes": histogram,
        "jaccard_threshold": params.threshold,
        "bands": bands,
        "rows": rows,
        "verify_min_matches": params.min_matches if params.verify else None,
        "num_perm": params.num_perm,
        "removal_at_threshold": round(fz.removal_probability(params.threshold, params), 4),
        "removal_probability": {f"{j:.2f}": round(fz.removal_probability(j, params), 4) for j in S_CURVE_JACCARDS},
        "sampled_pairs": len(jaccards),
        "precision_estimate": round(sum(j >= params.threshold for j in jaccards) / len(jaccards), 4)
        if jaccards
        else None,
        "sampled_jaccard_min": round(min(jaccards), 4) if jaccards else None,
    }
    return Section("dedup_fuzzy", "dedup-fuzzy-report", report, dedup_markdown(report), dedup_html(report))


def dedup_markdown(report: dict) -> str:
    sizes = " | ".join(f"{k}: {v}" for k, v in report["cluster_sizes"].items())
    curve = " | ".join(f"{j}: {report['removal_probability'][j]:.2f}" for j in S_CURVE_SHOWN)
    verification = (
        f"verified at >= {report['verify_min_matches']} of {report['num_perm']} agreeing MinHash values"
        if report["verify_min_matches"] is not None
        else "not verified (every candidate is removed)"
    )
    return (
        f"### Fuzzy dedup\n\n{report['clusters']:,} clusters holding {report['docs_in_clusters']:,} documents "
        f"(sizes {sizes}).\n\nTarget Jaccard {report['jaccard_threshold']}: {report['bands']} x {report['rows']} "
        f"LSH bands, {verification}. Expected S-curve, the share of pairs removed at each Jaccard: {curve}; "
        f"at the target {report['removal_at_threshold']:.2f}.\n\nSampled {report['sampled_pairs']} removed/keeper "
        f"pairs: {report['precision_estimate']} reach the target Jaccard {report['jaccard_threshold']} "
        f"(lowest sampled Jaccard {report['sampled_jaccard_min']})."
    )


def cluster_plot(report: dict) -> str | None:
    from flows.report.plots import bars

    sizes = report.get("cluster_sizes") or {}
    if not any(sizes.values()):
        return None
    return bars(list(sizes), list(sizes.values()), "#6a51a3", "Fuzzy duplicate cluster sizes", "clusters")


def removal_curve_plot(report: dict) -> str | None:
    """The expected S-curve: the share of pairs removed at each Jaccard, the target marked."""
    from flows.report.plots import figure, svg

    curve = report.get("removal_probability") or {}
    if not curve:
        return None
    fig, ax = figure(6, 3)
    ax.plot([float(j) for j in curve], list(curve.values()), color="#6a51a3")
    ax.axvline(
        report["jaccard_threshold"], color="#999", linestyle="--", label=f"target {report['jaccard_threshold']}"
    )
    ax.set_xlabel("Jaccard of the pair's shingle sets")
    ax.set_ylabel("probability removed")
    ax.set_title("Expected removal by Jaccard (S-curve)")
    ax.legend(fontsize=8)
    return svg(fig)


def dedup_html(report: dict) -> str:
    figures = "".join(f"<figure>{f}</figure>" for f in (cluster_plot(report), removal_curve_plot(report)) if f)
    return figures + (
        f"<p>{report.get('clusters', 0):,} clusters; sampled precision {report.get('precision_estimate')} at the "
        f"target Jaccard {report.get('jaccard_threshold')}, where the S-curve removes "
        f"{report.get('removal_at_threshold')} of pairs.</p>"
    )


def keeper_columns(params) -> tuple[str, ...]:
    """The signature phase reads the text, and the keeper's score column when keepers go by score."""
    return ("text",) + ((params.keeper_column,) if params.keeper == "highest_score" else ())


def scores_keeper(cfg) -> tuple[str, ...]:
    """Quality scoring runs after fuzzy dedup, so no model scores a duplicate, unless the fuzzy
    keeper is chosen by a quality scorer's column: then quality runs first."""
    fuzzy = cfg.dedup_fuzzy
    keeper_column = fuzzy.keeper_column if fuzzy.keeper == "highest_score" else None
    return ("quality",) if keeper_column in {spec.column for spec in cfg.quality.scorers} else ()


def limits(params) -> tuple[str, ...]:
    """What fuzzy dedup leaves, for the dataset card."""
    if not params.enabled:
        return ("off: near-duplicates were marked, not removed",)
    return (f"near-duplicates below word 5-gram Jaccard {params.threshold} to their keeper were kept",)


STAGE = Stage(
    "dedup_fuzzy",
    tasks.dedup_fuzzy,
    tasks.dedup_fuzzy.DedupFuzzyParams,
    phases=(
        Phase(
            "dedup_fuzzy.signatures", tasks.dedup_fuzzy.signatures, shard_args=shard_name_args, reads=keeper_columns
        ),
        Phase("dedup_fuzzy.bands", tasks.dedup_fuzzy.band_rows),
    ),
    corpus=CorpusSteps(
        build_clusters,
        Clusters("position", tasks.dedup_fuzzy.CLUSTER_SCHEMA, tasks.dedup_fuzzy.apply, mark_columns=("position",)),
        index_file="docs",
        index_param="index",
    ),
    needs=scores_keeper,
    limits=limits,
    report=fuzzy_quality,
)
