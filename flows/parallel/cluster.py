"""The Dask cluster a run uses: a LocalCluster by default, the address of a running scheduler, or a
cluster class (Kubernetes, Slurm: `infra/`) the run creates, optionally adaptive, and closes."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator

import dask
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from flows.options import ClusterOptions
from tasks.errors import ConfigError

# glibc allocator settings for LocalCluster workers, replacing Dask's MALLOC_TRIM_THRESHOLD_=65536.
# Dask's setting hands freed memory back to the kernel at once, and with it glibc stops adapting its
# mmap threshold, so every numpy temporary over 128 KiB is mapped, faulted in and unmapped again: a
# model forward pass on a 2 MB micro-batch spends its time in page faults (docs/operations/stack.md).
# 32 MiB lets a worker reuse freed pages for temporaries below that size and still return larger
# runs of free memory.
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": 32 << 20, "MALLOC_MMAP_THRESHOLD_": 32 << 20}
WORKER_ENVIRON = {f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in WORKER_MALLOC.items()}

# distribution to install for a cluster class's top-level module, where the names differ
CLUSTER_PACKAGES = {"dask_kubernetes": "dask-kubernetes", "dask_jobqueue": "dask-jobqueue"}


class WarmModels(WorkerPlugin):
    """Per worker, before the first shard: torch's thread count (one worker per core must not
    oversubscribe them, docs/operations/stack.md) and the language-ID model every run needs. Scorer models load on
    first use (once per worker, `tasks.models.load_scorer`), so a rerun whose scoring stages are
    cached loads none."""

    name = "winnow-warm-models"
    idempotent = True

    def __init__(self, fasttext_paths: tuple[str, ...], torch_threads: int | None):
        self.fasttext_paths = fasttext_paths
        self.torch_threads = torch_threads

    def setup(self, worker) -> None:
        from tasks import models

        if self.torch_threads is not None:  # only runs with torch scorers pay for importing torch
            models.set_torch_threads(self.torch_threads)
        for path in self.fasttext_paths:
            models.load_fasttext(path)


def local_cluster(
    n_workers: int, threads_per_worker: int = 1, memory_limit: str | float = "auto", dashboard: str | None = None
) -> LocalCluster:
    """A LocalCluster of worker processes as a run starts them (benches and tests too): quiet logs,
    `WORKER_MALLOC` in each worker's environment (each nanny reads it when created), and the Dask
    dashboard at `dashboard` (host:port; None: none). A busy port is replaced by a free one, with a
    warning from Dask."""
    with dask.config.set(WORKER_ENVIRON):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            processes=True,
            dashboard_address=dashboard,
            silence_logs=logging.WARNING,
        )


def dashboard_link(client: Client, options: ClusterOptions) -> str | None:
    """The dashboard URL of the run's cluster: a scheduler at an address or a created cluster class
    serves its own; a LocalCluster only when `options.dashboard` asks for one (without it, Dask still
    binds an HTTP port for metrics, and `Client.dashboard_link` names a page nobody serves)."""
    if options.address or options.cluster_class or options.dashboard:
        return client.dashboard_link
    return None


@contextlib.contextmanager
def dask_client(options: ClusterOptions, warm: WorkerPlugin | None = None) -> Iterator[Client]:
    logging.getLogger("distributed").setLevel(logging.WARNING)  # in-process scheduler chatter
    # Arrow joins on buffers that came from pandas warn once per call that they are unaligned; the
    # warning is about speed only. LocalCluster workers inherit this; set it on remote workers too.
    os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "ignore")
    with contextlib.ExitStack() as stack:
        if options.address:
            cluster = options.address
        elif options.cluster_class:
            cluster = stack.enter_context(cluster_type(options.cluster_class)(**options.cluster_kwargs))
        else:
            # for the run's lifetime: adaptive scaling creates nannies after the first ones
            stack.enter_context(dask.config.set(WORKER_ENVIRON))
            cluster = stack.enter_context(
                local_cluster(options.n_workers, options.threads_per_worker, options.memory_limit, options.dashboard)
            )
        client = stack.enter_context(Client(cluster, set_as_default=False))
        if options.adapt_maximum is not None:
            cluster.adapt(minimum=options.adapt_minimum, maximum=options.adapt_maximum)
        if warm is not None:
            client.register_plugin(warm)
        yield client


def cluster_type(import_path: str) -> type:
    """The class at `module.Class`; a missing optional package is a ConfigError naming what to install."""
    module_name, _, class_name = import_path.rpartition(".")
    if not module_name:
        raise ConfigError(f"run.cluster.cluster_class {import_path!r}: expected module.Class")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        package = CLUSTER_PACKAGES.get(top, top.replace("_", "-"))
        raise ConfigError(
            f"run.cluster.cluster_class {import_path!r}: module {exc.name!r} is not installed; pip install {package}"
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"run.cluster.cluster_class {import_path!r}: {module_name} has no class {class_name!r}")
    return cls
