"""Deployments against a real Prefect server on a free loopback port, served by `winnow serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.config import load_config
from flows.deployments import deployments, free_port, prefect_server


def test_nightly_deployment_has_the_schedule_and_a_persistent_index():
    adhoc, nightly = deployments(load_config(overrides=["input.paths=[crawl/*.jsonl]"]), cron="15 2 * * *")

    assert adhoc.name == "adhoc" and not adhoc.schedules
    assert nightly.schedules[0].schedule.cron == "15 2 * * *"
    assert nightly.parameters["cfg"]["dedup_fuzzy"]["index"] == "recurate"
    assert adhoc.parameters["cfg"]["input"]["paths"] == ["crawl/*.jsonl"]


@pytest.mark.slow
@pytest.mark.integration  # its own Prefect server, `winnow serve` and a whole flow run
def test_served_adhoc_deployment_runs_through_the_api(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.demo import write_demo_corpus

    write_demo_corpus(tmp_path / "input", n_docs=120)
    with prefect_server(free_port(), home=str(tmp_path / "prefect-home")) as api:
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        serving = subprocess.Popen(
            [str(Path(sys.executable).with_name("winnow")), "serve", "--input", str(tmp_path / "input"),
             "--output", str(tmp_path / "out"), "--set", "run.cluster.n_workers=1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            with temporary_settings({PREFECT_API_URL: api}):
                flow_run = wait_for_deployment_run(run_deployment, "curate/adhoc")
                with get_client(sync_client=True) as client:
                    task_runs = client.request("POST", "/task_runs/filter", json={
                        "flow_runs": {"id": {"any_": [str(flow_run.id)]}}, "limit": 50}).json()
                    artifacts = client.request("POST", "/artifacts/filter", json={
                        "artifacts": {"key": {"any_": ["curation-funnel"]}}, "limit": 5}).json()
        finally:
            serving.terminate()
            serving.wait(timeout=30)

    assert flow_run.state.is_completed()
    assert {"read", "clean", "dedup_fuzzy", "select", "write"} <= {t["name"].rsplit("-", 1)[0] for t in task_runs}
    assert any(a["flow_run_id"] == str(flow_run.id) for a in artifacts)
    assert (tmp_path / "out" / "run_summary.json").is_file()


def wait_for_deployment_run(run_deployment, name: str, timeout_s: float = 180.0):
    """`run_deployment` as soon as the serving process has registered the deployment, then wait."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return run_deployment(name, timeout=timeout_s)
        except ObjectNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_work_pool_deployments_validate_against_the_flow_parameters():
    import yaml

    from flows.config import CurationConfig

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "prefect.yaml").read_text())

    for deployment in spec["deployments"]:
        CurationConfig.model_validate(deployment["parameters"]["cfg"])
        assert deployment["entrypoint"] == "flows/curate.py:curate"
    assert [d["name"] for d in spec["deployments"]] == ["adhoc", "recurate-nightly"]


def test_deployments_load_the_flow_by_its_module_name():
    from prefect.flows import load_flow_from_entrypoint

    from flows.curate import curate

    entrypoint = curate.to_deployment(name="adhoc").entrypoint

    assert entrypoint == "flows/curate.py:curate"
    assert load_flow_from_entrypoint(entrypoint).name == "curate"
