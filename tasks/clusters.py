"""What both dedup stages share: a document's global position and one keeper per cluster of copies.

A position orders the corpus (shard name, then row); a cluster row names, for a lookup key (the text
hash for exact dedup, the position for fuzzy dedup), the keeper's position and the cluster's size.
Documents an earlier run kept (the persistent index) carry INDEX_PREFIX, so they sort before every
shard and are always the keeper: they are already published.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.errors import InputError

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


def keeper_scores(table: pa.Table, keeper: str, column: str, section: str) -> pa.Array:
    """The column a dedup stage ranks keepers by, as float64 (NaN as null, so it ranks last); all null
    unless `keeper` is highest_score. `section` names the stage's config section in errors."""
    if keeper != "highest_score":
        return pa.nulls(table.num_rows, pa.float64())
    if column not in table.column_names:
        raise InputError(
            f"{section}.keeper_column {column!r} is not a column of the documents "
            f"(columns: {', '.join(table.column_names)}); name a quality scorer's column or a clean signal"
        )
    try:
        scores = table.column(column).combine_chunks().cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{section}.keeper_column {column!r} is not numeric ({exc})") from exc
    return pc.if_else(pc.is_nan(scores), pa.nulls(len(scores), pa.float64()), scores)


def component_labels(src: pa.Array, dst: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Connected components of the graph whose edges are (src[i], dst[i]), in one process: every node
    (sorted) and its component's smallest node, which names the component whatever the edge order.

    scipy labels the components; nodes are numbered in sorted order, so a component's smallest number
    is its smallest node.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = (end.cast(pa.string()) for end in (src, dst))
    nodes = pc.unique(pa.concat_arrays([src, dst]))
    nodes = nodes.take(pc.array_sort_indices(nodes))
    if not len(nodes):
        return nodes, nodes
    ends = [pc.index_in(end, value_set=nodes).to_numpy(zero_copy_only=False) for end in (src, dst)]
    graph = coo_matrix((np.ones(len(src), np.int8), tuple(ends)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max(initial=-1) + 1, len(nodes))
    np.minimum.at(smallest, labels, np.arange(len(nodes)))
    return nodes, nodes.take(smallest[labels])
