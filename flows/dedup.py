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
from flows.store import ArtifactStore, StageRef, digest
from tasks.contract import StageOutput

if TYPE_CHECKING:
    from flows.stages import Run


CLUSTER_KEYS = {  # the column a global stage's cluster rows are looked up by, and their schema
    "dedup_exact": ("text_hash", tasks.dedup_exact.CLUSTER_SCHEMA),
    "dedup_fuzzy": ("position", tasks.dedup_fuzzy.CLUSTER_SCHEMA),
}


def shard_clusters(store: ArtifactStore, stage: str, signatures_path: str, clusters_dir: str, columns=None) -> tuple[pa.Table, pa.Table]:
    """Worker side: this shard's signature rows and only the cluster rows that touch them."""
    key, schema = CLUSTER_KEYS[stage]
    shard = store.read_table(signatures_path, columns=columns)
    keys = pa.array(shard.column(key).to_pylist(), pa.string())  # typed even when empty
    clusters = ds.dataset(clusters_dir, format="parquet", filesystem=store.fs, schema=schema)
    return shard, clusters.to_table(filter=ds.field(key).isin(keys))


def apply_exact_shard(table: pa.Table, params, store_url: str, signatures_path: str, clusters_dir: str) -> StageOutput:
    hashes, clusters = shard_clusters(ArtifactStore(store_url), "dedup_exact", signatures_path, clusters_dir)
    return tasks.dedup_exact.apply(table, params, hashes, clusters)


def apply_fuzzy_shard(table: pa.Table, params, store_url: str, signatures_path: str, clusters_dir: str) -> StageOutput:
    positions, clusters = shard_clusters(ArtifactStore(store_url), "dedup_fuzzy", signatures_path, clusters_dir, ["position"])
    return tasks.dedup_fuzzy.apply(table, params, positions, clusters)


def clusters_digest(stage: str, store_url: str, signatures_path: str, clusters_dir: str) -> str:
    """Worker side: a digest of the cluster rows touching this shard, all its marks depend on."""
    key, schema = CLUSTER_KEYS[stage]
    _, clusters = shard_clusters(ArtifactStore(store_url), stage, signatures_path, clusters_dir, [key])
    return digest(clusters.sort_by([(name, "ascending") for name in schema.names]).to_pylist())


def shard_salts(run: Run, stage: str, signature_paths: list[str], clusters_dir: str) -> list[str]:
    """Per-shard salts for a global stage's marks: the digest of the clusters touching each shard.

    A shard whose clusters did not change keeps its key when another shard joins the corpus, so a
    re-curation recomputes neither its marks nor any later stage of it. Kept beside the clusters.
    """
    path = f"{clusters_dir}/_shard_digests.json"
    saved = run.store.read_json(path) if run.store.fs.exists(path) else {}
    missing = [p for p in signature_paths if p not in saved]
    if missing:
        futures = run.client.map(
            clusters_digest, [stage] * len(missing), [run.store.url] * len(missing), missing,
            [clusters_dir] * len(missing), pure=False,
        )
        saved |= dict(zip(missing, run.client.gather(futures)))
        run.store.write_json(path, saved)
    return [saved[p] for p in signature_paths]


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
    run.store.publish_dir(tmp, clusters_dir)


INDEX_FILES = {"dedup_exact": "hashes", "dedup_fuzzy": "docs"}  # the signature rows an index batch keeps


