"""How a declared stage runs: map stages phase by phase, corpus-wide stages through one engine.

A stage is a `Stage` declaration (flows/registry.py): its `tasks/` module, its config section, its
map phases and, for a corpus-wide stage, its `CorpusSteps`. Planning and running are one code path:
`Stage.plan` and `Stage.run` walk the same `MapCall`s, one computing refs without running, the other
mapping shards, so the key a stage is cached under is the key it writes.

The corpus-wide engine (exact and fuzzy dedup declare only their signature phases, cluster builder
and cluster schema): signatures per shard → clusters over the corpus (Dask) → marks per shard, each
shard salted with the digest of the cluster rows touching it → index commit. With a persistent
index (flows/dedup_index.py) only the shards no earlier batch decided go through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pydantic import BaseModel

from flows.cluster import WarmModels
from flows.context import RunContext
from flows.dedup_index import DedupIndex, IndexEntry, IndexRecord, prefix
from flows.store import ArtifactStore, StageRef, digest
from tasks.clusters import marks
from tasks.contract import StageOutput


def _same(params: BaseModel) -> BaseModel:
    return params


def _always(params: BaseModel) -> bool:
    return True


def _never(params: BaseModel) -> bool:
    return False


def _no_args(ctx: RunContext, params: BaseModel, upstream: StageRef | None) -> Callable[[int], tuple]:
    return lambda i: ()


@dataclass(frozen=True)
class Phase:
    """One map over a stage's shards, cached under its own name (`decontam.scan`, `dedup_fuzzy.bands`).

    `params` derives the phase's params from its stage's (a phase keyed on fewer knobs does not rerun
    when the others change); `when` says whether it runs under them; `shard_args` gives the extra
    arguments of each shard's call, resolved only when shards run (it may build an index); `reads`
    names, under the phase's params, the columns of its input view it reads (None: all of them).
    `key_params`, when set, keys the phase's shards by those params and by what each shard holds
    (`ArtifactStore.map_shards`): a params change that leaves a shard's output as it was leaves
    the later stages' work on that shard cached.
    """

    name: str
    fn: Callable[..., Any]
    params: Callable[[BaseModel], BaseModel] = _same
    when: Callable[[BaseModel], bool] = _always
    shard_args: Callable[[RunContext, BaseModel, StageRef | None], Callable[[int], tuple]] = _no_args
    reads: Callable[[BaseModel], tuple[str, ...] | None] = lambda params: None
    key_params: Callable[[BaseModel], BaseModel] | None = None


@dataclass(frozen=True)
class MapCall:
    """One phase over one upstream, as planning and running both see it."""

    phase: Phase
    version: int
    stage_params: BaseModel
    upstream: StageRef | None

    def plan(self, ctx: RunContext) -> StageRef:
        return ctx.plan(self.phase.name, self.version, self.phase.params(self.stage_params), self.upstream)

    def run(self, ctx: RunContext) -> StageRef:
        params = self.phase.params(self.stage_params)
        return ctx.map(
            self.phase.name, self.version, self.phase.fn, params, self.upstream,
            shard_args=self.phase.shard_args(ctx, self.stage_params, self.upstream), reads=self.phase.reads(params),
            key_params=None if self.phase.key_params is None else self.phase.key_params(params),
        )


Step = Callable[[MapCall], StageRef]


@dataclass(frozen=True)
class Clusters:
    """Where a corpus-wide stage's shard finds its cluster rows, and how they mark it (worker side).

    `key` is the signature column cluster rows are looked up by; `apply(table, params, signatures,
    clusters) -> StageOutput` marks a shard; `mark_columns` are the signature columns it reads.
    """

    key: str
    schema: pa.Schema
    apply: Callable[..., StageOutput]
    mark_columns: tuple[str, ...] | None = None

    def of_shard(self, store: ArtifactStore, signatures_path: str, clusters_dir: str, columns=None) -> tuple[pa.Table, pa.Table]:
        """This shard's signature rows and only the cluster rows that touch them."""
        shard = store.read_table(signatures_path, columns=columns)
        keys = pa.array(shard.column(self.key).to_pylist(), pa.string())  # typed even when empty
        clusters = ds.dataset(clusters_dir, format="parquet", filesystem=store.fs, schema=self.schema)
        return shard, clusters.to_table(filter=ds.field(self.key).isin(keys))

    def mark(self, table: pa.Table, params: BaseModel, store_url: str, signatures_path: str, clusters_dir: str) -> StageOutput:
        columns = list(self.mark_columns) if self.mark_columns else None
        signatures, clusters = self.of_shard(ArtifactStore(store_url), signatures_path, clusters_dir, columns)
        return self.apply(table, params, signatures, clusters)

    def digest(self, store_url: str, signatures_path: str, clusters_dir: str) -> str:
        """The digest of the cluster rows touching this shard: all its marks depend on."""
        _, clusters = self.of_shard(ArtifactStore(store_url), signatures_path, clusters_dir, [self.key])
        return digest(clusters.sort_by([(name, "ascending") for name in self.schema.names]).to_pylist())

    def kept_rows(self, signatures_path: str, target: str, store_url: str, clusters_dir: str, batch_prefix: str) -> int:
        """The signature rows of this shard's kept documents, positions prefixed, written to `target`."""
        store = ArtifactStore(store_url)
        sigs, clusters = self.of_shard(store, signatures_path, clusters_dir)
        found = marks(sigs.column(self.key), sigs.column("position"), clusters, self.key)
        kept = sigs.filter(pc.invert(found.duplicate))
        at = kept.schema.get_field_index("position")
        store.write_table(target, kept.set_column(at, "position", pc.binary_join_element_wise(batch_prefix, kept.column("position"), "")))
        return kept.num_rows


