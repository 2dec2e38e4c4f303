"""The corpus-wide engine: how a stage whose decision needs the whole corpus (dedup) runs.

A corpus-wide stage declares its signature phases (`Stage.phases`: per shard, the rows it decides
on, numbered by a `position`), a cluster builder and a cluster schema (`CorpusSteps`); this engine
runs the rest: signatures per shard → clusters over the corpus (the builder, on Dask) → marks per
shard, each shard salted with the digest of the cluster rows touching it → index commit. With a
persistent index (`flows/engine/index.py`) only the shards no earlier batch decided go through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pydantic import BaseModel

from flows.engine.context import RunContext
from flows.engine.index import CorpusIndex, IndexEntry, IndexRecord, prefix
from flows.engine.store import ArtifactStore, StageRef, digest
from tasks.clusters import marks
from tasks.contract import StageOutput


@dataclass(frozen=True)
class Clusters:
    """Where a corpus-wide stage's shard finds its cluster rows, and how they mark it (worker side).

    `key` is the signature column cluster rows are looked up by; `position` the signature column that
    orders the corpus (`tasks.clusters.position`), which cluster rows name keepers by; `apply(table,
    params, signatures, clusters) -> StageOutput` marks a shard; `mark_columns` are the signature
    columns it reads (None: all). Cluster rows hold `key`, `keeper` and `size` (`tasks.clusters.marks`).
    """

    key: str
    schema: pa.Schema
    apply: Callable[..., StageOutput]
    mark_columns: tuple[str, ...] | None = None
    position: str = "position"

    def of_shard(
        self, store: ArtifactStore, signatures_path: str, clusters_dir: str, columns=None
    ) -> tuple[pa.Table, pa.Table]:
        """This shard's signature rows and only the cluster rows that touch them."""
        shard = store.read_table(signatures_path, columns=columns)
        keys = pa.array(shard.column(self.key).to_pylist(), pa.string())  # typed even when empty
        clusters = ds.dataset(clusters_dir, format="parquet", filesystem=store.fs, schema=self.schema)
        return shard, clusters.to_table(filter=ds.field(self.key).isin(keys))

    def mark(
        self, table: pa.Table, params: BaseModel, store_url: str, signatures_path: str, clusters_dir: str
    ) -> StageOutput:
        columns = list(self.mark_columns) if self.mark_columns else None
        signatures, clusters = self.of_shard(ArtifactStore(store_url), signatures_path, clusters_dir, columns)
        return self.apply(table, params, signatures, clusters)

    def digest(self, store_url: str, signatures_path: str, clusters_dir: str) -> str:
        """The digest of the cluster rows touching this shard: all its marks depend on."""
        _, clusters = self.of_shard(ArtifactStore(store_url), signatures_path, clusters_dir, [self.key])
        return digest(clusters.sort_by([(name, "ascending") for name in self.schema.names]).to_pylist())

    def kept_rows(
        self, signatures_path: str, target: str, store_url: str, clusters_dir: str, batch_prefix: str
    ) -> int:
        """The signature rows of this shard's kept documents, positions prefixed, written to `target`."""
        store = ArtifactStore(store_url)
        sigs, clusters = self.of_shard(store, signatures_path, clusters_dir)
        found = marks(sigs.column(self.key), sigs.column(self.position), clusters, self.key)
        kept = sigs.filter(pc.invert(found.duplicate))
        at = kept.schema.get_field_index(self.position)
        prefixed = pc.binary_join_element_wise(batch_prefix, kept.column(self.position), "")
        store.write_table(target, kept.set_column(at, self.position, prefixed))
        return kept.num_rows


def shard_name_args(ctx: RunContext, params: BaseModel, upstream: StageRef | None) -> Callable[[int], tuple]:
    """The `shard_args` of a signature phase: it numbers rows by the shard's name (`tasks.clusters.position`)."""
    return lambda i: (upstream.shards[i].name,)


