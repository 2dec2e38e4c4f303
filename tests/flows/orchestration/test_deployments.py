"""Deployments against a real Prefect server on a free loopback port, served by `winnow serve`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flows.config import load_config
from flows.orchestration.deployments import deployments
from flows.stages import STAGES


def test_nightly_deployment_has_the_schedule_and_a_persistent_index():
    adhoc, nightly = deployments(load_config(overrides=["input.paths=[crawl/*.jsonl]"]), cron="15 2 * * *")

    assert adhoc.name == "adhoc" and not adhoc.schedules
    assert nightly.schedules[0].schedule.cron == "15 2 * * *"
    indexed = [stage for stage in STAGES if stage.corpus is not None and stage.corpus.index_param]
    assert indexed and all(nightly.parameters["cfg"][s.section][s.corpus.index_param] == "recurate" for s in indexed)
    assert adhoc.parameters["cfg"]["input"]["paths"] == ["crawl/*.jsonl"]


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

    spec = yaml.safe_load((Path(__file__).resolve().parents[3] / "infra" / "prefect.yaml").read_text())

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
