"""The persistent dedup index on its own (no Prefect, no Dask), then the engine's use of it."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pyarrow as pa

from flows.config import load_config
from flows.engine.context import open_context
from flows.engine.index import CorpusIndex, IndexRecord
from flows.engine.store import ArtifactStore, ShardRef, StageRef, digest
from flows.stages import STAGES
from tasks.dedup_exact import DedupExactParams

PARAMS = DedupExactParams(index="main")


def index_of(store: ArtifactStore, params=PARAMS) -> CorpusIndex:
    return CorpusIndex(store, "dedup_exact", "main", params, "hashes")


def record(path: str, upstream: str, batch: str = "b1", params=PARAMS) -> IndexRecord:
    return IndexRecord(path, upstream, digest(params), f"marked-{upstream}", batch, "salt", "clusters", "signatures")


def upstream(*shards: tuple[str, str]) -> StageRef:
    return StageRef("dedup_exact.in", "k", tuple(ShardRef(name, key) for name, key in shards))


def test_a_decided_shard_keeps_its_record_and_only_the_others_are_new(tmp_path):
    index = index_of(ArtifactStore(str(tmp_path)))
    index.commit("b1", {"a": record("/in/a", "ka")})

    decided, new = index_of(ArtifactStore(str(tmp_path))).split(upstream(("a", "ka"), ("b", "kb")))

    assert decided == {0: record("/in/a", "ka")}
    assert [shard.name for shard in new.shards] == ["b"]


def test_a_shard_decided_under_other_params_is_decided_again(tmp_path):
    index_of(ArtifactStore(str(tmp_path))).commit("b1", {"a": record("/in/a", "ka")})
    casefold_off = DedupExactParams(index="main", casefold=False)

    decided, new = index_of(ArtifactStore(str(tmp_path)), casefold_off).split(upstream(("a", "ka")))

    assert decided == {} and [shard.name for shard in new.shards] == ["a"]


def test_a_modified_file_is_decided_again_against_everything_but_its_own_earlier_copy(tmp_path):
    index = index_of(ArtifactStore(str(tmp_path)))
    index.commit("b1", {"a": record("/in/a", "ka"), "b": record("/in/b", "kb")})
    index.commit("b2", {"c": record("/in/c", "kc", batch="b2")})

    decided, new = index.split(upstream(("a", "ka-modified"), ("b", "kb"), ("c", "kc")))
    entries = index.entries({"/in/a"})

    assert sorted(decided) == [1, 2] and [shard.name for shard in new.shards] == ["a"]
    assert [(e.batch, e.shard) for e in entries] == [("b1", "b"), ("b2", "c")]
    assert entries[0].path == f"{tmp_path}/dedup_exact/index/main/b1/b.hashes.parquet"
    assert entries[0].name == "!index/b1/b"


def test_a_batch_without_its_success_mark_is_not_part_of_the_index(tmp_path):
    store = ArtifactStore(str(tmp_path))
    index_of(store).commit("b1", {"a": record("/in/a", "ka")})
    store.write_json(f"{index_of(store).batch_dir('b2')}/_shards.json", {"b": record("/in/b", "kb", "b2").__dict__})

    assert list(index_of(store).batches) == ["b1"]


def test_records_are_read_once_per_index_object(tmp_path):
    store = ArtifactStore(str(tmp_path))
    index_of(store).commit("b1", {"a": record("/in/a", "ka")})
    index = index_of(store)
    index.split(upstream(("a", "ka")))

    shutil.rmtree(tmp_path / "dedup_exact" / "index")

    assert [e.shard for e in index.entries(set())] == ["a"]


def test_concurrent_commits_of_different_batches_are_all_visible(tmp_path):
    store = ArtifactStore(str(tmp_path))
    batches = [f"b{i}" for i in range(8)]
    threads = [
        threading.Thread(target=index_of(store).commit, args=(b, {f"s{b}": record(f"/in/{b}", f"k{b}", b)}))
        for b in batches
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(index_of(store).batches) == batches


def test_a_deleted_decided_shard_is_marked_again_from_its_batch_clusters(tmp_path, dask_cluster):
    inputs = tmp_path / "in"
    inputs.mkdir()
    texts = ["the same text", "another text", "the same text", "a third text"]
    for i, half in enumerate((texts[:2], texts[2:])):
        (inputs / f"part-{i}.jsonl").write_text("".join(json.dumps({"id": t, "text": t}) + "\n" for t in half))
    cfg = load_config(
        overrides=[
            f"input.paths=[{inputs}]",
            f"output={tmp_path / 'out'}",
            f"run.cluster.address={dask_cluster.scheduler_address}",
            "dedup_exact.index=main",
        ]
    )
    read, exact = STAGES["read"], STAGES["dedup_exact"]

    with open_context(cfg) as ctx:
        first = exact.run(ctx, read.run(ctx, None))
    kept = {s.name: ctx.store.read_table(ctx.store.kept_path("dedup_exact", s)) for s in first.shards}
    shutil.rmtree(Path(ctx.store.shard_dir("dedup_exact", first.shards[1].key)))
    with open_context(cfg) as ctx:
        again = exact.run(ctx, read.run(ctx, None))

    assert again.shards == first.shards
    assert ctx.store.read_table(ctx.store.kept_path("dedup_exact", again.shards[1])).equals(kept[again.shards[1].name])
    assert kept[first.shards[1].name].num_rows == 1  # its copy of "the same text" was removed, as before
    assert pa.concat_tables(kept.values()).num_rows == 3
