"""Worker-side pieces of the global stages, on real Parquet files."""

import pyarrow as pa
import pyarrow.parquet as pq

import tasks.dedup_exact
from flows.dedup import apply_exact_shard
from tasks.dedup_exact import CLUSTER_SCHEMA, DedupExactParams, position, signatures


def test_exact_marking_of_a_shard_left_empty_by_earlier_stages(tmp_path):
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    pq.write_table(signatures(empty, DedupExactParams(), "s1"), tmp_path / "signatures.parquet")
    (tmp_path / "clusters").mkdir()
    pq.write_table(pa.table({"text_hash": ["h"], "keeper": [position("s0", 0)], "size": [2]}, schema=CLUSTER_SCHEMA),
                   tmp_path / "clusters" / "part.0.parquet")

    out = apply_exact_shard(empty, DedupExactParams(), str(tmp_path), str(tmp_path / "signatures.parquet"),
                            str(tmp_path / "clusters"))

    assert (out.kept.num_rows, out.rejected.num_rows) == (0, 0)
    assert "exact_cluster" in out.kept.column_names


def test_exact_marking_reads_only_the_clusters_of_its_shard(tmp_path):
    table = pa.table({"id": ["a", "b"], "text": ["one text", "two text"]})
    hashes = signatures(table, DedupExactParams(), "s1")
    pq.write_table(hashes, tmp_path / "signatures.parquet")
    (tmp_path / "clusters").mkdir()
    first_hash = hashes.column("text_hash")[0].as_py()
    pq.write_table(pa.table({"text_hash": [first_hash, "other"], "keeper": [position("s0", 3), position("s0", 4)],
                             "size": [2, 5]}, schema=CLUSTER_SCHEMA), tmp_path / "clusters" / "part.0.parquet")

    out = apply_exact_shard(table, DedupExactParams(), str(tmp_path), str(tmp_path / "signatures.parquet"),
                            str(tmp_path / "clusters"))

    assert out.rejected.column("id").to_pylist() == ["a"]
    assert out.kept.column("exact_cluster_size").to_pylist() == [1]
    assert tasks.dedup_exact.REASON == out.rejected.column("reason")[0].as_py()
