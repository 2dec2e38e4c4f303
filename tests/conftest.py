"""Session-wide real components: one Prefect test harness and one 2-process Dask cluster."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

RUDE = ["idiot", "stupid", "moron", "trash", "pathetic", "loser", "disgusting", "worthless"]
CALM = ["garden", "weather", "recipe", "library", "river", "concert", "museum", "breakfast"]


def make_separable(n: int, seed: int = 0) -> tuple[list[str], list[bool]]:
    """Half insults, half calm remarks: a set any working classifier separates."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        toxic = i % 2 == 0
        words = rng.choice(RUDE if toxic else CALM, size=3)
        texts.append(f"you are such a {words[0]} and a {words[1]}" if toxic else f"we visited the {words[0]} near the {words[1]} today")
        labels.append(toxic)
    return texts, labels


# Fixtures that start a Dask cluster or a Prefect server, or run a whole flow: a test using one, directly
# or through another fixture (`item.fixturenames` is the closure, so test_distributed.py's `reference`
# counts through `dask_cluster`), is `integration` and left out of `make test-fast`.
INTEGRATION_FIXTURES = frozenset({
    "dask_cluster", "dask_client", "prefect_harness",
    "threaded_client",  # tests/flows/test_store_faults.py: an in-process 2-worker LocalCluster
    "cli_cluster",  # tests/flows/test_distributed.py: `dask scheduler` + `dask worker` processes
})


def pytest_collection_modifyitems(config, items):
    """Mark `integration` every test on a real cluster, server or flow; `slow` ones (multi-process or
    full-flow, by that marker's definition) too. Tests starting their own are marked in their module."""
    for item in items:
        if INTEGRATION_FIXTURES.intersection(item.fixturenames) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: CI runs with ../shared beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dask_cluster():
    """Two worker processes over TCP: pickling of shard jobs is under test."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.WARNING
    ) as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster):
    from distributed import Client

    with Client(dask_cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def separable():
    """A labeled set any working classifier separates: `separable(n)` -> (texts, labels)."""
    return make_separable
