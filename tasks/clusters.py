"""What both dedup stages share: a document's global position and one keeper per cluster of copies.

A position orders the corpus (shard name, then row); a cluster row names, for a lookup key (the text
hash for exact dedup, the position for fuzzy dedup), the keeper's position and the cluster's size.
Documents an earlier run kept (the persistent index) carry INDEX_PREFIX, so they sort before every
shard and are always the keeper: they are already published.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

INDEX_PREFIX = "!index/"


def position(shard_name: str, row: int) -> str:
    """Global input order of a row, comparable as a string: shard name, then row in the shard.

    Built from the shard's name rather than its index, so adding shards never reorders old ones.
    """
    return f"{shard_name}\t{row:012d}"


class Marks(NamedTuple):
    """Per row of a shard: the row of its cluster (null when in none), keeper, size, and whether it
    is a copy to remove."""

    found: pa.Array
    keeper: pa.Array
    size: pa.Array
    duplicate: pa.Array


def marks(
    keys: pa.ChunkedArray | pa.Array, positions: pa.ChunkedArray | pa.Array, clusters: pa.Table, key: str
) -> Marks:
    """Look each row's `key` up in `clusters`; a row in no cluster is its own keeper, of size 1."""
    positions = positions.combine_chunks() if isinstance(positions, pa.ChunkedArray) else positions
    found = pc.index_in(keys, value_set=clusters.column(key))
    keeper = pc.coalesce(clusters.column("keeper").combine_chunks().take(found), positions)
    size = pc.coalesce(clusters.column("size").combine_chunks().take(found).cast(pa.int32()), pa.scalar(1, pa.int32()))
    return Marks(found, keeper, size, pc.not_equal(keeper, positions))
