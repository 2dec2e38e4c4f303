"""Connected components of a large edge list on Dask, with memory bounded by partition size.

Label propagation with root hooking and full shortcutting (after Shiloach and Vishkin): every node
starts labelled with itself. Each round, every edge proposes the smaller of its endpoints' labels to
the larger label, a root, and each root takes its smallest proposal; then every node follows its
label's label until nothing moves, so all labels are roots again. Hooking roots, not nodes, merges
whole trees per round: a shuffled chain of 1,000 nodes takes 7 rounds, where moving only a node's
own label took 307 (the minimum crept a few hops per round, and chains of a few hundred exceeded
the round limit). Each step is written to Parquet and read back, so a step holds at most a
partition per worker and the task graph never grows with the number of rounds. The component id is
the smallest node of the component: independent of partitioning and of edge order.

An edge list that fits one worker (`IN_MEMORY_EDGES`) skips the rounds: one task gathers it and labels
it with scipy's connected components, the same labels in one step instead of a few shuffles per
round, each of which costs the cluster a fixed ~0.1-0.3 s however few edges there are.
"""

from __future__ import annotations

import uuid

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa

from tasks.clusters import component_labels

MAX_ROUNDS = 64  # hooking rounds, and shortcut passes per round: both ~log2 of the largest component
# Edges one worker labels at once: two ~40-byte positions per edge, held as pandas strings and as Arrow
# (~0.3 GB at this size), well inside a worker's memory limit.
IN_MEMORY_EDGES = 2_000_000
_LABELS = pa.schema([("node", pa.string()), ("component", pa.string())])
_LABEL_META = _LABELS.empty_table().to_pandas()


def smaller(a: dd.Series, b: dd.Series) -> dd.Series:
    """Element-wise minimum of two string series where `b` may be missing."""
    return a.where(b.isna() | (a <= b), b)


def connected_components(
    client, edges: dd.DataFrame, spill_dir: str, filesystem=None, in_memory_edges: int = IN_MEMORY_EDGES
) -> dd.DataFrame:
    """`edges` has string columns `src`, `dst`; returns (`node`, `component`) for every node in an edge.
    Up to `in_memory_edges` edges are labelled by one task, more by rounds of label propagation."""
    if client.compute(edges.map_partitions(len).sum()).result() <= in_memory_edges:
        gathered = edges[["src", "dst"]].repartition(npartitions=1)
        return spill(client, gathered.map_partitions(components_partition, meta=_LABEL_META), spill_dir, filesystem)
    both = dd.concat([edges[["src", "dst"]], edges.rename(columns={"src": "dst", "dst": "src"})[["src", "dst"]]])
    nodes = both[["src"]].drop_duplicates().rename(columns={"src": "node"})
    labels = spill(client, nodes.assign(label=nodes["node"]), spill_dir, filesystem)
    for _ in range(MAX_ROUNDS):
        ends = both.merge(labels, left_on="src", right_on="node")[["dst", "label"]].rename(columns={"label": "root"})
        ends = ends.merge(labels, left_on="dst", right_on="node")[["root", "label"]]
        proposed = ends.groupby("root").label.min().reset_index().rename(columns={"root": "node", "label": "proposed"})
        step = labels.merge(proposed, on="node", how="left")
        step["new"] = smaller(step["label"], step["proposed"])
        hooked = spill(client, step[["node", "label", "new"]], spill_dir, filesystem)
        if client.compute((hooked["new"] != hooked["label"]).sum()).result() == 0:
            return labels.rename(columns={"label": "component"})
        labels = shortcut(client, hooked[["node", "new"]].rename(columns={"new": "label"}), spill_dir, filesystem)
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")


def components_partition(edges: pd.DataFrame) -> pd.DataFrame:
    """Worker side, the whole edge list: every node with its component's smallest node."""
    table = pa.Table.from_pandas(edges[["src", "dst"]], preserve_index=False)
    nodes, components = component_labels(*(table.column(end).combine_chunks() for end in ("src", "dst")))
    return pa.table([nodes, components], schema=_LABELS).to_pandas()


def shortcut(client, labels: dd.DataFrame, spill_dir: str, filesystem=None) -> dd.DataFrame:
    """Every node's label replaced by its label's label until none changes: labels are roots again."""
    for _ in range(MAX_ROUNDS):
        step = labels.merge(labels.rename(columns={"node": "label", "label": "jump"}), on="label", how="left")
        step["new"] = smaller(step["label"], step["jump"])
        jumped = spill(client, step[["node", "label", "new"]], spill_dir, filesystem)
        labels = jumped[["node", "new"]].rename(columns={"new": "label"})
        if client.compute((jumped["new"] != jumped["label"]).sum()).result() == 0:
            return labels
    raise RuntimeError(f"connected components: labels did not settle in {MAX_ROUNDS} shortcut passes")


def spill(client, frame: dd.DataFrame, spill_dir: str, filesystem=None, schema="infer") -> dd.DataFrame:
    """Materialise a frame as Parquet on the cluster and read it back lazily (`schema`: for columns
    pandas holds as objects, such as bytes, which Dask cannot infer from an empty meta)."""
    path = f"{spill_dir}/round-{uuid.uuid4().hex[:8]}"
    client.compute(
        frame.to_parquet(path, compute=False, write_index=False, filesystem=filesystem, schema=schema)
    ).result()
    return dd.read_parquet(path, filesystem=filesystem)