@dataclass(frozen=True)
class CorpusSteps:
    """What a corpus-wide stage declares beyond its signature phases (`Stage.phases`; the first
    phase's rows are what the marks and the index read).

    `build_clusters(ctx, params, phase refs, index entries, clusters_dir)` writes every cluster of
    the batch's shards (and of the index entries they meet) to `clusters_dir`; `index` names, under
    the stage's params, the persistent index a run adds its batch to (None: every run decides every
    shard); `index_param` is the params field that names it, which scheduled re-curation sets
    (`flows/orchestration/deployments.py`); `index_file` names the signature rows an index batch
    keeps per shard.
    """

    build_clusters: Callable[[RunContext, BaseModel, list[StageRef], list[IndexEntry], str], None]
    clusters: Clusters
    index_file: str
    index_param: str | None = None

    def index(self, params: BaseModel) -> str | None:
        return getattr(params, self.index_param) if self.index_param else None


@dataclass(frozen=True)
class Batch:
    """The shards a corpus-wide stage decides in this run, and what they are decided against."""

    decided: dict[int, IndexRecord]  # upstream position -> how an earlier batch decided it
    new: StageRef  # the rest
    entries: list[IndexEntry]  # the index entries they meet
    key: str  # names the clusters; salts the stage key
    index: CorpusIndex | None


Step = Callable[..., StageRef]  # one phase over one upstream (`flows.engine.stage.MapCall`) -> its ref


class CorpusStage(Protocol):
    """What the engine reads of a corpus-wide `flows.engine.stage.Stage` (typed here, not imported:
    the stage module imports this one)."""

    name: str
    corpus: CorpusSteps

    @property
    def version(self) -> int: ...

    def params(self, cfg: BaseModel) -> BaseModel: ...

    def chain(self, ctx: RunContext, upstream: StageRef | None, step: Step) -> tuple[StageRef, ...]: ...


def corpus_refs(
    stage: CorpusStage, ctx: RunContext, upstream: StageRef, step: Step
) -> tuple[Batch, tuple[StageRef, ...], StageRef]:
    """The batch, the refs of its signature phases, and the stage's ref: the upstream's shards
    under the batch key."""
    params = stage.params(ctx.cfg)
    batch = _batch(stage, ctx, params, upstream)
    phases = stage.chain(ctx, batch.new, step)
    return batch, phases, ctx.plan(stage.name, stage.version, params, upstream, salt=batch.key)


def _batch(stage: CorpusStage, ctx: RunContext, params: BaseModel, upstream: StageRef) -> Batch:
    """Without an index, every shard, keyed by them all; with one, the undecided shards, keyed by
    them, the decided ones and the index entries they meet."""
    batch_key = partial(ctx.store.stage_key, stage.name, stage.version, params)
    name = stage.corpus.index(params)
    if not name:
        return Batch({}, upstream, [], batch_key([upstream.key]), None)
    index = ctx.indexes.get((stage.name, name))
    if index is None:
        index = ctx.indexes[(stage.name, name)] = CorpusIndex(
            ctx.store, stage.name, name, params, stage.corpus.index_file
        )
    decided, new = index.split(upstream)
    entries = index.entries({ctx.input_path(shard) for shard in new.shards})
    key = digest("indexed", batch_key([new.key]), sorted(decided), [(e.batch, e.shard) for e in entries])
    return Batch(decided, new, entries, key, index)


def run_corpus(stage: CorpusStage, ctx: RunContext, upstream: StageRef, step: Step) -> StageRef:
    """Signatures, clusters (unless this batch's are complete), marks, index commit, then the stage's
    manifest over decided and newly marked shards."""
    params, clusters = stage.params(ctx.cfg), stage.corpus.clusters
    batch, phases, planned = corpus_refs(stage, ctx, upstream, step)
    clusters_dir = f"{ctx.store.stage_dir(stage.name, batch.key)}/clusters"
    signature_paths = ctx.paths(phases[0])
    if batch.new.shards and not ctx.store.fs.exists(f"{clusters_dir}/_SUCCESS"):
        ctx.progress.step(stage.name, f"clusters over the corpus ({len(batch.new.shards)} shards)")
        stage.corpus.build_clusters(ctx, params, list(phases), batch.entries, clusters_dir)
    ctx.progress.step(stage.name, "the clusters touching each shard")
    salts = shard_salts(ctx, clusters, signature_paths, clusters_dir)
    marked = ctx.map(
        stage.name,
        stage.version,
        clusters.mark,
        params,
        batch.new,
        salt=batch.key,
        shard_salts=salts,
        shard_args=lambda i: (ctx.store.url, signature_paths[i], clusters_dir),
        reads=(),
        manifest_extra=clusters_extra(clusters_dir, batch.new.shards),  # the same key as _merge's, unindexed
    )
    if batch.index is not None and batch.new.shards:
        ctx.progress.step(stage.name, "index commit")
        _commit(stage, ctx, batch, signature_paths, marked, salts, clusters_dir)
    return _merge(stage, ctx, planned.key, upstream, batch, marked, clusters_dir)


