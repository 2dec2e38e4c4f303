"""What the stages of one run share: its config, the artifact store, the input files, a Dask client and
where progress goes.

No Prefect here: the flow (flows/orchestration/curate.py) passes in the run's `RunProgress` and its sinks,
and a bench or a test drives stages with a context of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack

from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin
from pydantic import BaseModel

from flows.engine.executor import map_shards
from flows.engine.progress import RunProgress
from flows.engine.store import ArtifactStore, InputFile, ShardRef, StageRef
from flows.parallel.cluster import dashboard_link, dask_client
from tasks.io import expand_inputs, file_fingerprint


class RunContext:
    """A run's config (`flows.config.CurationConfig`), store and inputs, its progress, and a Dask client
    started on first use, so a rerun whose stages are all cached starts no cluster. The cluster's
    dashboard, when it has one, goes to `progress` as the cluster starts."""

    def __init__(
        self,
        cfg: BaseModel,
        store: ArtifactStore,
        inputs: tuple[InputFile, ...],
        stack: ExitStack,
        warm: WorkerPlugin | None = None,
        progress: RunProgress | None = None,
    ):
        self.cfg = cfg
        self.store = store
        self.inputs = inputs
        self._input_paths = {source.name: source.path for source in inputs}  # looked up per shard per plan
        self._stack = stack
        self._warm = warm
        self.progress = progress or RunProgress()
        self._client: Client | None = None
        self.indexes: dict[tuple[str, str], object] = {}  # dedup indexes opened by this run, read once each

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._stack.enter_context(dask_client(self.cfg.run.cluster, self._warm))
            self.progress.cluster_started(dashboard_link(self._client, self.cfg.run.cluster))
        return self._client

    def sources(self, upstream: StageRef | None) -> tuple[InputFile, ...] | tuple[ShardRef, ...]:
        """What a map reads: the input files for the first stage, else the upstream's shards."""
        return self.inputs if upstream is None else upstream.shards

    def input_path(self, shard: ShardRef) -> str:
        """The input file a shard (of any stage) came from: a file's part `k` > 0 is named `<file>@k`."""
        return self._input_paths.get(shard.name) or self._input_paths[shard.name.rsplit("@", 1)[0]]

    def paths(self, ref: StageRef) -> list[str]:
        return [self.store.kept_path(ref.stage, shard) for shard in ref.shards]

    def map(
        self,
        stage: str,
        version: int,
        fn,
        params: BaseModel,
        upstream: StageRef | None,
        *,
        salt: str = "",
        shard_salts=None,
        shard_args: Callable[[int], tuple] = lambda i: (),
        reads: tuple[str, ...] | None = None,
        key_params: BaseModel | None = None,
        split: bool = False,
        numbered: bool = False,
        manifest_extra: dict | None = None,
    ) -> StageRef:
        """Run a shard function over `upstream`'s shards (or the inputs) on Dask (`executor.map_shards`)."""
        return map_shards(
            self.store,
            stage,
            version,
            fn,
            params,
            self.sources(upstream),
            upstream.stage if upstream else None,
            lambda: self.client,
            salt=salt,
            shard_salts=shard_salts,
            shard_args=shard_args,
            reads=reads,
            key_params=key_params,
            split=split,
            numbered=numbered,
            manifest_extra=manifest_extra,
            retries=self.cfg.run.shard_retries,
            progress=self.progress,
        )

    def plan(
        self,
        stage: str,
        version: int,
        params: BaseModel,
        upstream: StageRef | None,
        *,
        salt: str = "",
        shard_salts=None,
    ) -> StageRef:
        """The ref `map` with the same arguments returns, computed without running anything."""
        return self.store.plan(stage, version, params, self.sources(upstream), salt, shard_salts)


def discover_inputs(patterns: tuple[str, ...]) -> tuple[InputFile, ...]:
    return tuple(InputFile(path, relpath, file_fingerprint(path)) for path, relpath in expand_inputs(list(patterns)))


@contextlib.contextmanager
def open_context(
    cfg: BaseModel,
    warm: WorkerPlugin | None = None,
    progress: RunProgress | None = None,
) -> Iterator[RunContext]:
    """Inputs resolved before any cluster starts, so bad paths fail fast; the cluster closes on exit."""
    inputs = discover_inputs(cfg.input.paths)
    with ExitStack() as stack:
        yield RunContext(cfg, ArtifactStore(cfg.store_url), inputs, stack, warm, progress)
