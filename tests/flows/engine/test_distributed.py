"""Beyond one process tree: the `curate` flow on a scheduler and two workers started by the `dask`
CLI (separate processes, TCP on 127.0.0.1), through killed workers and a killed flow process.

A worker is killed deterministically "in the middle" by a test-side WorkerPlugin: when the worker
starts the first task of the chosen stage, the plugin SIGKILLs its own process (the nanny then starts
a fresh one, as Kubernetes or Slurm would restart a pod or job).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import psutil
import pyarrow.parquet as pq
import pytest
from conftest import CHEAP_TOXICITY
from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

from flows.cli.demo import write_demo_corpus
from flows.config import load_config
from flows.orchestration.curate import curate

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # its own scheduler and worker processes
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the plugins below run on the workers

BIN = Path(sys.executable).parent
HOSTILE = [  # bad input reaches the flow too (tests/tasks/test_read_fuzz.py fuzzes `read` itself)
    b'{"id": "h1", "text": "A plain sentence about the weather in the hills, long enough to read well."}',
    b'{"id": "h1", "text": "the same id again"}',
    b'{"id": "h2", "text": "caf\xe9 in Latin-1"}',
    b'{"id": "h3", "text": "nul \\u0000 inside", "m": "\x00"}',
    b'{"id": "h4", "text": "cut',
    b"\xff\xfe\x00\x00",
    b"[1, 2]",
    b'{"id": "h5", "text": "deep", "m": ' + b"[" * 1000 + b"]" * 1000 + b"}",
]
N_DOCS = 200  # the demo's defects at a third of its size: every stage still has work


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KillOnTask(WorkerPlugin):
    """SIGKILL this worker when it starts the first task (cluster-wide) whose key begins with `prefix`.

    With `block`, it instead stops there (holding the task) until killed from outside.
    """

    def __init__(self, prefix: str, marker: str, block: bool = False):
        self.prefix, self.marker, self.block = prefix, marker, block
        self.name = f"kill-on-{prefix}"

    def transition(self, key, start, finish, **kwargs):
        name = key[0] if isinstance(key, tuple) else key
        if finish != "executing" or not str(name).startswith(self.prefix):
            return
        claim = f"{self.marker}.{os.getpid()}"
        Path(claim).write_text(f"{os.getpid()} {name}")
        try:  # the first task cluster-wide wins; a link appears whole, so the marker is never read empty
            os.link(claim, self.marker)
        except FileExistsError:
            return
        finally:
            os.unlink(claim)
        if not self.block:
            os.kill(os.getpid(), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cli_processes(tmp_path_factory):
    """`dask scheduler` + two `dask worker --nthreads 1`, each its own process group; always stopped.
    One per module: a killed worker is restarted by its nanny, so each test gets both back (`cli_cluster`)
    and leaves behind only its plugin, inert once its marker is taken."""
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "ACERO_ALIGNMENT_HANDLING": "ignore", "PYTHONPATH": os.getcwd()}
    log = open(tmp_path_factory.mktemp("cli-cluster") / "cluster.log", "wb")
    commands = [
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"]
    ]
    commands += [
        [
            str(BIN / "dask"),
            "worker",
            address,
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--memory-limit",
            "2GiB",
            "--name",
            f"w{i}",
        ]
        for i in range(2)
    ]
    processes = []
    try:
        for command in commands:
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            yield address, client
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture
def cli_cluster(cli_processes):
    """The module's CLI cluster with both workers up and nothing left running from an earlier test."""
    _, client = cli_processes
    wait_until_idle(client)
    return cli_processes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "input"
    write_demo_corpus(directory, n_docs=N_DOCS)
    (directory / "hostile.jsonl").write_bytes(b"\n".join(HOSTILE) + b"\n")
    records = b"".join(
        json.dumps(
            {
                "id": f"cut-{i}",
                "text": f"Record {i} of a crawl file whose download was cut "
                "short, long enough to be a document of its own. " * 4,
            }
        ).encode()
        + b"\n"
        for i in range(40)
    )
    compressed = gzip.compress(records)
    (directory / "cut.jsonl.gz").write_bytes(compressed[: len(compressed) * 3 // 5])  # a cut download
    return directory


def config(corpus: Path, output: Path, address: str, *overrides: str):
    return load_config(
        overrides=[
            f"input.paths=[{corpus}]",
            f"output={output}",
            f"run.cluster.address={address}",
            CHEAP_TOXICITY,
            *overrides,
        ]
    )


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory, dask_cluster, prefect_harness):
    """The fault-free run on the session LocalCluster."""
    output = tmp_path_factory.mktemp("reference")
    curate(config(corpus, output, dask_cluster.scheduler_address))
    return pq.read_table(output / "data")


def assert_same_dataset(output: Path, reference):
    table = pq.read_table(output / "data")
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids))  # no duplicates
    assert ids == reference.column("id").to_pylist()  # nothing missing, same order
    assert table.equals(reference)  # same content, column for column