def _commit(
    stage: CorpusStage,
    ctx: RunContext,
    batch: Batch,
    signature_paths: list[str],
    marked: StageRef,
    salts: list[str],
    clusters_dir: str,
) -> None:
    """The kept documents' signature rows of the batch's shards, then the records (`CorpusIndex.commit`).
    Only signatures: a later run derives what else it needs under its own params."""
    index, shards = batch.index, batch.new.shards
    targets = [index.entry_path(batch.key, shard.name) for shard in shards]
    ctx.client.gather(
        ctx.client.map(
            stage.corpus.clusters.kept_rows,
            signature_paths,
            targets,
            store_url=ctx.store.url,
            clusters_dir=clusters_dir,
            batch_prefix=prefix(batch.key),
            pure=False,
        )
    )
    index.commit(
        batch.key,
        {
            shard.name: IndexRecord(
                ctx.input_path(shard),
                shard.key,
                index.params,
                marked.shards[i].key,
                batch.key,
                salts[i],
                clusters_dir,
                signature_paths[i],
            )
            for i, shard in enumerate(shards)
        },
    )


def _merge(
    stage: CorpusStage,
    ctx: RunContext,
    key: str,
    upstream: StageRef,
    batch: Batch,
    marked: StageRef,
    clusters_dir: str,
) -> StageRef:
    """Decided shards (their marks redone from their batch's clusters if their files are gone) and
    the newly marked ones, in upstream order, under the planned stage `key`, with a manifest naming
    the batch's clusters (None when every shard was decided before)."""
    params, fresh, shards = stage.params(ctx.cfg), iter(marked.shards), []
    for i, shard in enumerate(upstream.shards):
        record = batch.decided.get(i)
        if record is None:
            shards.append(next(fresh))
            continue
        ref = ctx.map(
            stage.name,
            stage.version,
            stage.corpus.clusters.mark,
            params,
            replace(upstream, shards=(shard,)),
            salt=record.salt,
            shard_salts=[record.shard_salt],
            shard_args=lambda _, record=record: (ctx.store.url, record.signatures, record.clusters),
            reads=(),
        )
        shards.append(ref.shards[0])
    ref = StageRef(stage.name, key, tuple(shards), marked.computed)
    ctx.store.write_manifest(ref, stage.version, params, extra=clusters_extra(clusters_dir, marked.shards))
    return ref


def clusters_extra(clusters_dir: str, marked_shards: tuple) -> dict:
    """The manifest's pointer to the batch's clusters; None when no shard was marked in this batch."""
    return {"clusters": clusters_dir if marked_shards else None}


def shard_salts(ctx: RunContext, clusters: Clusters, signature_paths: list[str], clusters_dir: str) -> list[str]:
    """Per-shard salts for a corpus-wide stage's marks: the digest of the clusters touching each shard.

    A shard whose clusters did not change keeps its key when another shard joins the corpus, so a
    re-curation recomputes neither its marks nor any later stage of it. Kept beside the clusters.
    """
    path = f"{clusters_dir}/_shard_digests.json"
    saved = ctx.store.read_json(path) if ctx.store.fs.exists(path) else {}
    missing = [p for p in signature_paths if p not in saved]
    if missing:
        futures = ctx.client.map(
            clusters.digest, [ctx.store.url] * len(missing), missing, [clusters_dir] * len(missing), pure=False
        )
        saved |= dict(zip(missing, ctx.client.gather(futures)))
        ctx.store.write_json(path, saved)
    return [saved[p] for p in signature_paths]
