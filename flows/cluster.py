"""The Dask cluster a run uses: a LocalCluster by default, or the address of a running scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from flows.config import ClusterOptions


class WarmModels(WorkerPlugin):
    """Per worker, before the first shard: torch's thread count (one worker per core must not
    oversubscribe them, STACK.md) and the language-ID model every run needs. Scorer models load on
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


@contextlib.contextmanager
def dask_client(options: ClusterOptions, warm: WorkerPlugin | None = None) -> Iterator[Client]:
    logging.getLogger("distributed").setLevel(logging.WARNING)  # in-process scheduler chatter
    # Arrow joins on buffers that came from pandas warn once per call that they are unaligned; the
    # warning is about speed only. LocalCluster workers inherit this; set it on remote workers too.
    os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "ignore")
    if options.address:
        cluster_cm = contextlib.nullcontext(options.address)
    else:
        cluster_cm = LocalCluster(
            n_workers=options.n_workers,
            threads_per_worker=options.threads_per_worker,
            memory_limit=options.memory_limit,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        )
    with cluster_cm as cluster, Client(cluster, set_as_default=False) as client:
        if warm is not None:
            client.register_plugin(warm)
        yield client