def funnel(output: Path) -> dict[str, dict]:
    return {row["stage"]: row for row in json.loads((output / "run_summary.json").read_text())["funnel"]}


def test_cli_started_scheduler_and_workers_give_the_local_cluster_output(corpus, tmp_path, cli_cluster, reference):
    address, client = cli_cluster

    curate(config(corpus, tmp_path / "out", address))

    assert_same_dataset(tmp_path / "out", reference)
    assert len(client.scheduler_info()["workers"]) == 2
    read = funnel(tmp_path / "out")["read"]
    assert read["docs_in"] == read["docs_out"] + sum(read["drops"].values())
    assert {
        "read:duplicate_id",
        "read:invalid_utf8",
        "read:invalid_json",
        "read:not_an_object",
        "read:nesting_depth",
        "read:truncated_stream",
    } <= set(read["drops"])


def test_workers_killed_mid_map_stage_and_mid_dedup_clustering_cost_retries_not_documents(
    corpus, tmp_path, cli_cluster, reference
):
    address, client = cli_cluster
    markers = {prefix: tmp_path / f"killed-{prefix}" for prefix in ("clean-", "clusters_in_one_task-")}
    for prefix, marker in markers.items():
        client.register_plugin(KillOnTask(prefix, str(marker)))

    curate(config(corpus, tmp_path / "out", address))

    assert [prefix for prefix, marker in markers.items() if not marker.exists()] == []  # both workers died
    assert_same_dataset(tmp_path / "out", reference)


