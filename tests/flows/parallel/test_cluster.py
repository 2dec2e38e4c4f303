"""Cluster choices: a cluster class created from its import path (adaptive), and clear config errors."""

from __future__ import annotations

import os
import urllib.request

import pytest
from distributed import Client

from flows.config import load_config
from flows.options import ClusterOptions
from flows.parallel.cluster import WORKER_MALLOC, cluster_type, dashboard_link, dask_client
from tasks.errors import ConfigError


@pytest.mark.integration  # starts its own (in-process, adaptive) LocalCluster
def test_cluster_class_is_created_from_its_import_path_and_scales_within_its_adaptive_bounds():
    options = ClusterOptions(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 0, "processes": False, "dashboard_address": None},
        adapt_minimum=1,
        adapt_maximum=2,
    )

    with dask_client(options) as client:
        client.wait_for_workers(1, timeout=30)
        result = client.submit(sum, [1, 2, 3]).result()
        n_workers = len(client.scheduler_info()["workers"])

    assert result == 6
    assert 1 <= n_workers <= 2


def test_local_workers_start_with_allocator_settings_that_keep_freed_pages(dask_cluster):
    """Regression: Dask's MALLOC_TRIM_THRESHOLD_=65536 sent the packaged USE's workers into page faults."""
    with Client(dask_cluster, set_as_default=False) as client:
        found = client.run(lambda: {name: os.environ.get(name) for name in WORKER_MALLOC})

    assert found and all(env == {name: str(value) for name, value in WORKER_MALLOC.items()} for env in found.values())


def test_missing_cluster_package_names_what_to_pip_install():
    with pytest.raises(ConfigError, match="pip install dask-jobqueue"):
        cluster_type("dask_jobqueue.SLURMCluster")


def test_cluster_class_that_is_not_a_class_is_a_config_error():
    with pytest.raises(ConfigError, match="has no class 'NoSuchCluster'"):
        cluster_type("distributed.NoSuchCluster")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["run.cluster.address=tcp://127.0.0.1:8786", "run.cluster.cluster_class=distributed.LocalCluster"],
            "not both",
        ),
        (
            ["run.cluster.address=tcp://127.0.0.1:8786", "run.cluster.adapt_minimum=1", "run.cluster.adapt_maximum=2"],
            "scales itself",
        ),
        (["run.cluster.adapt_maximum=2"], "together"),
        (["run.cluster.adapt_minimum=3", "run.cluster.adapt_maximum=2"], "exceeds"),
        (["run.cluster.cluster_kwargs={n_workers: 1}"], "needs cluster_class"),
    ],
)
def test_contradictory_cluster_choices_fail_at_load(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=["input.paths=[x.jsonl]", *overrides])


def test_cluster_options_from_yaml_keep_the_class_kwargs():
    cfg = load_config(
        overrides=[
            "input.paths=[x.jsonl]",
            "run.cluster.cluster_class=dask_jobqueue.SLURMCluster",
            "run.cluster.cluster_kwargs={queue: cpu, cores: 8, memory: 32GiB}",
            "run.cluster.adapt_minimum=0",
            "run.cluster.adapt_maximum=50",
        ]
    )

    assert cfg.run.cluster.cluster_kwargs == {"queue": "cpu", "cores": 8, "memory": "32GiB"}
    assert (cfg.run.cluster.adapt_minimum, cfg.run.cluster.adapt_maximum) == (0, 50)


def test_cluster_options_with_kwargs_stay_hashable():
    cfg = load_config(
        overrides=[
            "input.paths=[x.jsonl]",
            "run.cluster.cluster_class=distributed.LocalCluster",
            "run.cluster.cluster_kwargs={n_workers: 1, resources: {gpu: [1]}}",
        ]
    )

    assert hash(cfg.run.cluster) == hash(cfg.run.cluster.model_copy())


@pytest.mark.integration  # starts two LocalClusters of one worker
def test_a_local_cluster_serves_the_dask_dashboard_at_the_link_a_run_reports():
    with dask_client(options := ClusterOptions(n_workers=1, dashboard="127.0.0.1:0")) as client:
        link = dashboard_link(client, options)
        with urllib.request.urlopen(link, timeout=60) as page:
            served = page.status, page.read(2000).decode()
    with dask_client(options := ClusterOptions(n_workers=1, dashboard=None)) as client:
        unserved = dashboard_link(client, options)

    assert link.startswith("http://127.0.0.1:") and link.endswith("/status")
    assert served[0] == 200 and "Dask" in served[1]
    assert unserved is None  # Client.dashboard_link would name a page nobody serves
