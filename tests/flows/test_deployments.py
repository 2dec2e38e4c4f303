"""Deployments against a real Prefect server on a free loopback port, served by `winnow serve`."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from flows.config import load_config
from flows.orchestration.deployments import deployments, free_port


def test_nightly_deployment_has_the_schedule_and_a_persistent_index():
    adhoc, nightly = deployments(load_config(overrides=["input.paths=[crawl/*.jsonl]"]), cron="15 2 * * *")

    assert adhoc.name == "adhoc" and not adhoc.schedules
    assert nightly.schedules[0].schedule.cron == "15 2 * * *"
    assert nightly.parameters["cfg"]["dedup_fuzzy"]["index"] == "recurate"
    assert adhoc.parameters["cfg"]["input"]["paths"] == ["crawl/*.jsonl"]


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
def test_demo_ui_runs_through_the_adhoc_deployment_caches_a_second_trigger_and_leaves_nothing_behind(tmp_path):
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
    assert (tmp_path / "out" / "run_summary.json").is_file()
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_a_port_in_use_is_a_clear_error_not_someone_elses_server(tmp_path):
    from flows.orchestration.deployments import prefect_server
    from tasks.errors import ServerError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=f"127.0.0.1:{port} is in use"), prefect_server(port, home=str(tmp_path)):
            pass

    assert not (tmp_path / "server.log").exists()  # nothing was started


def test_work_pool_deployments_validate_against_the_flow_parameters():
    import yaml

    from flows.config import CurationConfig

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "prefect.yaml").read_text())

    for deployment in spec["deployments"]:
        CurationConfig.model_validate(deployment["parameters"]["cfg"])
        assert deployment["entrypoint"] == "flows/orchestration/curate.py:curate"
    assert [d["name"] for d in spec["deployments"]] == ["adhoc", "recurate-nightly"]


def test_deployments_load_the_flow_by_its_module_name():
    from prefect.flows import load_flow_from_entrypoint

    from flows.orchestration.curate import curate

    entrypoint = curate.to_deployment(name="adhoc").entrypoint

    assert entrypoint == "flows/orchestration/curate.py:curate"
    assert load_flow_from_entrypoint(entrypoint).name == "curate"