@dataclass(frozen=True)
class CorpusSteps:
    """What a corpus-wide stage declares beyond its signature phases (`Stage.phases`; the first
    phase's rows, a `position` per document, are what the marks and the index read).

    `build_clusters(ctx, params, phase refs, index entries, clusters_dir)` writes every cluster of
    the batch's shards (and of the index entries they meet) to `clusters_dir`; `index_file` names the
    signature rows an index batch keeps per shard.
    """

    build_clusters: Callable[[RunContext, BaseModel, list[StageRef], list[IndexEntry], str], None]
    clusters: Clusters
    index_file: str


@dataclass(frozen=True)
class Batch:
    """The shards a corpus-wide stage decides in this run, and what they are decided against."""

    decided: dict[int, IndexRecord]  # upstream position -> how an earlier batch decided it
    new: StageRef  # the rest
    entries: list[IndexEntry]  # the index entries they meet
    key: str  # names the clusters; salts the stage key
    index: DedupIndex | None


@dataclass(frozen=True)
class Stage:
    """One stage: its `tasks/` module (VERSION; `run` for a map stage, `apply` for a corpus-wide one),
    its config section and model, its map phases (default: the module's `run`), and what the run
    around it needs to know (stages it must follow, models to warm, its report section)."""

    name: str
    module: ModuleType
    section_model: type[BaseModel]
    section: str = ""  # the config section; default: the stage name
    params_of: Callable[[BaseModel], BaseModel] = _same  # the params from the section
    phases: tuple[Phase, ...] = ()
    reads: Callable[[BaseModel], tuple[str, ...] | None] = lambda params: None  # of the default phase
    corpus: CorpusSteps | None = None
    needs: Callable[[BaseModel], tuple[str, ...]] = lambda cfg: ()  # stages to run first under this config
    uses_torch: Callable[[BaseModel], bool] = _never  # from the params
    fasttext_models: Callable[[BaseModel], tuple[str, ...]] = lambda params: ()
    report: Callable[[RunContext, StageRef | None, StageRef], Any] | None = None  # -> flows.report.Section

    def __post_init__(self) -> None:
        object.__setattr__(self, "section", self.section or self.name)
        if not self.phases and self.corpus is None:
            object.__setattr__(self, "phases", (Phase(self.name, self.module.run, reads=self.reads),))

    @property
    def version(self) -> int:
        return self.module.VERSION

    def params(self, cfg: BaseModel) -> BaseModel:
        return self.params_of(getattr(cfg, self.section))

    def plan(self, ctx: RunContext, upstream: StageRef | None) -> tuple[StageRef, ...]:
        """Every phase's ref, the stage's own last, as `run` writes them, without running anything."""
        plan = partial(MapCall.plan, ctx=ctx)
        if self.corpus is None:
            return self._chain(ctx, upstream, plan)
        _, phases, ref = self._corpus_refs(ctx, upstream, plan)
        return (*phases, ref)

    def run(self, ctx: RunContext, upstream: StageRef | None) -> StageRef:
        if self.corpus is None:
            return self._chain(ctx, upstream, partial(MapCall.run, ctx=ctx))[-1]
        return self._run_corpus(ctx, upstream)

    def _chain(self, ctx: RunContext, upstream: StageRef | None, step: Step) -> tuple[StageRef, ...]:
        params, refs = self.params(ctx.cfg), []
        for phase in self.phases:
            if phase.when(params):
                upstream = step(MapCall(phase, self.version, params, upstream))
                refs.append(upstream)
        return tuple(refs)

    # corpus-wide stages --------------------------------------------------------------------------

    def _corpus_refs(self, ctx: RunContext, upstream: StageRef, step: Step) -> tuple[Batch, tuple[StageRef, ...], StageRef]:
        """The batch, the refs of its signature phases, and the stage's ref: the upstream's shards
        under the batch key."""
        params = self.params(ctx.cfg)
        batch = self._batch(ctx, params, upstream)
        phases = self._chain(ctx, batch.new, step)
        return batch, phases, ctx.plan(self.name, self.version, params, upstream, salt=batch.key)

    def _batch(self, ctx: RunContext, params: BaseModel, upstream: StageRef) -> Batch:
        """Without an index, every shard, keyed by them all; with one, the undecided shards, keyed by
        them, the decided ones and the index entries they meet."""
        batch_key = partial(ctx.store.stage_key, self.name, self.version, params)
        if not params.index:
            return Batch({}, upstream, [], batch_key([upstream.key]), None)
        index = ctx.indexes.get((self.name, params.index))
        if index is None:
            index = ctx.indexes[(self.name, params.index)] = DedupIndex(
                ctx.store, self.name, params.index, params, self.corpus.index_file
            )
        decided, new = index.split(upstream)
        entries = index.entries({ctx.input_path(shard) for shard in new.shards})
        key = digest("indexed", batch_key([new.key]), sorted(decided), [(e.batch, e.shard) for e in entries])
        return Batch(decided, new, entries, key, index)

    def _run_corpus(self, ctx: RunContext, upstream: StageRef) -> StageRef:
        params, clusters = self.params(ctx.cfg), self.corpus.clusters
        batch, phases, planned = self._corpus_refs(ctx, upstream, partial(MapCall.run, ctx=ctx))
        clusters_dir = f"{ctx.store.stage_dir(self.name, batch.key)}/clusters"
        signature_paths = ctx.paths(phases[0])
        if batch.new.shards and not ctx.store.fs.exists(f"{clusters_dir}/_SUCCESS"):
            self.corpus.build_clusters(ctx, params, list(phases), batch.entries, clusters_dir)
        salts = shard_salts(ctx, clusters, signature_paths, clusters_dir)
        marked = ctx.map(
            self.name, self.version, clusters.mark, params, batch.new, salt=batch.key, shard_salts=salts,
            shard_args=lambda i: (ctx.store.url, signature_paths[i], clusters_dir), reads=(),
        )
        if batch.index is not None and batch.new.shards:
            self._commit(ctx, batch, signature_paths, marked, salts, clusters_dir)
        return self._merge(ctx, planned.key, upstream, batch, marked, clusters_dir)

    def _commit(
        self, ctx: RunContext, batch: Batch, signature_paths: list[str], marked: StageRef, salts: list[str], clusters_dir: str,
    ) -> None:
        """The kept documents' signature rows of the batch's shards, then the records (`DedupIndex.commit`).
        Only signatures: a later run derives what else it needs under its own params."""
        index, shards = batch.index, batch.new.shards
        targets = [index.entry_path(batch.key, shard.name) for shard in shards]
        ctx.client.gather(ctx.client.map(
            self.corpus.clusters.kept_rows, signature_paths, targets, store_url=ctx.store.url,
            clusters_dir=clusters_dir, batch_prefix=prefix(batch.key), pure=False,
        ))
        index.commit(batch.key, {
            shard.name: IndexRecord(
                ctx.input_path(shard), shard.key, index.params, marked.shards[i].key, batch.key, salts[i],
                clusters_dir, signature_paths[i],
            )
            for i, shard in enumerate(shards)
        })

    def _merge(self, ctx: RunContext, key: str, upstream: StageRef, batch: Batch, marked: StageRef, clusters_dir: str) -> StageRef:
        """Decided shards (their marks redone from their batch's clusters if their files are gone) and
        the newly marked ones, in upstream order, under the planned stage `key`, with a manifest naming
        the batch's clusters (None when every shard was decided before)."""
        params, fresh, shards = self.params(ctx.cfg), iter(marked.shards), []
        for i, shard in enumerate(upstream.shards):
            record = batch.decided.get(i)
            if record is None:
                shards.append(next(fresh))
                continue
            ref = ctx.map(
                self.name, self.version, self.corpus.clusters.mark, params, replace(upstream, shards=(shard,)),
                salt=record.salt, shard_salts=[record.shard_salt],
                shard_args=lambda _: (ctx.store.url, record.signatures, record.clusters), reads=(),
            )
            shards.append(ref.shards[0])
        ref = StageRef(self.name, key, tuple(shards), marked.computed)
        ctx.store.write_manifest(ref, self.version, params, extra={"clusters": clusters_dir if marked.shards else None})
        return ref


