"""Connected components on a real Dask cluster equal the in-memory union-find."""

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flows.parallel.components import connected_components
from tasks.dedup_fuzzy import EDGE_SCHEMA, union_find_components

pytestmark = pytest.mark.slow  # each round of label propagation is several shuffles on the cluster


def components_on_dask(client, pairs: list[tuple[str, str]], partitions: int, tmp_path) -> dict[str, str]:
    edges = dd.from_pandas(pd.DataFrame(pairs, columns=["src", "dst"]), npartitions=partitions)
    labels = client.compute(connected_components(client, edges, str(tmp_path / "spill"))).result()
    return dict(zip(labels["node"], labels["component"]))


def reference(pairs: list[tuple[str, str]]) -> dict[str, str]:
    table = union_find_components(
        pa.table({"src": [a for a, _ in pairs], "dst": [b for _, b in pairs]}, schema=EDGE_SCHEMA)
    )
    return dict(zip(table.column("position").to_pylist(), table.column("component").to_pylist()))


@pytest.mark.parametrize("seed", [0, 1])
def test_random_sparse_graph_matches_union_find(dask_client, tmp_path, seed):
    rng = np.random.default_rng(seed)
    pairs = [(f"n{a:04d}", f"n{b:04d}") for a, b in rng.integers(0, 600, size=(400, 2))]

    assert components_on_dask(dask_client, pairs, 3, tmp_path) == reference(pairs)


def test_long_shuffled_chain_converges_to_its_smallest_node(dask_client, tmp_path):
    """Regression: moving only a node's own label took 307 rounds for this chain (64 allowed); a
    200-node chain already took 48 to 91, by its order."""
    order = np.random.default_rng(1).permutation(1000)
    pairs = [(f"n{a:04d}", f"n{b:04d}") for a, b in zip(order[:-1], order[1:])]

    labels = components_on_dask(dask_client, pairs, 4, tmp_path)

    assert set(labels.values()) == {"n0000"} and len(labels) == 1000
