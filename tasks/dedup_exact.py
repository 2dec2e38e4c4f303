"""Exact deduplication across the whole corpus: one keeper per identical normalized text.

Three phases, so no process ever holds every hash: `signatures` per shard, a global grouping of
hashes by the orchestrator (a Dask shuffle), then `apply` per shard with the clusters that touch it.
The keeper is the first copy in input order (shard order, then row), as in CCNet and datatrove's
exact dedup, so the result does not depend on how the work was scheduled.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from tasks.clusters import marks, position
from tasks.contract import StageOutput, split_by_reason

VERSION = 1
REASON = "dedup_exact:text_hash"

SIGNATURE_SCHEMA = pa.schema([("text_hash", pa.string()), ("position", pa.string())])
CLUSTER_SCHEMA = pa.schema([("text_hash", pa.string()), ("keeper", pa.string()), ("size", pa.int64())])


class DedupExactParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Drop exact duplicates (after normalization).")
    # datatrove's exact-substring/line dedup and CCNet both hash lowercased, whitespace-folded text.
    casefold: bool = Field(True, description="Compare texts case-insensitively.")
    index: str | None = Field(
        None,
        description="Name of a persistent exact-dedup index in the artifact store: shards an earlier run decided "
        "keep their marks; new shards are deduplicated against every earlier run's kept documents (they stay).",
    )


_SPACE = re.compile(r"\s+")


def text_hash(text: str, params: DedupExactParams) -> str:
    """128-bit xxh3 of the comparison form: collisions stay negligible at billions of documents."""
    folded = _SPACE.sub(" ", text.casefold() if params.casefold else text).strip()
    return xxhash.xxh3_128_hexdigest(folded.encode("utf-8"))


def signatures(table: pa.Table, params: DedupExactParams, shard_name: str) -> pa.Table:
    hashes = [text_hash(text, params) for text in table.column("text").to_pylist()]
    positions = [position(shard_name, row) for row in range(table.num_rows)]
    return pa.table([pa.array(hashes, pa.string()), pa.array(positions, pa.string())], schema=SIGNATURE_SCHEMA)


def apply(table: pa.Table, params: DedupExactParams, hashes: pa.Table, clusters: pa.Table) -> StageOutput:
    """Mark every copy but the keeper.

    `hashes` are this shard's `signatures`, row for row; `clusters` holds at least the duplicated
    hashes (size > 1) that occur in this shard, with the keeper's position.
    """
    found = marks(hashes.column("text_hash"), hashes.column("position"), clusters.cast(CLUSTER_SCHEMA), "text_hash")
    out = table.append_column(pa.field("exact_cluster", pa.string()), hashes.column("text_hash"))
    out = out.append_column(pa.field("exact_cluster_size", pa.int32()), found.size)
    duplicate = pc.and_(found.duplicate, pa.scalar(params.enabled))
    return split_by_reason(out, pc.if_else(duplicate, pa.scalar(REASON), pa.scalar(None, pa.string())))
