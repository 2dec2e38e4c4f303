"""Store failures: a full disk or a denied write is a clear StoreError, leaves nothing a rerun trusts,
and the rerun recomputes exactly what is missing; finished directories are published whole, once."""

from __future__ import annotations

import errno
import os

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from distributed import Client
from test_store import ToyParams, kept_ids, load_toy, run_toy

import flows.engine.store
from flows.engine.executor import ShardJob, map_shards, run_jobs
from flows.engine.progress import RunProgress
from flows.engine.store import ArtifactStore, InputFile, digest
from tasks.contract import split_by_reason
from tasks.errors import StoreError


@pytest.fixture(scope="module")
def threaded_client():
    """Workers in this process, so a patched writer is the one the shards call."""
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        yield client


@pytest.fixture
def inputs(tmp_path) -> tuple[InputFile, ...]:
    files = []
    for name, words in {"a": "the quick brown fox", "b": "an ox is by me", "c": "jumps over lazy dogs"}.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(words)
        files.append(InputFile(str(path), name, digest(words)))
    return tuple(files)


def failing_writer(code: int):
    """pq.write_table that writes half a file, then fails as the OS would."""

    def write_table(table, where, **kwargs):
        where.write(b"PAR1" + b"\0" * 100)
        raise OSError(code, os.strerror(code))

    return write_table


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_failed_write_is_a_store_error_and_leaves_no_trusted_file(
    tmp_path, inputs, threaded_client, monkeypatch, code
):
    store = ArtifactStore(str(tmp_path / "store"))
    monkeypatch.setattr(flows.engine.store.pq, "write_table", failing_writer(code))

    with pytest.raises(StoreError, match=f"cannot write artifact \\({os.strerror(code)}\\).*on "):
        map_shards(store, "read", 1, load_toy, ToyParams(), inputs, None, lambda: threaded_client)

    leftovers = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert leftovers == []  # no half-written temporary file, no stats, no manifest


def test_rerun_after_a_full_disk_recomputes_the_failed_shards_and_matches_a_clean_run(
    tmp_path, inputs, threaded_client, monkeypatch
):
    _, clean_run = run_toy(ArtifactStore(str(tmp_path / "clean")), inputs, threaded_client, ToyParams())
    store = ArtifactStore(str(tmp_path / "store"))
    read = map_shards(store, "read", 1, load_toy, ToyParams(), inputs, None, lambda: threaded_client)
    with monkeypatch.context() as patch:
        patch.setattr(flows.engine.store.pq, "write_table", failing_writer(errno.ENOSPC))
        with pytest.raises(StoreError):
            map_shards(store, "toy", 1, split_all_kept, ToyParams(), read.shards, "read", lambda: threaded_client)

    _, rerun = run_toy(store, inputs, threaded_client, ToyParams())

    assert [s.name for s in rerun.shards if s.name in rerun.computed] == ["a", "b", "c"]
    assert kept_ids(store, rerun) == kept_ids(ArtifactStore(str(tmp_path / "clean")), clean_run)


def split_all_kept(table: pa.Table, params: ToyParams):
    return split_by_reason(table, pa.nulls(table.num_rows, pa.string()))


def test_publishing_over_a_finished_directory_keeps_one_copy(tmp_path):
    store = ArtifactStore(str(tmp_path))
    for attempt in ("first", "second"):  # two runs racing, or a rerun after a crash before `_SUCCESS`
        tmp = tmp_path / f"clusters.tmp-{attempt}"
        tmp.mkdir()
        pq.write_table(pa.table({"x": [1, 2, 3]}), tmp / "part.0.parquet")
        (tmp_path / "clusters" / "_SUCCESS").unlink(missing_ok=True)

        store.publish_dir(str(tmp), str(tmp_path / "clusters"))

    assert ds.dataset(tmp_path / "clusters", format="parquet").to_table().num_rows == 3
    assert sorted(p.name for p in (tmp_path / "clusters").iterdir()) == ["_SUCCESS", "part.0.parquet"]
    assert not list(tmp_path.glob("clusters.tmp-*"))


def never_called(*args):
    raise AssertionError("a finished shard was recomputed")


def test_shard_another_run_finished_after_planning_is_reused_not_redone(tmp_path, inputs, threaded_client):
    store = ArtifactStore(str(tmp_path / "store"))
    planned = store.plan("read", 1, ToyParams(), inputs)  # this run sees nothing finished yet
    other_run = map_shards(store, "read", 1, load_toy, ToyParams(), inputs, None, lambda: threaded_client)
    jobs = [
        ShardJob(store.url, "read", shard, src, never_called, ToyParams())
        for shard, src in zip(planned.shards, inputs)
    ]

    errors, results = run_jobs(threaded_client, jobs, "read-test", 0, RunProgress())

    assert errors == []
    assert (
        {name for name, stats in results.items() if stats["reused"]}
        == {s.name for s in other_run.shards}
        == {"a", "b", "c"}
    )


def test_store_that_cannot_be_created_is_a_store_error_naming_it(tmp_path, inputs, threaded_client):
    (tmp_path / "not-a-dir").write_text("a file where the store should go")
    store = ArtifactStore(str(tmp_path / "not-a-dir" / "store"))

    with pytest.raises(StoreError, match=f"on {store.url}"):
        map_shards(store, "read", 1, load_toy, ToyParams(), inputs, None, lambda: threaded_client)
