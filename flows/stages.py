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
import tasks.decontam
import tasks.toxicity
import tasks.url_filter
from flows import decontam as decontam_index, dedup
from flows.cluster import WarmModels, dask_client
from flows.config import CurationConfig
from flows.store import ArtifactStore, InputFile, ShardRef, StageRef, digest
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
    "decontam": tasks.decontam,
    "select": tasks.select,
}
GLOBAL_STAGES = ("dedup_exact", "dedup_fuzzy")  # their marks depend on every upstream shard
EXACT_SIGNATURES = "dedup_exact.signatures"
FUZZY_SIGNATURES = "dedup_fuzzy.signatures"
FUZZY_BANDS = "dedup_fuzzy.bands"
DECONTAM_SCAN = "decontam.scan"  # embedding windows: keyed without the threshold and the action
INDEX_SHARDS = "_shards.json"  # in each index batch: shard name -> record (Run.index_records)


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
            uses_torch |= self.scans_windows()
            warm = WarmModels((self.lid_model,), self.cfg.run.cluster.threads_per_worker if uses_torch else None)
            self._client = self._stack.enter_context(dask_client(self.cfg.run.cluster, warm))
        return self._client

    def params(self, stage: str) -> BaseModel:
        """A stage's parameters; a phase (`dedup_exact.signatures`) shares its stage's, except the
        decontamination scan, which must not rerun for a new threshold or action."""
        if stage == "read":
            return self.cfg.input.read_params()
        return self.cfg.decontam.scan_params() if stage == DECONTAM_SCAN else getattr(self.cfg, base_stage(stage))

    def scans_windows(self) -> bool:
        return bool(self.cfg.decontam.benchmarks) and self.cfg.decontam.semantic.enabled

    def sources(self, stage: str, upstream: StageRef | None):
        return self.inputs if stage == "read" else upstream.shards

    def plan(self, stage: str, upstream: StageRef | None) -> str:
        """The stage key, computed without running anything."""
        version, params = MODULES[base_stage(stage)].VERSION, self.params(stage)
        salt = self.global_key(stage, upstream) if stage in GLOBAL_STAGES else ""
        if stage == "decontam" and self.scans_windows():
            upstream = self.store.plan(DECONTAM_SCAN, version, self.params(DECONTAM_SCAN), upstream.shards)
        return self.store.plan(stage, version, params, self.sources(stage, upstream), salt).key

    def batch_key(self, stage: str, upstream: StageRef) -> str:
        """Key of a global stage over every upstream shard at once."""
        return self.store.stage_key(stage, MODULES[stage].VERSION, self.params(stage), [upstream.key])

    def global_key(self, stage: str, upstream: StageRef) -> str:
        """The batch key; with a persistent index, of the undecided shards plus the index entries
        they are checked against."""
        if not self.params(stage).index:
            return self.batch_key(stage, upstream)
        decided, new = self.split_decided(stage, upstream)
        return digest("indexed", self.batch_key(stage, new), sorted(decided), [e[:2] for e in self.index_entries(stage, new)])

    # the persistent dedup index ----------------------------------------------------------------
    # `<store>/<stage>/index/<name>/<batch>/`: the kept documents' signature rows of each shard the
    # batch decided (positions prefixed with INDEX_PREFIX), `_shards.json` (a record per shard: its
    # input file's path, upstream key, params digest, marked shard key, salts, clusters and signatures
    # paths) and `_SUCCESS`, written last. A shard decided once keeps its marks: a re-curation runs
    # only the shards no batch decided, against everything the index holds.

    def index_dir(self, stage: str) -> str:
        return f"{self.store.root}/{stage}/index/{self.params(stage).index}"

    def index_records(self, stage: str) -> dict[str, dict[str, dict]]:
        """Committed batches (a `_SUCCESS` each): batch -> shard name -> record."""
        fs, root = self.store.fs, self.index_dir(stage)
        if not fs.exists(root):
            return {}
        batches = sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(root, detail=False))
        return {b: self.store.read_json(f"{root}/{b}/{INDEX_SHARDS}") for b in batches if fs.exists(f"{root}/{b}/_SUCCESS")}

    def split_decided(self, stage: str, upstream: StageRef) -> tuple[dict[int, dict], StageRef]:
        """The shards an index batch decided with these params (index -> record), and the rest as a ref."""
        params = digest(self.params(stage))
        records = {
            (name, record["upstream"]): record
            for shards in self.index_records(stage).values() for name, record in shards.items()
            if record["params"] == params
        } if self.params(stage).index else {}
        decided = {i: records[(s.name, s.key)] for i, s in enumerate(upstream.shards) if (s.name, s.key) in records}
        new = tuple(s for i, s in enumerate(upstream.shards) if i not in decided)
        return decided, StageRef(upstream.stage, digest("undecided", [s.key for s in new]), new)

    def input_of(self, shard: ShardRef) -> InputFile:
        return next(source for source in self.inputs if source.name == shard.name)

    def index_entries(self, stage: str, new: StageRef) -> list[tuple[str, str, str]]:
        """(batch, shard name, path stem) of the index entries the undecided shards `new` are checked against.

        An entry is skipped when it came from an input file (by path) this run reads again but did
        not decide: the file was modified, or something upstream of the dedup changed; its documents
        must not meet their own earlier copies. (A batch this run commits holds only decided shards
        at the next run, so no batch needs excluding by name.)
        """
        redone = {self.input_of(s).path for s in new.shards}
        return [
            (batch, name, f"{self.index_dir(stage)}/{batch}/{name}")
            for batch, shards in self.index_records(stage).items()
            for name, record in sorted(shards.items()) if record["path"] not in redone
        ]

    def merge_decided(
        self, stage: str, key: str, upstream: StageRef, decided: dict[int, dict], marked: StageRef, apply_fn,
        clusters_dir: str,
    ) -> StageRef:
        """Decided shards (recomputed from their batch's clusters if their files are gone) and the
        newly marked ones, in upstream order, under the stage `key` (planned before this batch joined
        the index), with a manifest naming the batch's clusters (None when every shard was decided)."""
        module, params = MODULES[stage], self.params(stage)
        fresh = iter(marked.shards)
        shards = []
        for i, shard in enumerate(upstream.shards):
            if i not in decided:
                shards.append(next(fresh))
                continue
            record = decided[i]
            ref = self.store.map_shards(
                stage, module.VERSION, apply_fn, params, [shard], upstream.stage, lambda: self.client,
                salt=record["salt"], shard_salts=[record["shard_salt"]], retries=self.cfg.run.shard_retries,
                shard_args=lambda _: (self.store.url, record["signatures"], record["clusters"]),
            )
            shards.append(ref.shards[0])
        ref = StageRef(stage, key, tuple(shards), marked.computed)
        clusters = clusters_dir if marked.shards else None
        self.store.write_manifest(ref, module.VERSION, params, extra={"clusters": clusters})
        return ref

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
def decontam(run: Run, upstream: StageRef) -> StageRef:
    """The benchmark index is built once per benchmark set (a store artifact), then matched per shard:
    the windows' embeddings first (a phase of their own), then n-grams, threshold and action."""
    index_url = decontam_index.index_url(run)
    if run.scans_windows():
        upstream = run.map(DECONTAM_SCAN, upstream, tasks.decontam.scan, shard_args=lambda i: (index_url,))
    return run.map("decontam", upstream, shard_args=lambda i: (index_url,))


