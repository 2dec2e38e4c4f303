"""Session-wide real components: one Prefect test harness and one 2-process Dask cluster."""

from __future__ import annotations

import collections
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# No test reads run logs back from the API; shipping them costs ~12% of a demo run's CPU (server + client).
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

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
        texts.append(
            f"you are such a {words[0]} and a {words[1]}"
            if toxic
            else f"we visited the {words[0]} near the {words[1]} today"
        )
        labels.append(toxic)
    return texts, labels


# Fixtures that start a Dask cluster or a Prefect server, or run a whole flow: a test using one, directly
# or through another fixture (`item.fixturenames` is the closure, so test_distributed.py's `reference`
# counts through `dask_cluster`), is `integration` and left out of `make test-fast`.
INTEGRATION_FIXTURES = frozenset(
    {
        "dask_cluster",
        "dask_client",
        "prefect_harness",
        "prefect_api",
        "threaded_client",  # tests/flows/engine/test_store_faults.py: an in-process 2-worker LocalCluster
        "cli_cluster",  # tests/flows/engine/test_distributed.py: `dask scheduler` + `dask worker` processes
        "s3_server",  # a local S3 HTTP API (moto server mode)
    }
)


# The toxicity scorer of flow tests about orchestration (faults, S3, progress): alt-profanity-check.
# The packaged USE model, the default, costs ~37x as much per document (docs/benchmarks.md, "Toxicity
# heads") and loads in every worker a test's cluster starts; its path through the flow is tested where
# toxicity is the subject (tests/flows/stages/test_toxicity_stage.py, test_curate.py, the demo).
CHEAP_TOXICITY = "toxicity.scorers=[{backend: profanity, name: toxicity}]"


# Seconds per module, summed per test (setup, call and teardown) over a `make test` run on 2 cores
# (2026-12-07, 53af439: workers import no Prefect), for ordering alone:
# a module missing here (new or renamed) is estimated per test below. Refresh after a large change to
# the suite; a stale figure costs balance, never correctness.
MODULE_SECONDS = {
    "tests/flows/orchestration/test_curate.py": 165,
    "tests/flows/cli/test_demo_run.py": 161,
    "tests/flows/engine/test_distributed.py": 149,
    "tests/flows/engine/test_s3.py": 83,
    "tests/flows/stages/test_registry.py": 40,
    "tests/flows/stages/test_decontam_stage.py": 35,
    "tests/flows/orchestration/test_train_flow.py": 31,
    "tests/flows/parallel/test_components.py": 21,
    "tests/tasks/test_normalize.py": 14,
    "tests/tasks/test_scoring.py": 11,
    "tests/flows/cli/test_supervise.py": 10,
    "tests/tasks/test_toxicity_heads.py": 10,
    "tests/tasks/test_extract.py": 9,
}


def estimated_seconds(item) -> float:
    """A test's cost when its module is not measured: a slow test ~60 s, a Prefect flow ~10 s, another
    integration test ~2 s, a unit test ~0.05 s."""
    if item.get_closest_marker("slow"):
        return 60.0
    if "prefect_harness" in item.fixturenames:
        return 10.0
    return 2.0 if item.get_closest_marker("integration") else 0.05


def pytest_collection_modifyitems(config, items):
    """Mark `integration` every test on a real cluster, server or flow; `slow` ones (multi-process or
    full-flow, by that marker's definition) too. Tests starting their own are marked in their module.

    Then order modules longest first (`MODULE_SECONDS`, else the estimate). `make test` hands whole
    modules to three pytest-xdist processes in this order (`--dist loadfile --no-loadscope-reorder`),
    each next module to whichever process runs dry, so the long ones start first and the short ones
    fill in: all end at about the same time.
    """
    for item in items:
        if INTEGRATION_FIXTURES.intersection(item.fixturenames) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.integration)
    root = Path(str(config.rootpath))
    estimate = collections.Counter()
    for item in items:
        estimate[item.path] += estimated_seconds(item)
    weight = {
        path: MODULE_SECONDS.get(path.relative_to(root).as_posix(), seconds) for path, seconds in estimate.items()
    }
    first_seen = {path: i for i, path in reversed(list(enumerate(item.path for item in items)))}
    items.sort(key=lambda item: (-weight[item.path], first_seen[item.path]))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: CI runs with ../shared beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dask_cluster(s3_server):
    """Two worker processes over TCP: pickling of shard jobs is under test. Started after the local
    S3 API (`s3_server`), so the workers inherit its endpoint and credentials."""
    from flows.parallel.cluster import local_cluster

    with local_cluster(2) as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster):
    from distributed import Client

    with Client(dask_cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 HTTP API on a free loopback port: moto's server mode, reached through s3fs over HTTP.

    The endpoint and dummy credentials go into os.environ, restored afterwards: botocore reads
    AWS_ENDPOINT_URL (verified with s3fs 2026.9.0, aiobotocore 3.10.0, botocore 1.43.117), so every
    `s3://` URL of this process resolves to it, and so do Dask worker processes started later
    (`dask_cluster`), which inherit the environment. Yields the endpoint URL.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,  # no profile of this machine
    }
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
                patch.delenv(name, raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the local S3 API, as `s3://<name>`; deleted afterwards."""
    import fsspec

    fs = fsspec.filesystem("s3", use_listings_cache=False)  # others write to it: no stale listings
    name = f"winnow-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    yield f"s3://{name}"
    fs.rm(name, recursive=True)


SHARED_PREFECT_API = "prefect_api_url"  # xdist workerinput key: the controller's Prefect test server


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: `-p no:xdist` runs without it
def pytest_configure_node(node):
    """pytest-xdist controller, per worker it starts: one Prefect test server for all of them (a server
    start costs ~18 s of CPU; one per worker was three). Stopped in `pytest_unconfigure`."""
    config = node.config
    if not hasattr(config, "_winnow_prefect"):
        import contextlib

        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        config._winnow_prefect = contextlib.ExitStack()
        config._winnow_prefect.enter_context(prefect_test_harness(server_startup_timeout=120))
        config._winnow_prefect_url = PREFECT_API_URL.value()
    node.workerinput[SHARED_PREFECT_API] = config._winnow_prefect_url


def pytest_unconfigure(config):
    if stack := getattr(config, "_winnow_prefect", None):
        stack.close()


@pytest.fixture(scope="session")
def prefect_harness(request):
    """A Prefect API for flows: under pytest-xdist the controller's shared test server, else a test
    harness of this process's own. Tests that read artifacts or task runs back pick their own run's."""
    from prefect.testing.utilities import prefect_test_harness

    url = getattr(request.config, "workerinput", {}).get(SHARED_PREFECT_API)
    if url is None:
        with prefect_test_harness(server_startup_timeout=120):
            yield
        return
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    with temporary_settings({PREFECT_API_URL: url}), _temporary_global_settings_context(get_settings_context()):
        yield
        run_coro_as_sync(_drain_prefect_workers())


async def _drain_prefect_workers() -> None:
    """Send what this process still holds (logs, events) before the session ends, as the harness does."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        if inspect.isawaitable(result := APILogWorker.instance().drain()):
            await result
    except RuntimeError:  # the log worker never started
        pass
    if inspect.isawaitable(result := EventsWorker.drain_all()):
        await result


@pytest.fixture(scope="session")
def prefect_api(prefect_harness) -> str:
    """The test harness's Prefect API URL, for `winnow` commands run as child processes."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def separable():
    """A labeled set any working classifier separates: `separable(n)` -> (texts, labels)."""
    return make_separable
