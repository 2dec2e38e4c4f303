"""Connected components of a large edge list on Dask, with memory bounded by partition size.

Min-label propagation with pointer jumping: every node starts labelled with itself; each round a node
takes the smallest label among its own and its neighbours', then its label's label. Each round's
labels are written to Parquet and read back, so a round holds at most a partition per worker and the
task graph never grows with the number of rounds. LSH star edges converge in a few rounds; pointer
jumping keeps long chains to about log2(diameter) rounds. The component id is the smallest node of
the component: independent of partitioning and of edge order.
"""

from __future__ import annotations

import uuid

import dask.dataframe as dd

MAX_ROUNDS = 64


def smaller(a: dd.Series, b: dd.Series) -> dd.Series:
    """Element-wise minimum of two string series where `b` may be missing."""
    return a.where(b.isna() | (a <= b), b)


def connected_components(client, edges: dd.DataFrame, spill_dir: str, filesystem=None) -> dd.DataFrame:
    """`edges` has string columns `src`, `dst`; returns (`node`, `component`) for every node in an edge."""
    both = dd.concat([edges[["src", "dst"]], edges.rename(columns={"src": "dst", "dst": "src"})[["src", "dst"]]])
    first = both.groupby("src").dst.min().reset_index().rename(columns={"src": "node", "dst": "label"})
    first["label"] = smaller(first["node"], first["label"])
    labels = spill(client, first, spill_dir, filesystem)
    for _ in range(MAX_ROUNDS):
        seen = both.merge(labels, left_on="dst", right_on="node")[["src", "label"]]
        proposed = seen.groupby("src").label.min().reset_index().rename(columns={"src": "node", "label": "proposed"})
        step = labels.merge(proposed, on="node", how="left")
        step["new"] = smaller(step["label"], step["proposed"])
        jumps = labels.rename(columns={"node": "new", "label": "jump"})
        step = step.merge(jumps, on="new", how="left")
        step["new"] = smaller(step["new"], step["jump"])
        spilled = spill(client, step[["node", "label", "new"]], spill_dir, filesystem)
        changed = client.compute((spilled["new"] != spilled["label"]).sum()).result()
        labels = spilled[["node", "new"]].rename(columns={"new": "label"})
        if changed == 0:
            return labels.rename(columns={"label": "component"})
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")


def spill(client, frame: dd.DataFrame, spill_dir: str, filesystem=None, schema="infer") -> dd.DataFrame:
    """Materialise a frame as Parquet on the cluster and read it back lazily (`schema`: for columns
    pandas holds as objects, such as bytes, which Dask cannot infer from an empty meta)."""
    path = f"{spill_dir}/round-{uuid.uuid4().hex[:8]}"
    client.compute(
        frame.to_parquet(path, compute=False, write_index=False, filesystem=filesystem, schema=schema)
    ).result()
    return dd.read_parquet(path, filesystem=filesystem)
