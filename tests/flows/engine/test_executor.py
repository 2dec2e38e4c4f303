"""The executor's row blocks: a phase that splits its shards (`Phase.split`) spreads one shard over
every worker, and its output is the same whoever runs the blocks."""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pytest
from test_store import ToyParams, load_toy

from flows.engine.executor import SPLIT_TEXT_BYTES, ShardJob, call_in_blocks, map_shards, row_blocks
from flows.engine.store import ArtifactStore, InputFile, ShardRef, digest
from tasks.contract import StageOutput, split_by_reason


def test_blocks_are_whole_rows_cut_where_the_text_before_a_row_reaches_the_limit():
    table = pa.table({"id": list("abcdef"), "text": ["x" * 4, "x" * 4, None, "x" * 9, "x", "x" * 2]})

    blocks = row_blocks(table, limit=8)

    # text before each row: 0, 4, 8, 8, 17, 18 -> blocks 0, 0, 1, 1, 2, 2: a long row is never cut
    assert [b.column("id").to_pylist() for b in blocks] == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert pa.concat_tables(blocks).equals(table)
    assert row_blocks(table.slice(0, 0), limit=8)[0].num_rows == 0
    assert len(row_blocks(table, limit=1_000)) == 1


def tag_worker(table: pa.Table, params: ToyParams) -> StageOutput:
    """A row-local stage that takes its time per block and says which process ran each row."""
    time.sleep(0.5)
    reasons = pa.array([None if len(t) >= params.min_length else "toy:char_count" for t in table["text"].to_pylist()])
    return split_by_reason(table.append_column("pid", pa.array([os.getpid()] * table.num_rows)), reasons)


@pytest.fixture
def one_large_file(tmp_path) -> tuple[InputFile, ...]:
    """One input file whose documents hold ~3 blocks of text: one shard, all there is to do."""
    words = [("w" * (i % 7)) + "z" * 600 if i % 5 else "ok" for i in range(2_500)]
    path = tmp_path / "in" / "one"
    path.parent.mkdir()
    path.write_text(" ".join(words))
    return (InputFile(str(path), "one", digest(words)),)


def test_one_split_shard_runs_on_every_worker_with_the_output_of_its_blocks_run_in_one_process(
    tmp_path, one_large_file, dask_client
):
    store = ArtifactStore(str(tmp_path / "store"))
    read = map_shards(store, "read", 1, load_toy, ToyParams(), one_large_file, None, lambda: dask_client)
    split = map_shards(store, "toy", 1, tag_worker, ToyParams(), read.shards, "read", lambda: dask_client, split=True)

    out = store.read_view("toy", split.shards[0], ["id", "pid"])
    table = store.read_view("read", read.shards[0])
    job = ShardJob(store.url, "toy", ShardRef("one", "k"), "", tag_worker, ToyParams(), split=True)
    with dask_client.as_current():  # a client in this process, but no worker: the blocks run here
        here, _ = call_in_blocks(job, table)

    assert len(row_blocks(table)) >= 3 and sum(len(t) for t in table["text"].to_pylist()) > 2 * SPLIT_TEXT_BYTES
    assert len(set(out.column("pid").to_pylist())) == 2  # both workers took blocks of the one shard
    assert out.column("id").to_pylist() == here.kept.column("id").to_pylist()
    rejected = store.read_rejected("toy", split.shards[0], ["id", "reason"])
    assert rejected.to_pylist() == here.rejected.select(["id", "reason"]).to_pylist() and rejected.num_rows == 500


def number_rows(table: pa.Table, params: ToyParams, first_row: int = 0) -> pa.Table:
    """A signature-like phase: each row numbered by its place in the shard, and the process that ran it."""
    rows = pa.array(range(first_row, first_row + table.num_rows), pa.int64())
    return pa.table({"row": rows, "pid": pa.array([os.getpid()] * table.num_rows)})


def test_a_numbered_split_phase_numbers_each_row_by_its_place_in_the_shard(tmp_path, one_large_file, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    read = map_shards(store, "read", 1, load_toy, ToyParams(), one_large_file, None, lambda: dask_client)

    numbered = map_shards(
        store, "rows", 1, number_rows, ToyParams(), read.shards, "read", lambda: dask_client, split=True, numbered=True
    )

    out = store.read_table(store.kept_path("rows", numbered.shards[0]))
    assert out.column("row").to_pylist() == list(range(store.read_view("read", read.shards[0]).num_rows))
    assert len(set(out.column("pid").to_pylist())) == 2  # split over both workers, yet numbered as one shard