@stage_task
def select(run: Run, upstream: StageRef) -> StageRef:
    return run.map("select", upstream)


@stage_task
def dedup_exact(run: Run, upstream: StageRef) -> StageRef:
    """Global: hashes per shard, clusters by a Dask groupby over all hashes, then marks per shard.
    With `dedup_exact.index`, only shards no earlier batch decided are hashed and marked, against
    the kept documents of every batch; this batch's kept documents join the index afterwards."""
    key, (decided, new) = run.plan("dedup_exact", upstream), run.split_decided("dedup_exact", upstream)
    signatures = run.map(
        EXACT_SIGNATURES, new, tasks.dedup_exact.signatures, shard_args=lambda i: (new.shards[i].name,)
    )
    clusters_key = run.global_key("dedup_exact", upstream)
    clusters_dir = f"{run.store.stage_dir('dedup_exact', clusters_key)}/clusters"
    signature_paths = run.paths(signatures)
    if new.shards and not run.store.fs.exists(f"{clusters_dir}/_SUCCESS"):
        indexed = [f"{stem}.hashes.parquet" for *_, stem in run.index_entries("dedup_exact", new)]
        dedup.build_clusters(run, signature_paths + indexed, clusters_dir)
    salts = dedup.shard_salts(run, "dedup_exact", signature_paths, clusters_dir)
    marked = run.map(
        "dedup_exact", new, dedup.apply_exact_shard, salt=clusters_key, shard_salts=salts,
        shard_args=lambda i: (run.store.url, signature_paths[i], clusters_dir),
    )
    if run.cfg.dedup_exact.index and new.shards:
        dedup.add_to_index(run, "dedup_exact", new, signatures, marked, clusters_key, salts, clusters_dir)
    return run.merge_decided("dedup_exact", key, upstream, decided, marked, dedup.apply_exact_shard, clusters_dir)


