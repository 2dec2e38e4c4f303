"""The demo end to end, as `make demo-ui` runs it: its own Prefect server, `winnow serve`, the run
triggered through curate/adhoc. The trained quality scorer, the planted benchmark items, the guide, a
second trigger fully cached, and nothing left running after Ctrl-C. (`make demo` runs the same
`prepare`, `curate` and `guide` in one process.)"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tasks.read
from flows.cli.demo import BENCHMARK_PLANTS, DEMO_BENCHMARK
from flows.cli.demo_run import guide
from flows.config import load_config
from flows.orchestration.deployments import free_port
from tasks.read import ReadParams


def planted_ids(directory: Path) -> dict[str, str]:
    """defect -> document id of the planted problems, read by the read stage (`defect` rides in meta)."""
    planted = {}
    for path in sorted((directory / "input").iterdir()):
        docs, _ = tasks.read.run(str(path), path.name, ReadParams())
        for doc_id, meta in zip(docs.column("id").to_pylist(), docs.column("meta").to_pylist()):
            if (defect := json.loads(meta).get("defect")) in BENCHMARK_PLANTS:
                planted[defect] = doc_id
    return planted


def assert_demo_output(directory: Path, summary: dict) -> None:
    """The trained quality scorer scored every document; both planted problems, and nothing else, are
    flagged (the verbatim one by n-grams and cut, the retold one by embeddings and kept whole); the
    guide names them, and a pair semantic dedup removed."""
    output = pq.read_table(directory / "out" / "data")
    assert output.schema.field("quality_score").type == pa.float32()
    assert output.column("quality_score").null_count == 0
    card = json.loads((directory / "quality-model" / "model_card.json").read_text())
    assert card["metrics"]["roc_auc"] > 0.6  # reference pages vs raw pages with defects: learnable
    rows = {
        r["id"]: r for r in output.select(["id", "contam_items", "contam_spans", "n_contam_chars_cut"]).to_pylist()
    }
    planted = planted_ids(directory)
    verbatim, paraphrase = rows[planted["benchmark_verbatim"]], rows[planted["benchmark_paraphrase"]]
    assert verbatim["contam_items"] == [BENCHMARK_PLANTS["benchmark_verbatim"]["item"]]
    assert "ngram" in {s["method"] for s in verbatim["contam_spans"]} and verbatim["n_contam_chars_cut"] > 0
    assert paraphrase["contam_items"] == [BENCHMARK_PLANTS["benchmark_paraphrase"]["item"]]
    assert {s["method"] for s in paraphrase["contam_spans"]} == {"semantic"} and paraphrase["n_contam_chars_cut"] == 0
    assert [doc for doc, row in rows.items() if row["contam_items"]] == sorted(planted.values(), key=list(rows).index)
    config = directory / "demo.yaml"
    text = guide(directory, config, load_config(config), summary, card)
    assert all(doc in text for doc in planted.values()) and str(DEMO_BENCHMARK.name) in text
    pair = summary["dedup_semantic"]["pairs"][0]  # the guide names a pair semantic dedup removed
    assert f"{pair['removed_id']} removed, {pair['kept_id']} kept" in text
    assert pair["kept_id"] in rows and pair["removed_id"] not in rows
    assert f"winnow run --config {config}" in text


def read_until(stream, marker: str, timeout_s: float) -> list[str]:
    """Lines of `stream` up to the first that starts with `marker` (a thread reads, so a hang times out)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen, deadline = [], time.monotonic() + timeout_s
    while not (seen and seen[-1].startswith(marker)):
        seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
    return seen


@pytest.mark.slow
@pytest.mark.integration  # `winnow demo --ui`: its own Prefect server, `winnow serve`, two whole flow runs
def test_demo_ui_finds_both_plants_caches_a_second_trigger_and_leaves_nothing_behind(
    tmp_path,
):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    demo = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("winnow")),
            "demo",
            "--ui",
            "--port",
            str(port),
            "--directory",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        printed = read_until(demo.stdout, "Ctrl-C stops", timeout_s=600)
        flow_run_id = next(line for line in printed if line.startswith("triggered")).rsplit("/", 1)[1].strip()
        with (
            temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}),
            get_client(sync_client=True) as client,
        ):
            first = client.read_flow_run(flow_run_id)
            deployments = {
                d["name"]: d for d in client.request("POST", "/deployments/filter", json={"limit": 10}).json()
            }
            artifacts = client.request("POST", "/artifacts/filter", json={"limit": 50}).json()
            second = run_deployment("curate/adhoc", timeout=300)
            task_runs = client.request(
                "POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": [str(second.id)]}}, "limit": 50}
            ).json()
        tree = psutil.Process(demo.pid).children(recursive=True)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=120)

    assert first.state.is_completed() and second.state.is_completed()
    assert set(deployments) == {"adhoc", "recurate-nightly"} and deployments["recurate-nightly"]["schedules"]
    keys = {(a["key"], a["flow_run_id"]) for a in artifacts}
    assert ("curation-funnel", flow_run_id) in keys and any(key == "classifier-metrics" for key, _ in keys)
    states = {t["name"].rsplit("-", 1)[0]: t["state"]["name"] for t in task_runs}
    assert {"read", "clean", "dedup_fuzzy", "quality", "decontam"} <= set(states)
    assert all(state == "Cached" for stage, state in states.items() if stage != "write"), states
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert_demo_output(tmp_path, summary)
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