def add_to_index(
    run: Run, stage: str, new: StageRef, signatures: StageRef, marked: StageRef, clusters_key: str, salts: list[str],
    clusters_dir: str,
) -> None:
    """Commit the kept documents of the `new` shards as one index batch: signature rows per shard,
    then the shards' records (flows/stages.py), then `_SUCCESS`. Only signatures: a later run
    derives their band rows under its own layout (`fuzzy_candidates`)."""
    from flows.stages import INDEX_SHARDS

    batch_dir = f"{run.index_dir(stage)}/{clusters_key}"
    prefix = f"{tasks.dedup_fuzzy.INDEX_PREFIX}{clusters_key}/"
    signature_paths = run.paths(signatures)
    futures = run.client.map(
        index_shard, [stage] * len(signature_paths), signature_paths, [f"{batch_dir}/{s.name}" for s in new.shards],
        store_url=run.store.url, clusters_dir=clusters_dir, prefix=prefix, pure=False,
    )
    run.client.gather(futures)
    params = digest(run.params(stage))
    records = {
        shard.name: {
            "path": run.input_of(shard).path, "upstream": shard.key, "params": params, "marked": marked.shards[i].key,
            "salt": clusters_key, "shard_salt": salts[i], "clusters": clusters_dir, "signatures": signature_paths[i],
        }
        for i, shard in enumerate(new.shards)
    }
    run.store.write_json(f"{batch_dir}/{INDEX_SHARDS}", records)
    run.store.fs.touch(f"{batch_dir}/_SUCCESS")


def index_shard(stage: str, signatures_path: str, target: str, store_url: str, clusters_dir: str, prefix: str) -> int:
    """Worker side: the signature rows of this shard's kept documents, positions prefixed."""
    store = ArtifactStore(store_url)
    key = CLUSTER_KEYS[stage][0]
    sigs, clusters = shard_clusters(store, stage, signatures_path, clusters_dir)
    found = pc.index_in(sigs.column(key), value_set=clusters.column(key))
    keeper = pc.coalesce(clusters.column("keeper").combine_chunks().take(found), sigs.column("position").combine_chunks())
    removed = sigs.column("position").filter(pc.not_equal(keeper, sigs.column("position").combine_chunks()))

    def kept_and_prefixed(table: pa.Table) -> pa.Table:
        table = table.filter(pc.invert(pc.is_in(table.column("position"), value_set=removed.combine_chunks())))
        index = table.schema.get_field_index("position")
        return table.set_column(index, "position", pc.binary_join_element_wise(prefix, table.column("position"), ""))

    store.write_table(f"{target}.{INDEX_FILES[stage]}.parquet", kept_and_prefixed(sigs))
    return sigs.num_rows - len(removed)


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


def build_fuzzy_clusters(run: Run, signature_paths: dict[str, str], band_paths: list[str], clusters_dir: str) -> None:
    """Buckets → edges (verified) → components → keepers (members checked against them), all on the
    Dask cluster, written to `clusters_dir`."""
    import dask.dataframe as dd

    from flows.graph import connected_components

    fs, params = run.store.fs, run.cfg.dedup_fuzzy
    work = f"{clusters_dir}.tmp-{uuid.uuid4().hex}"
    indexed = [path for name, path in signature_paths.items() if name.startswith(tasks.dedup_fuzzy.INDEX_PREFIX)]
    edges = fuzzy_candidates(run.client, run.store, params, band_paths, indexed, f"{work}/candidates")
    if params.verify:
        edges, end_sigs = verify_candidates(run.client, run.store, params, edges, signature_paths, f"{work}/verified")
    labels = connected_components(run.client, edges, f"{work}/labels", fs)
    ranks = dd.read_parquet(list(signature_paths.values()), columns=["position", "n_chars", "keeper_score"], filesystem=fs)
    members = labels.rename(columns={"node": "position"}).merge(ranks, on="position")
    if params.verify:  # each member's MinHash, to check it against its keeper's (`choose_keepers`)
        members = members.merge(end_sigs, on="position")
    cluster_meta = tasks.dedup_fuzzy.CLUSTER_SCHEMA.empty_table().to_pandas()
    clusters = members.shuffle(on="component").map_partitions(keepers_partition, params, meta=cluster_meta)
    run.client.compute(clusters.to_parquet(
        f"{work}/clusters", write_index=False, compute=False, schema=tasks.dedup_fuzzy.CLUSTER_SCHEMA, filesystem=fs,
    )).result()
    run.store.publish_dir(f"{work}/clusters", clusters_dir)
    fs.rm(work, recursive=True)


def keepers_partition(members, params):
    table = pa.Table.from_pandas(members, preserve_index=False)
    return tasks.dedup_fuzzy.choose_keepers(table, params).to_pandas()
