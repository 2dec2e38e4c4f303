"""Connected components on a real Dask cluster equal the in-memory union-find."""

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flows.parallel.components import connected_components
from tasks.dedup_fuzzy import EDGE_SCHEMA, label_components

pytestmark = pytest.mark.slow  # each round of label propagation is several shuffles on the cluster


def components_on_dask(client, pairs: list[tuple[str, str]], partitions: int, tmp_path) -> dict[str, str]:
    edges = dd.from_pandas(pd.DataFrame(pairs, columns=["src", "dst"]), npartitions=partitions)
    labels = client.compute(connected_components(client, edges, str(tmp_path / "spill"), in_memory_edges=0)).result()
    return dict(zip(labels["node"], labels["component"]))


def reference(pairs: list[tuple[str, str]]) -> dict[str, str]:
    table = label_components(
        pa.table({"src": [a for a, _ in pairs], "dst": [b for _, b in pairs]}, schema=EDGE_SCHEMA)
    )
    return dict(zip(table.column("position").to_pylist(), table.column("component").to_pylist()))


def random_sparse_graph(seed: int, prefix: str) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    return [(f"{prefix}{a:04d}", f"{prefix}{b:04d}") for a, b in rng.integers(0, 600, size=(400, 2))]


def shuffled_chain(n: int, prefix: str) -> list[tuple[str, str]]:
    order = np.random.default_rng(1).permutation(n)
    return [(f"{prefix}{a:04d}", f"{prefix}{b:04d}") for a, b in zip(order[:-1], order[1:])]


def test_components_match_union_find_on_random_graphs_and_a_long_shuffled_chain(dask_client, tmp_path):
    """Two random sparse graphs and a 1,000-node shuffled chain, disjoint, in one run (each round of label
    propagation is several shuffles: one run for all three). Regression for the chain: moving only a
    node's own label took 307 rounds for it (64 allowed); a 200-node chain already took 48 to 91."""
    graphs = {"r": random_sparse_graph(0, "r"), "s": random_sparse_graph(1, "s"), "c": shuffled_chain(1000, "c")}

    labels = components_on_dask(dask_client, [pair for pairs in graphs.values() for pair in pairs], 2, tmp_path)

    for prefix in ("r", "s"):
        assert {node: label for node, label in labels.items() if node.startswith(prefix)} == reference(graphs[prefix])
    chain = {node: label for node, label in labels.items() if node.startswith("c")}
    assert set(chain.values()) == {"c0000"} and len(chain) == 1000


def test_one_task_labels_a_small_edge_list_as_union_find_does(dask_client, tmp_path):
    """Below `in_memory_edges` one task labels the whole list (scipy): the same labels as the rounds give."""
    graphs = {"r": random_sparse_graph(2, "r"), "c": shuffled_chain(300, "c")}
    pairs = [pair for pairs in graphs.values() for pair in pairs]
    edges = dd.from_pandas(pd.DataFrame(pairs, columns=["src", "dst"]), npartitions=3)

    labels = dask_client.compute(
        connected_components(dask_client, edges, str(tmp_path / "spill"), in_memory_edges=len(pairs))
    ).result()

    assert dict(zip(labels["node"], labels["component"])) == reference(pairs)
    assert len(labels) == len({node for pair in pairs for node in pair})
    assert len(list((tmp_path / "spill").iterdir())) == 1  # one step written, no propagation rounds
