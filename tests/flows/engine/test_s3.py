"""Input, artifact store and output on S3: a real S3 HTTP API (moto's server mode, `s3_server`) reached
through s3fs by this process and by two Dask worker processes (`dask_cluster`).

One run killed and resumed (module scope) warms a shared store; each test that runs the flow again writes
its output to a bucket of its own, so tests do not depend on each other's order.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CHEAP_TOXICITY
from distributed import Client
from test_distributed import KillOnTask, wait_until_idle, winnow_run
from test_store import ToyParams, keep_long_words, kept_ids, load_toy

from flows.cli.demo import write_demo_corpus
from flows.config import load_config
from flows.engine.executor import map_shards
from flows.engine.publish import OutputDir, new_version_id, version_manifest
from flows.engine.store import ArtifactStore, InputFile, digest
from flows.orchestration.curate import curate
from flows.report.status import run_status
from tasks.errors import StoreError
from tasks.io import expand_inputs, file_fingerprint

BASE_FILES = ("demo-000.jsonl", "demo-001.jsonl.gz", "demo-002.jsonl")  # the demo's 4th file stays out


@pytest.fixture(scope="module")
def s3() -> fsspec.AbstractFileSystem:
    return fsspec.filesystem("s3", use_listings_cache=False)  # the workers write: no stale listings


@pytest.fixture(scope="module")
def base(s3_server, s3, dask_cluster, prefect_api, tmp_path_factory) -> Iterator[dict]:
    """A run over three demo files, all on S3, first killed then resumed: `winnow run` is SIGKILLed
    while a worker holds its first `quality` shard, and the same config run again in-process. Yields
    the resumed run's summary, the `quality` shards the killed run had finished, and the URLs."""
    local = tmp_path_factory.mktemp("demo")
    write_demo_corpus(local, n_docs=100)
    bucket = f"winnow-base-{uuid.uuid4().hex[:8]}"
    s3.mkdir(bucket)
    s3.put([str(local / name) for name in BASE_FILES], f"{bucket}/in/")
    urls = {"input": f"s3://{bucket}/in", "output": f"s3://{bucket}/out", "store": f"s3://{bucket}/store"}
    quality_done = kill_run_in_quality(dask_cluster, prefect_api, urls, tmp_path_factory.mktemp("killed"))
    killed = run_status(urls["store"])  # `winnow status` on the S3 store, after the SIGKILL
    summary = curate(config(dask_cluster, **urls))
    status = run_status(urls["output"])
    yield {**urls, "summary": summary, "quality_done": quality_done, "killed": killed, "status": status}
    s3.rm(bucket, recursive=True)


def kill_run_in_quality(cluster, api: str, urls: dict, tmp: Path) -> int:
    """SIGKILL a `winnow run` on S3 with a `quality` shard in flight; how many quality shards it finished."""
    marker = tmp / "held"
    with Client(cluster, set_as_default=False) as client:
        hold = KillOnTask("quality-", str(marker), block=True)
        client.register_plugin(hold)
        flow = winnow_run(urls["input"], urls["output"], cluster.scheduler_address, api, "--store", urls["store"])
        try:
            deadline = time.monotonic() + 180
            while not marker.exists() and flow.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert marker.exists(), (
                f"the flow ended before the quality stage: {flow.communicate()[1].decode()[-3000:]}"
            )
        finally:
            # the supervised run and its server; none when the flow already ended (the assertion says why)
            descendants = psutil.Process(flow.pid).children(recursive=True) if flow.poll() is None else []
            with contextlib.suppress(ProcessLookupError):  # a flow that ended left no group
                os.killpg(flow.pid, signal.SIGKILL)
            flow.wait()
            psutil.wait_procs(descendants, timeout=15)  # its Dask client gone, its tasks released
            if marker.exists():  # the held shard never ends: its worker dies, and the nanny restarts it
                os.kill(int(marker.read_text().split()[0]), signal.SIGKILL)
            wait_until_idle(client)
    # `hold` stays registered (unregistering raced the restarted worker's connection): with its
    # marker taken it never holds a task again, so the session's cluster serves later tests as before.
    store = ArtifactStore(urls["store"])
    return len(store.fs.glob(f"{store.root}/quality/shards/*/stats.json"))