def test_killed_flow_process_resumes_from_finished_stages_and_shards(
    corpus, tmp_path, cli_cluster, reference, prefect_api
):
    address, client = cli_cluster
    marker, output = tmp_path / "held", tmp_path / "out"
    client.register_plugin(KillOnTask("quality-", str(marker), block=True))
    flow = winnow_run(corpus, output, address, prefect_api, "--set", "run.progress.every_s=0.5")
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and flow.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the flow ended before the quality stage: {flow.communicate()[1].decode()[-3000:]}"
        held = held_status(output)  # `winnow status` from another process, the run held mid-stage
        time.sleep(2.5)  # the held stage's plain lines: every_s 0.5, on the run's one-second tick
        descendants = psutil.Process(flow.pid).children(recursive=True)  # the supervised run, Prefect's server
        os.killpg(flow.pid, signal.SIGKILL)  # the flow process dies with a quality shard in flight
        _, stderr = flow.communicate()
    finally:
        if flow.poll() is None:
            os.killpg(flow.pid, signal.SIGKILL)
            flow.wait()
    _, alive = psutil.wait_procs(descendants, timeout=15)
    assert [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []  # nothing of the run is left
    held_worker = int(marker.read_text().split()[0])
    os.kill(held_worker, signal.SIGKILL)  # the held shard never finishes; its nanny restarts the worker
    wait_until_idle(client)
    quality_done = len(list((output / ".winnow-store" / "quality" / "shards").glob("*/stats.json")))
    n_files = len(list(corpus.iterdir()))

    assert re.fullmatch(rf"quality, \d+/{n_files} shards(, .*)?", held["quality"]), held  # 0 done: no rates yet
    assert held["clean"].startswith("complete") and held["select"] == "not started"
    killed = stage_status(output)
    assert killed["run"].startswith("interrupted: its process ")
    assert killed["quality"] == f"interrupted: quality: a rerun reuses {quality_done} of {n_files} shards"
    # not a terminal: plain progress lines, each stage's as it ended and the held one's every 0.5 s
    log = stderr.decode()
    assert re.search(r"\| progress \| ✓ clean: [\d,]+ → [\d,]+ docs", log)
    assert len(re.findall(rf"\| progress \| quality: \d+/{n_files} shards", log)) >= 2
    assert "Task run 'clean-" not in log  # Prefect's per-task line: the progress line says it, with figures

    curate(config(corpus, output, address))

    rows = funnel(output)
    finished = ["read", "url_filter", "extract", "normalize", "langid", "clean", "dedup_exact", "dedup_fuzzy"]
    assert all(rows[stage]["cached"] and rows[stage]["shards_computed"] == 0 for stage in finished)
    assert rows["quality"]["shards_computed"] == len(list(corpus.iterdir())) - quality_done
    assert_same_dataset(output, reference)


def stage_status(output: Path) -> dict[str, str]:
    """`winnow status <output>` in its own process: each stage's state and detail, and the run's state."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from flows.report.status import run_status; print(json.dumps(run_status(sys.argv[1])))",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    (run, *_) = json.loads(done.stdout)["runs"]
    return {"run": run["state"]} | {
        row["stage"]: f"{row['state']}: {row['detail']}".rstrip(": ") for row in run["stages"]
    }


def held_status(output: Path, timeout: float = 30) -> dict[str, str]:
    """The status once the journal's heartbeat has caught up with the held stage."""
    deadline = time.monotonic() + timeout
    while True:
        status = stage_status(output)
        if status.get("quality", "").startswith("running: quality, ") or time.monotonic() > deadline:
            return {stage: text.removeprefix("running: ") for stage, text in status.items()}
        time.sleep(0.5)


def winnow_run(corpus: Path, output: Path, address: str, api: str, *args: str) -> subprocess.Popen:
    """`winnow run` in its own process, reporting to the Prefect API at `api` (the session's test
    server: an ephemeral server per run would cost a server start and a database migration each)."""
    env = {**os.environ, "PREFECT_API_URL": api}
    return subprocess.Popen(
        [
            str(BIN / "winnow"),
            "run",
            "-i",
            str(corpus),
            "-o",
            str(output),
            "--set",
            f"run.cluster.address={address}",
            "--set",
            CHEAP_TOXICITY,
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_concurrent_runs_on_one_store_neither_corrupt_nor_redo_each_others_work(
    corpus, tmp_path, cli_cluster, reference, prefect_api
):
    address, _ = cli_cluster
    store = tmp_path / "store"
    strict = "select.thresholds=[{column: lang_score, min: 0.9}]"
    runs = {
        "same": winnow_run(corpus, tmp_path / "same", address, prefect_api, "--store", str(store)),
        "strict": winnow_run(
            corpus, tmp_path / "strict", address, prefect_api, "--store", str(store), "--set", strict
        ),
    }
    for name, process in runs.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr.decode()[-2000:]}"

    assert_same_dataset(tmp_path / "same", reference)
    strict_ids = [
        i
        for i, score in zip(reference.column("id").to_pylist(), reference.column("lang_score").to_pylist())
        if score >= 0.9
    ]
    assert pq.read_table(tmp_path / "strict" / "data").column("id").to_pylist() == strict_ids
    assert list(store.rglob("*.tmp-*")) == []
    again = curate(config(corpus, tmp_path / "same", address, f"store={store}"))
    assert [row["stage"] for row in again["funnel"] if row["shards_computed"]] == []


def wait_until_idle(client: Client) -> None:
    """Until the scheduler holds no task and no worker runs one: the dead flow's futures are released,
    and a shard that was running when they were (cancelled, but a thread cannot be stopped) has ended."""
    client.wait_for_workers(2, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        or any(client.run(lambda dask_worker: len(dask_worker.state.executing), on_error="ignore").values())
    ):
        time.sleep(0.1)
