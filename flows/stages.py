"""Prefect tasks, one per stage: thin wiring of a `tasks/` function, the artifact store and Dask.

Each task's Prefect cache key derives from the stage key the store computes (stage, code VERSION,
canonical params, input keys), so the UI shows hits as Cached; when the store no longer holds a
stage complete (a deleted shard file), the flow refreshes the cache and the stage recomputes just
the missing shards. Shard work on Dask is plain functions; no Prefect API is needed on a worker.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from types import ModuleType

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext
from pydantic import BaseModel

import tasks.clean
import tasks.dedup_exact
import tasks.dedup_fuzzy
import tasks.extract
import tasks.langid
import tasks.normalize
import tasks.quality
import tasks.read
import tasks.select
import tasks.toxicity
import tasks.url_filter
from flows import dedup
from flows.cluster import WarmModels, dask_client
from flows.config import CurationConfig
from flows.store import ArtifactStore, InputFile, StageRef, digest
from tasks import models
from tasks.io import expand_inputs, file_fingerprint

MODULES: dict[str, ModuleType] = {
    "read": tasks.read,
    "url_filter": tasks.url_filter,
    "extract": tasks.extract,
    "normalize": tasks.normalize,
    "langid": tasks.langid,
    "clean": tasks.clean,
    "dedup_exact": tasks.dedup_exact,
    "dedup_fuzzy": tasks.dedup_fuzzy,
    "quality": tasks.quality,
    "toxicity": tasks.toxicity,
    "select": tasks.select,
}
GLOBAL_STAGES = ("dedup_exact", "dedup_fuzzy")  # their marks depend on every upstream shard
EXACT_SIGNATURES = "dedup_exact.signatures"
FUZZY_SIGNATURES = "dedup_fuzzy.signatures"
FUZZY_BANDS = "dedup_fuzzy.bands"


class Run:
    """What every stage task needs: the config, the store, the Dask client and the input files.

    The cluster starts on first use, so a rerun whose stages are all cached starts none.
    """

    def __init__(self, cfg: CurationConfig, store: ArtifactStore, inputs: tuple[InputFile, ...], stack: ExitStack):
        self.cfg = cfg
        self.store = store
        self.inputs = inputs
        self._stack = stack
        self._client = None
        self.lid_model = cfg.langid.model_path or models.default_lid_path()  # fails fast when missing

    @property
    def client(self):
        if self._client is None:
            scorers = self.cfg.quality.scorers + self.cfg.toxicity.scorers
            uses_torch = any(spec.backend in ("hf", "embedding_head") for spec in scorers)
            warm = WarmModels((self.lid_model,), self.cfg.run.cluster.threads_per_worker if uses_torch else None)
            self._client = self._stack.enter_context(dask_client(self.cfg.run.cluster, warm))
        return self._client

    def params(self, stage: str) -> BaseModel:
        """A stage's parameters; a phase (`dedup_exact.signatures`) shares its stage's."""
        return self.cfg.input.read_params() if stage == "read" else getattr(self.cfg, base_stage(stage))

    def sources(self, stage: str, upstream: StageRef | None):
        return self.inputs if stage == "read" else upstream.shards

    def plan(self, stage: str, upstream: StageRef | None) -> str:
        """The stage key, computed without running anything."""
        version, params = MODULES[base_stage(stage)].VERSION, self.params(stage)
        salt = self.global_key(stage, upstream) if stage in GLOBAL_STAGES else ""
        return self.store.plan(stage, version, params, self.sources(stage, upstream), salt).key

    def batch_key(self, stage: str, upstream: StageRef) -> str:
        """Key of a global stage over every upstream shard at once."""
        return self.store.stage_key(stage, MODULES[stage].VERSION, self.params(stage), [upstream.key])

    def global_key(self, stage: str, upstream: StageRef) -> str:
        """The batch key, plus the state of the persistent dedup index the batch is checked against."""
        batch = self.batch_key(stage, upstream)
        if stage != "dedup_fuzzy" or not self.cfg.dedup_fuzzy.index:
            return batch
        return digest("indexed", batch, self.index_batches(exclude=batch))

    def index_dir(self) -> str:
        return f"{self.store.root}/dedup_fuzzy/index/{self.cfg.dedup_fuzzy.index}"

    def index_batches(self, exclude: str) -> list[str]:
        """Batches committed to the persistent fuzzy-dedup index (a `_SUCCESS` each), but `exclude`."""
        fs, root = self.store.fs, self.index_dir()
        if not fs.exists(root):
            return []
        batches = [path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(root, detail=False)]
        return sorted(b for b in batches if b != exclude and fs.exists(f"{root}/{b}/_SUCCESS"))

    def paths(self, ref: StageRef) -> list[str]:
        return [self.store.kept_path(ref.stage, shard) for shard in ref.shards]

    def map(self, stage: str, upstream: StageRef | None, fn=None, **kwargs) -> StageRef:
        """Run a stage's shard function (default: its module's `run`) over its sources on Dask."""
        module = MODULES[base_stage(stage)]
        return self.store.map_shards(
            stage, module.VERSION, fn or module.run, self.params(stage), self.sources(stage, upstream),
            upstream.stage if upstream else None, lambda: self.client,
            retries=self.cfg.run.shard_retries, on_progress=progress_reporter(stage), **kwargs,
        )


def progress_reporter(stage: str):
    """A Prefect progress artifact for the stage's shards, when called inside a Prefect run.

    At most one API call a second: the Prefect server shares the cores with the workers. Outside a
    run (a bench or a notebook driving stages directly) progress is not reported.
    """
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return lambda done, total: None
    progress = create_progress_artifact(progress=0.0, description=f"{stage}: shards finished (%)")
    last_update = [time.monotonic()]

    def report(done: int, total: int) -> None:
        if done == total or time.monotonic() - last_update[0] >= 1.0:
            update_progress_artifact(progress, progress=100.0 * done / max(total, 1))
            last_update[0] = time.monotonic()

    return report


def base_stage(stage: str) -> str:
    return stage.partition(".")[0]


def discover_inputs(patterns: tuple[str, ...]) -> tuple[InputFile, ...]:
    return tuple(
        InputFile(path, relpath, file_fingerprint(path)) for path, relpath in expand_inputs(list(patterns))
    )


@contextlib.contextmanager
def open_run(cfg: CurationConfig) -> Iterator[Run]:
    """Inputs and models resolved before any cluster starts, so bad paths fail fast."""
    inputs = discover_inputs(cfg.input.paths)
    with ExitStack() as stack:
        yield Run(cfg, ArtifactStore(cfg.store_url), inputs, stack)


def stage_cache_key(context: TaskRunContext, parameters: dict) -> str:
    """The store's stage key; the flow refreshes the cache when the store no longer holds the stage."""
    return digest("prefect-task", context.task.name, parameters["run"].plan(context.task.name, parameters.get("upstream")))


