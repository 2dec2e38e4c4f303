import pyarrow as pa

from tasks.dedup_exact import (
    CLUSTER_SCHEMA,
    DedupExactParams,
    apply,
    position,
    signatures,
    text_hash,
)


def test_hash_ignores_case_and_spacing_by_default():
    params = DedupExactParams()

    assert text_hash("Hello   World\n", params) == text_hash("hello world", params)
    assert text_hash("Hello World", DedupExactParams(casefold=False)) != text_hash("hello world", params)


def test_positions_sort_in_input_order():
    assert sorted([position("b", 0), position("a", 10), position("a", 2)]) == [
        position("a", 2),
        position("a", 10),
        position("b", 0),
    ]


def test_every_copy_but_the_first_is_rejected_with_its_cluster():
    table = pa.table({"id": ["x", "y", "z"], "text": ["same text", "other", "Same  text"]})
    hashes = signatures(table, DedupExactParams(), "s0")
    duplicated = hashes.column("text_hash")[0].as_py()
    clusters = pa.table({"text_hash": [duplicated], "keeper": [position("s0", 0)], "size": [2]}, schema=CLUSTER_SCHEMA)

    out = apply(table, DedupExactParams(), hashes, clusters)

    assert out.kept.column("id").to_pylist() == ["x", "y"]
    assert out.rejected.column("id").to_pylist() == ["z"]
    assert out.rejected.column("reason").to_pylist() == ["dedup_exact:text_hash"]
    assert out.rejected.column("exact_cluster")[0] == out.kept.column("exact_cluster")[0]
    assert out.kept.column("exact_cluster_size").to_pylist() == [2, 1]


def test_keeper_in_an_earlier_shard_rejects_all_copies_here():
    table = pa.table({"id": ["z"], "text": ["same text"]})
    hashes = signatures(table, DedupExactParams(), "s1")
    clusters = pa.table(
        {"text_hash": hashes.column("text_hash").to_pylist(), "keeper": [position("s0", 5)], "size": [2]},
        schema=CLUSTER_SCHEMA,
    )

    out = apply(table, DedupExactParams(), hashes, clusters)

    assert out.kept.num_rows == 0


def test_disabled_dedup_marks_clusters_but_drops_nothing():
    table = pa.table({"id": ["x", "z"], "text": ["same", "same"]})
    hashes = signatures(table, DedupExactParams(enabled=False), "s0")
    clusters = pa.table(
        {"text_hash": [hashes.column("text_hash")[0].as_py()], "keeper": [position("s0", 0)], "size": [2]},
        schema=CLUSTER_SCHEMA,
    )

    out = apply(table, DedupExactParams(enabled=False), hashes, clusters)

    assert out.kept.num_rows == 2
    assert out.kept.column("exact_cluster_size").to_pylist() == [2, 2]