def shard_salts(ctx: RunContext, clusters: Clusters, signature_paths: list[str], clusters_dir: str) -> list[str]:
    """Per-shard salts for a corpus-wide stage's marks: the digest of the clusters touching each shard.

    A shard whose clusters did not change keeps its key when another shard joins the corpus, so a
    re-curation recomputes neither its marks nor any later stage of it. Kept beside the clusters.
    """
    path = f"{clusters_dir}/_shard_digests.json"
    saved = ctx.store.read_json(path) if ctx.store.fs.exists(path) else {}
    missing = [p for p in signature_paths if p not in saved]
    if missing:
        futures = ctx.client.map(clusters.digest, [ctx.store.url] * len(missing), missing, [clusters_dir] * len(missing), pure=False)
        saved |= dict(zip(missing, ctx.client.gather(futures)))
        ctx.store.write_json(path, saved)
    return [saved[p] for p in signature_paths]


@dataclass(frozen=True)
class Registry:
    """The stages of a curation in their default order; the first reads the input files."""

    stages: tuple[Stage, ...]
    _by_name: dict[str, Stage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        object.__setattr__(self, "_by_name", dict(zip(names, self.stages)))

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __getitem__(self, name: str) -> Stage:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def with_stage(self, stage: Stage, after: str) -> Registry:
        at = self.names.index(after) + 1
        return Registry(self.stages[:at] + (stage,) + self.stages[at:])

    def order(self, cfg: BaseModel) -> tuple[Stage, ...]:
        """The stages after the first, in order, except that a stage's `needs` under `cfg` run before it."""
        ordered: dict[str, Stage] = {}

        def add(stage: Stage) -> None:
            if stage.name in ordered:
                return
            for name in stage.needs(cfg):
                add(self[name])
            ordered[stage.name] = stage

        for stage in self.stages[1:]:
            add(stage)
        return tuple(ordered.values())

    def warm_models(self, cfg: BaseModel) -> WarmModels:
        """Per worker: the fastText models the stages name (resolved now: a missing one fails before
        any cluster starts), and torch's thread count when a stage runs torch."""
        params = [(stage, stage.params(cfg)) for stage in self.stages]
        fasttext = tuple(path for stage, p in params for path in stage.fasttext_models(p))
        torch = any(stage.uses_torch(p) for stage, p in params)
        return WarmModels(fasttext, cfg.run.cluster.threads_per_worker if torch else None)
