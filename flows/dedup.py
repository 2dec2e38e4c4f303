"""How the dedup stages build their clusters on Dask: what exact and fuzzy dedup declare to the
corpus-wide engine (flows/engine.py) beyond their `tasks/` phases.

No Prefect here. Every function that runs on a worker takes plain paths and the store URL, never a
table or model through the scheduler.
"""

from __future__ import annotations

import uuid

import pyarrow as pa

import tasks.dedup_exact
import tasks.dedup_fuzzy
from flows.context import RunContext
from flows.dedup_index import IndexEntry
from flows.store import ArtifactStore, StageRef


def build_exact_clusters(ctx: RunContext, params, signatures: list[StageRef], entries: list[IndexEntry], clusters_dir: str) -> None:
    """Group every hash on the Dask cluster (a shuffle for many shards); keep groups of two or more."""
    import dask.dataframe as dd

    paths = ctx.paths(signatures[0]) + [entry.path for entry in entries]
    hashes = dd.read_parquet(paths, columns=["text_hash", "position"], filesystem=ctx.store.fs)
    groups = hashes.groupby("text_hash").position.agg(["min", "count"], split_out=max(1, len(paths) // 8))
    dups = groups[groups["count"] > 1].rename(columns={"min": "keeper", "count": "size"}).reset_index()
    tmp = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    ctx.client.compute(
        dups.to_parquet(
            tmp, write_index=False, compute=False, schema=tasks.dedup_exact.CLUSTER_SCHEMA, filesystem=ctx.store.fs
        )
    ).result()
    ctx.store.publish_dir(tmp, clusters_dir)


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
            pa.array(shard_ends["position"], pa.string()), params,
        )
        for shard, shard_ends in ends.groupby("shard", sort=True)
    ]
    return pa.concat_tables([tasks.dedup_fuzzy.END_SCHEMA.empty_table(), *parts]).to_pandas()


def verified_edges_partition(joined, params):
    """Worker side, edges joined to both ends' MinHash: those whose estimated Jaccard is high enough."""
    table = pa.Table.from_pandas(joined, preserve_index=False)
    return tasks.dedup_fuzzy.verify_joined_edges(table, params).to_pandas()


def fuzzy_candidates(
    client, store: ArtifactStore, params, band_paths: list[str], indexed_signature_paths: list[str], spill_dir: str,
):
    """Band rows (this batch's, and those of the index entries' signatures, derived here so that an
    index built under another layout still matches) shuffled on the band hash, star edges per
    bucket, each edge once, spilled."""
    import dask.dataframe as dd

    from flows.graph import spill

    bands = dd.read_parquet(band_paths, filesystem=store.fs)
    if indexed_signature_paths:
        indexed = dd.from_map(
            indexed_band_rows, indexed_signature_paths, params=params, store_url=store.url, meta=_BAND_META
        )
        bands = dd.concat([bands, indexed])
    edges = bands.shuffle(on="band_hash").map_partitions(candidate_edges_partition, meta=_EDGE_META)
    # one pair matching in several bands lands in several partitions: keep it once
    return spill(client, edges.drop_duplicates(), spill_dir, store.fs)


def verify_candidates(client, store: ArtifactStore, params, candidates, signature_paths: dict[str, str], spill_dir: str):
    """The candidate edges whose ends agree in enough MinHash values, at a cost linear in the corpus,
    and the ends' packed signatures (END_SCHEMA; every node of a verified edge has one).

    Edge ends are shuffled by shard, so one task per shard reads that shard's signature file once and
    keeps only its rows that are edge ends; those join the edges (hash joins on src, then dst), and
    each joined partition is filtered by the pure `verify_joined_edges`. Memory per task is bounded by
    a shard's ends or a partition of edges, never the whole edge list.
    """
    import dask.dataframe as dd

    from flows.graph import spill

    ends = dd.concat([candidates[[end]].rename(columns={end: "position"}) for end in ("src", "dst")])
    ends = ends.assign(shard=ends["position"].map_partitions(_shards, meta=("shard", "string")))
    end_meta = tasks.dedup_fuzzy.END_SCHEMA.empty_table().to_pandas()
    end_sigs = ends.shuffle(on="shard", npartitions=len(signature_paths)).map_partitions(
        end_signatures_partition, params, store.url, signature_paths, meta=end_meta,
    )
    end_sigs = spill(client, end_sigs, f"{spill_dir}/ends", store.fs, tasks.dedup_fuzzy.END_SCHEMA)
    joined = candidates
    for end in ("src", "dst"):
        joined = joined.merge(end_sigs.rename(columns={"position": end, "minhash": f"{end}_minhash"}), on=end, how="left")
    verified = joined.map_partitions(verified_edges_partition, params, meta=_EDGE_META)
    return spill(client, verified, f"{spill_dir}/edges", store.fs), end_sigs


def _shards(positions):
    return tasks.dedup_fuzzy.position_shards(pa.array(positions, pa.string())).to_pandas()


def build_fuzzy_clusters(ctx: RunContext, params, signatures: list[StageRef], entries: list[IndexEntry], clusters_dir: str) -> None:
    """Buckets → edges (verified) → components → keepers (members checked against them), all on the
    Dask cluster, written to `clusters_dir`. `signatures` are the signature and band-row refs."""
    import dask.dataframe as dd

    from flows.graph import connected_components

    fs = ctx.store.fs
    work = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    signature_paths = dict(zip((s.name for s in signatures[0].shards), ctx.paths(signatures[0])))
    signature_paths |= {entry.name: entry.path for entry in entries}
    edges = fuzzy_candidates(ctx.client, ctx.store, params, ctx.paths(signatures[1]), [e.path for e in entries], f"{work}/candidates")
    if params.verify:
        edges, end_sigs = verify_candidates(ctx.client, ctx.store, params, edges, signature_paths, f"{work}/verified")
    labels = connected_components(ctx.client, edges, f"{work}/labels", fs)
    ranks = dd.read_parquet(list(signature_paths.values()), columns=["position", "n_chars", "keeper_score"], filesystem=fs)
    members = labels.rename(columns={"node": "position"}).merge(ranks, on="position")
    if params.verify:  # each member's MinHash, to check it against its keeper's (`choose_keepers`)
        members = members.merge(end_sigs, on="position")
    cluster_meta = tasks.dedup_fuzzy.CLUSTER_SCHEMA.empty_table().to_pandas()
    clusters = members.shuffle(on="component").map_partitions(keepers_partition, params, meta=cluster_meta)
    ctx.client.compute(clusters.to_parquet(
        f"{work}/clusters", write_index=False, compute=False, schema=tasks.dedup_fuzzy.CLUSTER_SCHEMA, filesystem=fs,
    )).result()
    ctx.store.publish_dir(f"{work}/clusters", clusters_dir)
    fs.rm(work, recursive=True)


def keepers_partition(members, params):
    table = pa.Table.from_pandas(members, preserve_index=False)
    return tasks.dedup_fuzzy.choose_keepers(table, params).to_pandas()
