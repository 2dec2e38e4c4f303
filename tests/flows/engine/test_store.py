"""The artifact store on a real 2-process Dask cluster: resume, partial recompute, atomicity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import BaseModel, ConfigDict

from flows.engine.executor import map_shards
from flows.engine.store import ArtifactStore, InputFile, ShardRef, StageRef, digest
from tasks.contract import StageOutput, split_by_reason


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_length: int = 3
    fail_marker: str | None = None  # a path: the first shard named "b" fails until this file exists


def load_toy(path: str, relpath: str, params: ToyParams) -> Iterator[tuple[pa.Table, pa.Table]]:
    """A read function: the file as one part, (documents, quarantine), like `tasks.read.read_parts`."""
    words = Path(path).read_text().split()
    ids = [f"{relpath}:{i}" for i in range(len(words))]
    yield pa.table({"id": ids, "text": words}), pa.table({"reason": pa.array([], pa.string())})


def keep_long_words(table: pa.Table, params: ToyParams) -> StageOutput:
    if params.fail_marker and table.column("id")[0].as_py().startswith("b") and not Path(params.fail_marker).exists():
        Path(params.fail_marker).touch()
        raise RuntimeError("injected failure")
    reasons = [None if len(t) >= params.min_length else "toy:char_count" for t in table.column("text").to_pylist()]
    return split_by_reason(table, pa.array(reasons, pa.string()))


@pytest.fixture
def inputs(tmp_path) -> tuple[InputFile, ...]:
    files = []
    for name, words in {
        "a": "the quick brown fox",
        "b": "an ox is by me",
        "c": "jumps over lazy dogs",
        "d": "ok go",
    }.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(words)
        files.append(InputFile(str(path), name, digest(words)))
    return tuple(files)


def run_toy(store: ArtifactStore, inputs, client, params: ToyParams) -> tuple[StageRef, StageRef]:
    read = map_shards(store, "read", 1, load_toy, params, inputs, None, lambda: client)
    kept = map_shards(store, "toy", 1, keep_long_words, params, read.shards, "read", lambda: client)
    return read, kept


def kept_ids(store: ArtifactStore, ref: StageRef) -> list[str]:
    return [i for s in ref.shards for i in store.read_view(ref.stage, s, ["id"]).column("id").to_pylist()]


def test_second_run_recomputes_nothing_and_rewrites_no_file(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    run_toy(store, inputs, dask_client, ToyParams())
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*") if p.is_file()}

    read, kept = run_toy(store, inputs, None, ToyParams())  # no cluster needed: nothing to compute

    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*") if p.is_file()}
    assert (read.computed, kept.computed) == ((), ())
    assert after == before


def test_deleted_shard_file_recomputes_just_that_shard(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    _, first = run_toy(store, inputs, dask_client, ToyParams())
    Path(store.kept_path("toy", first.shards[2])).unlink()

    _, again = run_toy(store, inputs, dask_client, ToyParams())

    assert again.computed == ("c",)
    assert kept_ids(store, again) == kept_ids(store, first)


def test_changed_parameter_recomputes_downstream_shards(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    run_toy(store, inputs, dask_client, ToyParams(min_length=3))

    read, kept = run_toy(store, inputs, dask_client, ToyParams(min_length=4))

    assert len(kept.computed) == 4
    assert kept_ids(store, kept) == ["a:1", "a:2", "c:0", "c:1", "c:2", "c:3"]


def test_output_keyed_shards_keep_their_keys_where_new_params_change_nothing(tmp_path, inputs, dask_client):
    """`key_params`: the stage is keyed by its params, each shard by what it holds, so the stage after
    it recomputes only the shards whose output the new params changed."""
    store = ArtifactStore(str(tmp_path / "store"))

    def run(min_length: int) -> tuple[StageRef, StageRef]:
        read = map_shards(store, "read", 1, load_toy, ToyParams(), inputs, None, lambda: dask_client)
        decided = map_shards(
            store,
            "toy",
            1,
            keep_long_words,
            ToyParams(min_length=min_length),
            read.shards,
            "read",
            lambda: dask_client,
            key_params=ToyParams(),
        )
        after = map_shards(
            store, "after", 1, keep_long_words, ToyParams(min_length=0), decided.shards, "toy", lambda: dask_client
        )
        return decided, after

    first, _ = run(3)
    decided, after = run(4)  # only a's words of 3 letters ("the", "fox") change sides

    assert (decided.computed, after.computed) == (("a",), ("a",))
    assert [s == t for s, t in zip(first.shards, decided.shards)] == [False, True, True, True]
    assert decided.key != first.key and kept_ids(store, decided) == ["a:1", "a:2", "c:0", "c:1", "c:2", "c:3"]
    assert run(3)[0] == first and run(3)[0].computed == ()  # back: the first stage's manifest, nothing run


def test_failed_stage_resumes_from_finished_shards_with_identical_output(tmp_path, inputs, dask_client):
    reference = ArtifactStore(str(tmp_path / "reference"))
    _, expected = run_toy(reference, inputs, dask_client, ToyParams())
    store = ArtifactStore(str(tmp_path / "store"))
    flaky = ToyParams(fail_marker=str(tmp_path / "failed-once"))
    read = map_shards(store, "read", 1, load_toy, flaky, inputs, None, lambda: dask_client)
    with pytest.raises(RuntimeError, match="injected failure") as failure:
        map_shards(store, "toy", 1, keep_long_words, flaky, read.shards, "read", lambda: dask_client)
    assert "shard 'b'" in "\n".join(failure.value.__notes__)
    assert [store.shard_complete("toy", s) for s in store.plan("toy", 1, flaky, read.shards).shards] == [
        True,
        False,
        True,
        True,
    ]

    resumed = map_shards(store, "toy", 1, keep_long_words, flaky, read.shards, "read", lambda: dask_client)

    assert resumed.computed == ("b",)
    assert kept_ids(store, resumed) == kept_ids(reference, expected)


def test_half_written_files_are_not_trusted(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    read, _ = run_toy(store, inputs, dask_client, ToyParams())
    shard = read.shards[0]
    Path(store.stats_path("read", shard)).unlink()  # as if the worker died before the stats were written

    again = map_shards(store, "read", 1, load_toy, ToyParams(), inputs, None, lambda: dask_client)

    assert again.computed == ("a",)
    assert not list((tmp_path / "store").rglob("*.tmp-*"))


def test_keys_change_with_version_params_and_input():
    params = ToyParams()
    base = ArtifactStore.shard_key("toy", 1, params, "input-key")

    assert ArtifactStore.shard_key("toy", 2, params, "input-key") != base
    assert ArtifactStore.shard_key("toy", 1, ToyParams(min_length=4), "input-key") != base
    assert ArtifactStore.shard_key("toy", 1, params, "other-input") != base
    assert ArtifactStore.shard_key("toy", 1, ToyParams(), "input-key") == base


def test_unreadable_artifact_is_a_store_error(tmp_path):
    from tasks.errors import StoreError

    store = ArtifactStore(str(tmp_path))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")

    with pytest.raises(StoreError, match="broken.parquet"):
        store.read_table(str(tmp_path / "broken.parquet"))


def test_shard_ref_names_are_stable_across_stages(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))

    read, kept = run_toy(store, inputs, dask_client, ToyParams())

    assert [s.name for s in read.shards] == [s.name for s in kept.shards] == ["a", "b", "c", "d"]
    assert isinstance(kept.shards[0], ShardRef)


def load_toy_parts(path: str, relpath: str, params: ToyParams):
    """The toy input streamed as parts of two words, as `tasks.read.read_parts` streams a big file."""
    [(docs, quarantined)] = load_toy(path, relpath, params)
    for start in range(0, docs.num_rows, 2):
        yield docs.slice(start, 2), quarantined


def test_a_file_read_as_parts_is_a_shard_per_part(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    read = map_shards(store, "read", 1, load_toy_parts, ToyParams(), inputs, None, lambda: dask_client)
    kept = map_shards(store, "toy", 1, keep_long_words, ToyParams(), read.shards, "read", lambda: dask_client)
    whole = ArtifactStore(str(tmp_path / "whole"))

    assert [s.name for s in read.shards] == ["a", "a@1", "b", "b@1", "b@2", "c", "c@1", "d"]
    assert read.computed == tuple(s.name for s in read.shards)
    assert kept_ids(store, kept) == kept_ids(whole, run_toy(whole, inputs, dask_client, ToyParams())[1])
    assert map_shards(store, "read", 1, load_toy_parts, ToyParams(), inputs, None, lambda: None).shards == read.shards


def test_a_file_missing_one_part_is_read_again_alone(tmp_path, inputs, dask_client):
    store = ArtifactStore(str(tmp_path / "store"))
    first = map_shards(store, "read", 1, load_toy_parts, ToyParams(), inputs, None, lambda: dask_client)
    Path(store.stats_path("read", first.shards[4])).unlink()  # b@2: as if the worker died while writing it

    again = map_shards(store, "read", 1, load_toy_parts, ToyParams(), inputs, None, lambda: dask_client)

    assert again.shards == first.shards
    assert again.computed == ("b", "b@1", "b@2")
    assert store.read_view("read", again.shards[4], ["id"]).column("id").to_pylist() == ["b:4"]