def stage_task(fn):
    """Every stage task looks alike: named for its stage, cached on the store's stage key."""
    return task(name=fn.__name__, cache_key_fn=stage_cache_key, persist_result=True)(fn)


@stage_task
def read(run: Run, upstream: None = None) -> StageRef:
    return run.map("read", None)


@stage_task
def url_filter(run: Run, upstream: StageRef) -> StageRef:
    return run.map("url_filter", upstream)


@stage_task
def extract(run: Run, upstream: StageRef) -> StageRef:
    return run.map("extract", upstream)


@stage_task
def normalize(run: Run, upstream: StageRef) -> StageRef:
    return run.map("normalize", upstream)


@stage_task
def langid(run: Run, upstream: StageRef) -> StageRef:
    return run.map("langid", upstream)


@stage_task
def clean(run: Run, upstream: StageRef) -> StageRef:
    return run.map("clean", upstream)


@stage_task
def quality(run: Run, upstream: StageRef) -> StageRef:
    return run.map("quality", upstream)


@stage_task
def toxicity(run: Run, upstream: StageRef) -> StageRef:
    return run.map("toxicity", upstream)


@stage_task
def select(run: Run, upstream: StageRef) -> StageRef:
    return run.map("select", upstream)


@stage_task
def dedup_exact(run: Run, upstream: StageRef) -> StageRef:
    """Global: hashes per shard, clusters by a Dask groupby over all hashes, then marks per shard."""
    signatures = run.map(
        EXACT_SIGNATURES, upstream, tasks.dedup_exact.signatures, shard_args=lambda i: (upstream.shards[i].name,)
    )
    clusters_key = run.global_key("dedup_exact", upstream)
    clusters_dir = f"{run.store.stage_dir('dedup_exact', clusters_key)}/clusters"
    signature_paths = run.paths(signatures)
    if not run.store.fs.exists(f"{clusters_dir}/_SUCCESS"):
        dedup.build_clusters(run, signature_paths, clusters_dir)
    return run.map(
        "dedup_exact", upstream, dedup.apply_exact_shard, salt=clusters_key,
        shard_args=lambda i: (run.store.url, signature_paths[i], clusters_dir),
    )


@stage_task
def dedup_fuzzy(run: Run, upstream: StageRef) -> StageRef:
    """Global: MinHash signatures and LSH band rows per shard, buckets by a Dask shuffle on the band
    hash, candidate edges (verified by estimated Jaccard), connected components on Dask, one keeper
    per component, then marks per shard. With `dedup_fuzzy.index`, the documents earlier runs kept
    join the buckets (and always stay), and this run's kept documents are added afterwards."""
    signatures = run.map(
        FUZZY_SIGNATURES, upstream, tasks.dedup_fuzzy.signatures, shard_args=lambda i: (upstream.shards[i].name,)
    )
    bands = run.map(FUZZY_BANDS, signatures, tasks.dedup_fuzzy.band_rows)
    batch, clusters_key = run.batch_key("dedup_fuzzy", upstream), run.global_key("dedup_fuzzy", upstream)
    clusters_dir = f"{run.store.stage_dir('dedup_fuzzy', clusters_key)}/clusters"
    signature_paths = run.paths(signatures)
    if not run.store.fs.exists(f"{clusters_dir}/_SUCCESS"):
        docs = dict(zip((s.name for s in upstream.shards), signature_paths))
        band_paths = run.paths(bands)
        if run.cfg.dedup_fuzzy.index:
            for indexed in run.index_batches(exclude=batch):
                for path in run.store.fs.glob(f"{run.index_dir()}/{indexed}/*.docs.parquet"):
                    shard = path.rsplit("/", 1)[-1].removesuffix(".docs.parquet")
                    docs[f"{tasks.dedup_fuzzy.INDEX_PREFIX}{indexed}/{shard}"] = path
                    band_paths.append(path.removesuffix(".docs.parquet") + ".bands.parquet")
        dedup.build_fuzzy_clusters(run, docs, band_paths, clusters_dir)
    marked = run.map(
        "dedup_fuzzy", upstream, dedup.apply_fuzzy_shard, salt=clusters_key,
        shard_args=lambda i: (run.store.url, signature_paths[i], clusters_dir),
    )
    if run.cfg.dedup_fuzzy.index and not run.store.fs.exists(f"{run.index_dir()}/{batch}/_SUCCESS"):
        dedup.add_to_index(run, upstream, signatures, bands, clusters_dir, f"{run.index_dir()}/{batch}")
    return marked