def config(cluster, input: str, output: str, store: str, *overrides: str):
    return load_config(
        overrides=[
            f"input.paths=[{input}]",
            f"output={output}",
            f"store={store}",
            f"run.cluster.address={cluster.scheduler_address}",
            CHEAP_TOXICITY,
            *overrides,
        ]
    )


def funnel(summary: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in summary["funnel"]}


def published_ids(s3, output: str) -> list[str]:
    """The ids of the version `latest.json` points to, read as any s3fs reader would."""
    pointer = json.loads(s3.cat_file(f"{output}/latest.json"))
    return pq.read_table(pointer["data"].removeprefix("s3://"), filesystem=s3, columns=["id"]).column("id").to_pylist()


def test_cold_run_publishes_a_version_readable_from_s3(base, s3):
    summary = base["summary"]

    ids = published_ids(s3, base["output"])

    rows = funnel(summary)
    assert summary["output"].startswith(f"{base['output']}/versions/{summary['version']}/")
    assert len(ids) == len(set(ids)) == summary["rows"] == rows["write"]["docs_out"] > 0
    assert rows["read"]["docs_in"] - rows["read"]["docs_out"] == sum(rows["read"]["drops"].values()) > 0
    assert rows["dedup_exact"]["drops"] and rows["dedup_fuzzy"]["drops"]  # corpus-wide stages ran on S3
    assert json.loads(s3.cat_file(f"{base['output']}/run_summary.json"))["version"] == summary["version"]


def test_a_killed_run_resumes_from_its_finished_stages_and_shards(base):
    rows = funnel(base["summary"])

    finished = ["read", "url_filter", "extract", "normalize", "langid", "clean", "dedup_exact", "dedup_fuzzy"]
    assert [stage for stage in finished if not rows[stage]["cached"] or rows[stage]["shards_computed"]] == []
    assert rows["quality"]["shards_computed"] == len(BASE_FILES) - base["quality_done"] > 0
    assert (
        base["summary"]["version"] == OutputDir(base["output"]).latest()["version"]
    )  # the killed run published nothing
    assert OutputDir(base["output"]).versions() == [base["summary"]["version"]]


def test_status_says_what_a_rerun_of_the_killed_run_reuses_and_finds_the_store_through_the_output(base):
    (killed, *_) = base["killed"]["runs"]
    rows = {row["stage"]: row for row in killed["stages"]}

    assert killed["state"].startswith("interrupted: its process ")
    assert rows["clean"]["state"] == "complete" and rows["select"]["state"] == "not started"
    assert rows["quality"]["state"] == "interrupted"
    assert rows["quality"]["detail"] == f"quality: a rerun reuses {base['quality_done']} of {len(BASE_FILES)} shards"
    # the resumed run's summary names its store, so the output leads to it
    (resumed, *_) = base["status"]["runs"]
    assert base["status"]["store"] == base["store"]
    assert resumed["state"] == "finished" and resumed["run_id"] == base["summary"]["run_id"]


def test_inspect_shows_rejected_documents_of_a_run_on_s3(base):
    from typer.testing import CliRunner

    from flows.cli.app import app

    drops = funnel(base["summary"])["clean"]["drops"]
    reason = max(drops, key=drops.get)
    n = min(drops[reason], 2)

    result = CliRunner().invoke(app, ["inspect", base["output"], "--stage", "clean", "--reason", reason, "-n", str(n)])

    assert result.exit_code == 0, result.output
    assert result.output.count(reason) == n > 0 and "value=-" not in result.output


def test_rerun_is_cached_everywhere_and_publishes_nothing_new(base, s3, dask_cluster):
    summary = curate(config(dask_cluster, base["input"], base["output"], base["store"]))

    assert [row["stage"] for row in summary["funnel"] if not row["cached"] or row["shards_computed"]] == []
    assert summary["version"] == base["summary"]["version"]
    assert OutputDir(base["output"]).versions() == [summary["version"]]