@stage_task
def dedup_fuzzy(run: Run, upstream: StageRef) -> StageRef:
    """Global: MinHash signatures and LSH band rows per shard, buckets by a Dask shuffle on the band
    hash, candidate edges (verified by their agreeing MinHash values), connected components on Dask,
    one keeper per component (members unlike it stay), then marks per shard. With
    `dedup_fuzzy.index`, only shards no earlier batch decided go through, their buckets joined by the
    documents the index holds (which always stay); this batch's kept documents join the index afterwards."""
    key, (decided, new) = run.plan("dedup_fuzzy", upstream), run.split_decided("dedup_fuzzy", upstream)
    signatures = run.map(
        FUZZY_SIGNATURES, new, tasks.dedup_fuzzy.signatures, shard_args=lambda i: (new.shards[i].name,)
    )
    bands = run.map(FUZZY_BANDS, signatures, tasks.dedup_fuzzy.band_rows)
    clusters_key = run.global_key("dedup_fuzzy", upstream)
    clusters_dir = f"{run.store.stage_dir('dedup_fuzzy', clusters_key)}/clusters"
    signature_paths = run.paths(signatures)
    if new.shards and not run.store.fs.exists(f"{clusters_dir}/_SUCCESS"):
        docs = dict(zip((s.name for s in new.shards), signature_paths))
        for batch, shard, stem in run.index_entries("dedup_fuzzy", new):
            docs[f"{tasks.dedup_fuzzy.INDEX_PREFIX}{batch}/{shard}"] = f"{stem}.docs.parquet"
        dedup.build_fuzzy_clusters(run, docs, run.paths(bands), clusters_dir)
    salts = dedup.shard_salts(run, "dedup_fuzzy", signature_paths, clusters_dir)
    marked = run.map(
        "dedup_fuzzy", new, dedup.apply_fuzzy_shard, salt=clusters_key, shard_salts=salts,
        shard_args=lambda i: (run.store.url, signature_paths[i], clusters_dir),
    )
    if run.cfg.dedup_fuzzy.index and new.shards:
        dedup.add_to_index(run, "dedup_fuzzy", new, signatures, marked, clusters_key, salts, clusters_dir)
    return run.merge_decided("dedup_fuzzy", key, upstream, decided, marked, dedup.apply_fuzzy_shard, clusters_dir)
