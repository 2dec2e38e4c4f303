"""The specs in infra/ are valid YAML of the expected kinds, and its run configs load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.config import load_config

INFRA = Path(__file__).resolve().parents[1] / "infra"


def documents(relpath: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((INFRA / relpath).read_text()) if doc is not None]


def test_kubernetes_specs_hold_a_dask_cluster_autoscaler_and_prefect_worker():
    kinds = {
        (doc["apiVersion"], doc["kind"])
        for path in ("dask-cluster.yaml", "prefect-worker.yaml")
        for doc in documents(f"kubernetes/{path}")
    }

    assert {
        ("kubernetes.dask.org/v1", "DaskCluster"),
        ("kubernetes.dask.org/v1", "DaskAutoscaler"),
        ("apps/v1", "Deployment"),
        ("v1", "ConfigMap"),
    } <= kinds


def test_dask_cluster_workers_are_single_threaded_and_reach_the_scheduler_service():
    cluster = next(d for d in documents("kubernetes/dask-cluster.yaml") if d["kind"] == "DaskCluster")
    worker_args = cluster["spec"]["worker"]["spec"]["containers"][0]["args"]
    service_ports = {p["name"]: p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}

    assert worker_args[worker_args.index("--nthreads") + 1] == "1"
    assert service_ports["tcp-comm"] == 8786
    assert load_config(INFRA / "kubernetes/curate.yaml").run.cluster.address == (
        f"tcp://{cluster['metadata']['name']}-scheduler:8786"
    )


@pytest.mark.parametrize("relpath", ["kubernetes/curate.yaml", "kubernetes/kube-cluster.yaml", "slurm/curate.yaml"])
def test_run_configs_validate_and_keep_credentials_out(relpath):
    cfg = load_config(INFRA / relpath)
    text = (INFRA / relpath).read_text().lower()

    assert cfg.run.cluster.address or cfg.run.cluster.cluster_class
    assert not any(secret in text for secret in ("secret_access_key:", "password:", "token:"))


def test_mounted_config_map_is_a_valid_run_config():
    config_map = next(d for d in documents("kubernetes/prefect-worker.yaml") if d["kind"] == "ConfigMap")

    tree = yaml.safe_load(config_map["data"]["curate.yaml"])

    assert load_config(base=tree).store.startswith("s3://")


def test_slurm_jobqueue_config_and_sbatch_script():
    slurm = documents("slurm/jobqueue.yaml")[0]["jobqueue"]["slurm"]
    script = (INFRA / "slurm/curate.sbatch").read_text()

    assert slurm["cores"] == slurm["processes"]  # single-threaded workers
    assert script.startswith("#!/bin/bash") and "winnow run --config infra/slurm/curate.yaml" in script