def test_a_new_input_file_computes_only_its_own_shards(base, s3, dask_cluster, s3_bucket, tmp_path):
    extra = [
        json.loads(line)
        for line in write_demo_corpus(tmp_path, seed=1, n_docs=100)[0].read_text().splitlines()
        if '"defect": null' in line
    ][:10]
    s3.copy([f"{base['input']}/{name}" for name in BASE_FILES], [f"{s3_bucket}/in/{name}" for name in BASE_FILES])
    s3.pipe_file(
        f"{s3_bucket}/in/extra.jsonl",
        "".join(json.dumps({"id": f"extra-{i}", "text": doc["text"]}) + "\n" for i, doc in enumerate(extra)).encode(),
    )

    summary = curate(config(dask_cluster, f"{s3_bucket}/in", f"{s3_bucket}/out", base["store"]))

    rows = funnel(summary)
    computed = {stage: row["shards_computed"] for stage, row in rows.items() if stage != "write"}
    assert set(computed.values()) == {1}, computed  # the other three shards of every stage came from the store
    ids = set(published_ids(s3, f"{s3_bucket}/out"))
    assert set(published_ids(s3, base["output"])) < ids
    assert {i for i in ids if i.startswith("extra-")}


def test_keep_versions_removes_older_versions_but_keeps_the_latest(base, s3, dask_cluster, s3_bucket):
    output = f"{s3_bucket}/out"
    out = OutputDir(output)
    older = [publish_toy_version(out, f"older-{i}", ["x"]) for i in range(2)]

    summary = curate(config(dask_cluster, base["input"], output, base["store"], "write.keep_versions=1"))

    assert out.versions() == [summary["version"]]
    assert not any(s3.exists(out.data_url(version)) for version in older)
    assert sorted(published_ids(s3, output)) == sorted(published_ids(s3, base["output"]))


def publish_toy_version(out: OutputDir, run_id: str, ids: list[str], wait=lambda: None) -> str:
    """A version written and committed the way the `write` task does it: data in place, then commit."""
    version = new_version_id(run_id)
    staging = out.staging_dir(version)
    pq.write_table(pa.table({"id": ids}), f"{staging}/data/part.parquet", filesystem=out.fs)
    manifest = version_manifest(version, digest(run_id), out.data_url(version), {"part": len(ids)}, None, run_id)
    wait()
    out.commit(staging, manifest)
    return version


def test_concurrent_publishers_leave_latest_at_the_newest_complete_version(s3_bucket):
    out = OutputDir(f"{s3_bucket}/out")
    barrier = threading.Barrier(4, timeout=60)  # each round, the four commits start together

    def publisher(k: int) -> list[str]:
        return [
            publish_toy_version(out, uuid.uuid4().hex, [f"{k}-{r}-{i}" for i in range(k + 1)], barrier.wait)
            for r in range(3)
        ]

    with ThreadPoolExecutor(4) as pool:
        published = [version for versions in pool.map(publisher, range(4)) for version in versions]

    latest = out.latest()
    assert out.versions() == sorted(published)  # none lost
    assert latest["version"] == max(published)
    assert pq.read_table(latest["data"].removeprefix("s3://"), filesystem=out.fs).num_rows == latest["rows"]


def test_an_older_version_never_moves_latest_back(s3_bucket):
    out = OutputDir(f"{s3_bucket}/out")
    older_id = new_version_id("00000000")  # within the same millisecond, the run id part orders them
    newer = publish_toy_version(out, "ffffffff", ["b"])
    staging = out.staging_dir(older_id)
    pq.write_table(pa.table({"id": ["a"]}), f"{staging}/data/part.parquet", filesystem=out.fs)

    out.commit(staging, version_manifest(older_id, "k", out.data_url(older_id), {"part": 1}, None, "00000000"))

    assert out.latest()["version"] == newer
    assert out.versions() == [older_id, newer]  # published all the same, and readable


