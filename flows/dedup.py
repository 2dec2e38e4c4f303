"""The corpus-wide steps of the dedup stages on Dask, and their worker-side shard functions.

No Prefect here: `flows/stages.py` wraps each stage in a Prefect task. Every function that runs on a
worker takes plain paths and the store URL, never a table or model through the scheduler.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

import tasks.dedup_exact
import tasks.dedup_fuzzy
from flows.store import ArtifactStore, StageRef
from tasks.contract import StageOutput

if TYPE_CHECKING:
    from flows.stages import Run


def apply_exact_shard(table: pa.Table, params, store_url: str, signatures_path: str, clusters_dir: str) -> StageOutput:
    """Worker side: this shard's hashes and only the clusters that touch them, then the pure marking."""
    store = ArtifactStore(store_url)
    hashes = store.read_table(signatures_path)
    shard_hashes = pa.array(hashes.column("text_hash").to_pylist(), pa.string())  # typed even when empty
    clusters = ds.dataset(
        clusters_dir, format="parquet", filesystem=store.fs, schema=tasks.dedup_exact.CLUSTER_SCHEMA,
    ).to_table(filter=ds.field("text_hash").isin(shard_hashes))
    return tasks.dedup_exact.apply(table, params, hashes, clusters)


def build_clusters(run: Run, signature_paths: list[str], clusters_dir: str) -> None:
    """Group every hash on the Dask cluster (a shuffle for many shards); keep groups of two or more."""
    import dask.dataframe as dd

    hashes = dd.read_parquet(signature_paths, columns=["text_hash", "position"], filesystem=run.store.fs)
    groups = hashes.groupby("text_hash").position.agg(
        ["min", "count"], split_out=max(1, len(signature_paths) // 8)
    )
    dups = groups[groups["count"] > 1].rename(columns={"min": "keeper", "count": "size"}).reset_index()
    tmp = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    run.client.compute(
        dups.to_parquet(
            tmp, write_index=False, compute=False, schema=tasks.dedup_exact.CLUSTER_SCHEMA, filesystem=run.store.fs
        )
    ).result()
    run.store.fs.mv(tmp, clusters_dir, recursive=True)
    run.store.fs.touch(f"{clusters_dir}/_SUCCESS")


def add_to_index(run: Run, upstream: StageRef, signatures: StageRef, bands: StageRef, clusters_dir: str, batch_dir: str) -> None:
    """Commit this batch's kept documents to the persistent index: files per shard, `_SUCCESS` last."""
    prefix = f"{tasks.dedup_fuzzy.INDEX_PREFIX}{batch_dir.rsplit('/', 1)[-1]}/"
    futures = run.client.map(
        index_shard, run.paths(signatures), run.paths(bands), [f"{batch_dir}/{s.name}" for s in upstream.shards],
        store_url=run.store.url, clusters_dir=clusters_dir, prefix=prefix, pure=False,
    )
    run.client.gather(futures)
    run.store.fs.touch(f"{batch_dir}/_SUCCESS")


def index_shard(signatures_path: str, bands_path: str, target: str, store_url: str, clusters_dir: str, prefix: str) -> int:
    """Worker side: the signatures and band rows of this shard's kept documents, positions prefixed."""
    store = ArtifactStore(store_url)
    sigs, bands = store.read_table(signatures_path), store.read_table(bands_path)
    positions = pa.array(sigs.column("position").to_pylist(), pa.string())
    clusters = ds.dataset(
        clusters_dir, format="parquet", filesystem=store.fs, schema=tasks.dedup_fuzzy.CLUSTER_SCHEMA,
    ).to_table(filter=ds.field("position").isin(positions))
    removed = clusters.filter(pc.not_equal(clusters.column("position"), clusters.column("keeper"))).column("position")

    def kept_and_prefixed(table: pa.Table) -> pa.Table:
        table = table.filter(pc.invert(pc.is_in(table.column("position"), value_set=removed)))
        index = table.schema.get_field_index("position")
        return table.set_column(index, "position", pc.binary_join_element_wise(prefix, table.column("position"), ""))

    store.write_table(f"{target}.docs.parquet", kept_and_prefixed(sigs))
    store.write_table(f"{target}.bands.parquet", kept_and_prefixed(bands))
    return sigs.num_rows - len(removed)


def apply_fuzzy_shard(table: pa.Table, params, store_url: str, signatures_path: str, clusters_dir: str) -> StageOutput:
    """Worker side: this shard's positions and only the cluster rows that name them."""
    store = ArtifactStore(store_url)
    positions = store.read_table(signatures_path, columns=["position"])
    shard_positions = pa.array(positions.column("position").to_pylist(), pa.string())
    clusters = ds.dataset(
        clusters_dir, format="parquet", filesystem=store.fs, schema=tasks.dedup_fuzzy.CLUSTER_SCHEMA,
    ).to_table(filter=ds.field("position").isin(shard_positions))
    return tasks.dedup_fuzzy.apply(table, params, positions, clusters)


def verified_edges_partition(buckets, params, store_url: str, signature_paths: dict[str, str]):
    """Worker side, one shuffled partition of band rows: its star edges, kept when the estimated
    Jaccard of their two ends reaches the threshold (signatures read from the shards they name)."""
    edges = tasks.dedup_fuzzy.candidate_edges(pa.Table.from_pandas(buckets, preserve_index=False))
    if params.verify and edges.num_rows:
        ends = pc.unique(pa.chunked_array([edges.column("src"), edges.column("dst")]).combine_chunks())
        shards = sorted({position.split("\t", 1)[0] for position in ends.to_pylist()})
        store = ArtifactStore(store_url)
        sigs = ds.dataset([signature_paths[shard] for shard in shards], format="parquet", filesystem=store.fs)
        edges = tasks.dedup_fuzzy.verify_edges(edges, sigs.to_table(filter=ds.field("position").isin(ends)), params)
    return edges.to_pandas()


def build_fuzzy_clusters(run: Run, signature_paths: dict[str, str], band_paths: list[str], clusters_dir: str) -> None:
    """Buckets → edges → components → keepers, all on the Dask cluster, written to `clusters_dir`."""
    import dask.dataframe as dd

    from flows.graph import connected_components, spill

    fs, params = run.store.fs, run.cfg.dedup_fuzzy
    work = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    edge_meta = tasks.dedup_fuzzy.EDGE_SCHEMA.empty_table().to_pandas()
    bands = dd.read_parquet(band_paths, filesystem=fs)
    edges = bands.shuffle(on="band_hash").map_partitions(
        verified_edges_partition, params, run.store.url, signature_paths, meta=edge_meta,
    )
    # one pair matching in several bands lands in several partitions: keep it once
    edges = spill(run.client, edges.drop_duplicates(), f"{work}/edges", fs)
    labels = connected_components(run.client, edges, f"{work}/labels", fs)
    lengths = dd.read_parquet(list(signature_paths.values()), columns=["position", "n_chars"], filesystem=fs)
    members = labels.rename(columns={"node": "position"}).merge(lengths, on="position")
    cluster_meta = tasks.dedup_fuzzy.CLUSTER_SCHEMA.empty_table().to_pandas()
    clusters = members.shuffle(on="component").map_partitions(keepers_partition, params, meta=cluster_meta)
    run.client.compute(clusters.to_parquet(
        f"{work}/clusters", write_index=False, compute=False, schema=tasks.dedup_fuzzy.CLUSTER_SCHEMA, filesystem=fs,
    )).result()
    fs.mv(f"{work}/clusters", clusters_dir, recursive=True)
    fs.touch(f"{clusters_dir}/_SUCCESS")
    fs.rm(work, recursive=True)


def keepers_partition(members, params):
    table = pa.Table.from_pandas(members, preserve_index=False)
    return tasks.dedup_fuzzy.choose_keepers(table, params).to_pandas()
