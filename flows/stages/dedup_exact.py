"""`dedup_exact`: documents whose normalized text hashes alike, one keeper each (`tasks/dedup_exact.py`).

Corpus-wide: a hash per document (the signature phase), every hash grouped on the Dask cluster (a
shuffle for many shards), groups of two or more kept as clusters; the engine marks each shard from
them (`flows/engine/corpus.py`). No Prefect here.
"""

from __future__ import annotations

import uuid

import tasks.dedup_exact
from flows.engine.context import RunContext
from flows.engine.corpus import Clusters, CorpusSteps, shard_name_args
from flows.engine.index import IndexEntry
from flows.engine.stage import Phase, Stage, reads_text
from flows.engine.store import StageRef


def build_clusters(
    ctx: RunContext, params, signatures: list[StageRef], entries: list[IndexEntry], clusters_dir: str
) -> None:
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


STAGE = Stage(
    "dedup_exact",
    tasks.dedup_exact,
    tasks.dedup_exact.DedupExactParams,
    phases=(
        Phase("dedup_exact.signatures", tasks.dedup_exact.signatures, shard_args=shard_name_args, reads=reads_text),
    ),
    corpus=CorpusSteps(
        build_clusters,
        Clusters("text_hash", tasks.dedup_exact.CLUSTER_SCHEMA, tasks.dedup_exact.apply),
        index_file="hashes",
        index_param="index",
    ),
)