def test_pruning_never_removes_the_version_latest_points_to(s3_bucket):
    out = OutputDir(f"{s3_bucket}/out")
    first, middle, last = (publish_toy_version(out, name, [name]) for name in ("first", "middle", "last"))
    out.fs.pipe_file(f"{out.root}/latest.json", json.dumps({"version": first}).encode())  # rolled back by hand

    removed = out.prune(1)

    assert removed == [middle]
    assert out.versions() == [first, last]
    assert not out.fs.exists(out.data_url(middle))


def test_a_long_lived_process_sees_input_files_added_or_changed_since_it_listed(s3_bucket, s3):
    s3.pipe_file(f"{s3_bucket}/in/a.jsonl", b'{"text": "a"}\n')
    first = expand_inputs([f"{s3_bucket}/in/*.jsonl"])
    fingerprint = file_fingerprint(first[0][0])
    s3.pipe_file(f"{s3_bucket}/in/a.jsonl", b'{"text": "a, edited"}\n')
    s3.pipe_file(f"{s3_bucket}/in/b.jsonl", b'{"text": "b"}\n')

    second = expand_inputs([f"{s3_bucket}/in/*.jsonl"])

    assert [relpath for _, relpath in second] == ["a.jsonl", "b.jsonl"]  # a served flow's next run finds b
    assert file_fingerprint(second[0][0]) != fingerprint  # and recomputes a


def test_failed_shard_write_leaves_no_object(s3_bucket):
    folder = ArtifactStore(f"{s3_bucket}/store")

    def write_half_then_fail(f):
        f.write(b"PAR1" + b"\0" * 100)
        raise OSError(28, "No space left on device")

    with pytest.raises(StoreError, match="cannot write artifact"):
        folder.write_atomic(f"{folder.root}/stage/shard.parquet", write_half_then_fail)

    assert folder.fs.find(folder.root) == []


def test_stage_failing_on_one_shard_resumes_from_the_finished_shards_on_s3(s3_bucket, dask_client, tmp_path):
    inputs = []
    for name, words in {"a": "the quick brown fox", "b": "an ox is by me", "c": "jumps over lazy dogs"}.items():
        (tmp_path / name).write_text(words)
        inputs.append(InputFile(str(tmp_path / name), name, digest(words)))
    store = ArtifactStore(f"{s3_bucket}/store")
    params = ToyParams(fail_marker=str(tmp_path / "failed-once"))  # shard "b" fails the first time only
    read = map_shards(store, "read", 1, load_toy, params, inputs, None, lambda: dask_client)
    with pytest.raises(RuntimeError, match="injected failure"):
        map_shards(store, "toy", 1, keep_long_words, params, read.shards, "read", lambda: dask_client)

    resumed = map_shards(store, "toy", 1, keep_long_words, params, read.shards, "read", lambda: dask_client)

    assert resumed.computed == ("b",)
    assert kept_ids(store, resumed) == ["a:0", "a:1", "a:2", "a:3", "c:0", "c:1", "c:2", "c:3"]


def test_publishing_a_directory_twice_keeps_one_copy(s3_bucket):
    store = ArtifactStore(f"{s3_bucket}/store")
    final = f"{store.root}/clusters"
    for attempt in ("first", "second"):  # two runs racing, or a rerun after a crash
        tmp = f"{final}.tmp-{attempt}"
        pq.write_table(pa.table({"x": [1, 2, 3]}), f"{tmp}/part.0.parquet", filesystem=store.fs)

        store.publish_dir(tmp, final)

    assert sorted(Path(p).name for p in store.fs.find(final)) == ["_SUCCESS", "part.0.parquet"]
    assert pq.read_table(f"{final}/part.0.parquet", filesystem=store.fs).num_rows == 3
    assert (
        store.fs.find(f"{store.root}/clusters.tmp-first") == store.fs.find(f"{store.root}/clusters.tmp-second") == []
    )
