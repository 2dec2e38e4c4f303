"""The executor: maps a stage's shard function over its shards on Dask, and what runs on a worker.

`map_shards` plans the shards' keys (`ArtifactStore.plan`), returns at once when the stage's manifest
says it is complete, else submits every unfinished shard as a plain function (`run_shard`, never a
Prefect task) and writes the manifest last. `run_shard` reads a shard's input view, calls the stage's
pure function, writes its files atomically and its stats last (`flows/engine/layers.py`).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from distributed import Client, as_completed
from pydantic import BaseModel

from flows.engine.layers import (
    KEPT_FILE,
    REJECTED_FILE,
    ROW,
    View,
    base_layer,
    stage_layer,
)
from flows.engine.progress import RunProgress
from flows.engine.store import (
    ArtifactStore,
    InputFile,
    ShardRef,
    StageRef,
    digest,
    tables_digest,
)
from tasks.contract import StageOutput, reason_counts
from tasks.errors import ConfigError


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs for one shard; plain data, pickled to the worker."""

    store_url: str
    stage: str
    shard: ShardRef
    source: InputFile | str  # an input file, or the upstream shard's folder
    fn: Callable[..., StageOutput | pa.Table]
    params: BaseModel
    args: tuple = ()
    reads: tuple[str, ...] | None = None  # the upstream view's columns the stage reads (None: all)
    # set: the shard is stored under digest(this, what it holds), not under `shard.key` (`map_shards`)
    output_keyed: str | None = None
    split: bool = False  # `fn` runs on the shard's row blocks (`row_blocks`), as tasks of their own
    numbered: bool = False  # with `split`: `fn` also takes `first_row`, its block's first row in the shard


# Text per row block of a phase that splits its shards (`Phase.split`): blocks of whole rows, a new one
# starting where the text before a row reaches a multiple of this. From the data alone, never the
# cluster, so a shard always gives the same blocks and the same output; small enough that one input
# file's part (8 MiB) spreads over every worker when it is all there is to do.
SPLIT_TEXT_BYTES = 512 * 1024


def map_shards(
    store: ArtifactStore,
    stage: str,
    version: int,
    fn: Callable[..., StageOutput | pa.Table],
    params: BaseModel,
    sources: Sequence[ShardRef | InputFile],
    upstream_stage: str | None,
    connect: Callable[[], Client],
    *,
    salt: str = "",
    shard_salts: Sequence[str] | None = None,
    shard_args: Callable[[int], tuple] = lambda i: (),
    reads: tuple[str, ...] | None = None,
    key_params: BaseModel | None = None,
    split: bool = False,
    numbered: bool = False,
    retries: int = 0,
    progress: RunProgress | None = None,
    manifest_extra: dict | None = None,
) -> StageRef:
    """Run `fn` over every unfinished shard on Dask; return at once when the stage is complete.

    `connect` returns the Dask client; it is called only when a shard needs computing. `reads`
    names the upstream view's columns `fn` reads (None: all). With `split`, `fn` runs on each shard's
    row blocks as tasks of their own (`call_in_blocks`): a row-local stage whose cost is per document;
    `numbered` passes each block's first row to a `fn` that numbers rows by their place in the shard.

    With `key_params`, shards are keyed by those params and by a digest of what each holds, not
    by `params` (which still key the stage): every shard is computed when the stage is not
    complete, but one whose output is unchanged keeps its key and is not written again, and the
    stages after it find their work under the same input key. For a cheap stage whose params
    change often and change few shards' output (clean's decision, under new thresholds).

    Every shard is attempted even when one fails, so a rerun resumes from all that finished;
    the first error is raised afterwards with the stage and shard in its notes.

    `manifest_extra` goes into the manifest with the rest: a stage that writes its manifest again
    under the same key afterwards (`corpus._merge`) never shows a reader one without it.
    """
    progress = progress or RunProgress()
    ref = store.plan(stage, version, params, sources, salt, shard_salts)
    manifest = store.manifest(stage, ref.key)
    if manifest is not None:
        progress.phase_started(ref, todo=0)
        progress.phase_finished(stage)
        return StageRef(ref.stage, ref.key, tuple(ShardRef(s["name"], s["key"]) for s in manifest["shards"]))
    if key_params is not None and upstream_stage is None:
        raise ValueError(f"stage {stage!r}: output-keyed shards need an upstream stage, not input files")
    salts = shard_salts or [salt] * len(sources)
    jobs = [
        ShardJob(
            store.url,
            stage,
            shard,
            src if isinstance(src, InputFile) else store.shard_dir(upstream_stage, src.key),
            fn,
            params,
            shard_args(i),
            reads,
            None if key_params is None else store.shard_key(stage, version, key_params, src.key, salts[i]),
            split,
            numbered,
        )
        for i, (shard, src) in enumerate(zip(ref.shards, sources))
        if key_params is not None
        or not (store.file_complete if upstream_stage is None else store.shard_complete)(stage, shard)
    ]
    reuse = "files" if upstream_stage is None else "none" if key_params is not None else "shards"
    progress.phase_started(ref, todo=len(jobs), reuse=reuse)
    errors, results = run_jobs(connect() if jobs else None, jobs, f"{stage}-{ref.key[:8]}", retries, progress)
    progress.phase_finished(stage)
    if errors:
        raise errors[0]
    if key_params is not None:
        ref = replace(ref, shards=tuple(ShardRef(s.name, results[s.name]["key"]) for s in ref.shards))
    computed = {name for name, result in results.items() if not result.get("reused")}
    if upstream_stage is None:  # an input file's shard is the first of its parts
        parts = [(s, [ShardRef(**part) for part in store.shard_stats(stage, s)["parts"]]) for s in ref.shards]
        computed = {part.name for s, group in parts if s.name in computed for part in group}
        ref = StageRef(ref.stage, ref.key, tuple(part for _, group in parts for part in group))
    store.write_manifest(ref, version, params, extra=manifest_extra)
    return StageRef(ref.stage, ref.key, ref.shards, tuple(s.name for s in ref.shards if s.name in computed))


def run_jobs(
    client, jobs: list[ShardJob], prefix: str, retries: int, progress: RunProgress
) -> tuple[list[Exception], dict[str, dict]]:
    """Submit shard jobs, wait for all; return the errors (each annotated with stage and shard) and
    each finished shard's stats by name (`reused`: found complete on the worker, not redone), which
    `progress` gets as each shard ends."""
    if not jobs:
        return [], {}
    # A fresh suffix per call: Dask would hand back a finished task's result for a reused key
    # instead of recomputing a shard whose files were deleted since.
    attempt = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_shard, job, key=f"{prefix}-{job.shard.name}-{attempt}", retries=retries): job for job in jobs
    }
    errors, results = [], {}
    for future in as_completed(futures, loop=client.loop):
        job = futures[future]
        if future.status == "error":
            exc = future.exception()
            exc.add_note(f"winnow: stage {job.stage!r}, shard {job.shard.name!r} ({job.source})")
            errors.append(exc)
            progress.shard_finished(job.stage, None)
        else:
            results[job.shard.name] = future.result()
            progress.shard_finished(job.stage, results[job.shard.name])
    return errors, results


def run_shard(job: ShardJob) -> dict:
    """The unit of work on a Dask worker: read, transform, write atomically, record stats last.

    A document stage reads the columns it names of its input view and writes a layer (flows/engine/layers.py);
    a stage that returns another table (signatures, bands) writes it whole. `seconds` times the stage
    function alone, so bench/ can tell stage work from orchestration. A shard that another run on the
    same store finished since this one planned is not redone.
    """
    store = ArtifactStore(job.store_url)
    if isinstance(job.source, InputFile):
        return read_input(store, job)
    if job.output_keyed is None and store.shard_complete(job.stage, job.shard):
        return store.shard_stats(job.stage, job.shard) | {"reused": True}
    upstream_stats = store.read_json(f"{job.source}/stats.json")
    upstream = View.from_json(upstream_stats["view"]) if "view" in upstream_stats else None
    if upstream is None:
        table = store.read_table(f"{job.source}/{KEPT_FILE}")
    else:
        missing = [c for c in job.reads or () if c not in upstream.columns]
        if missing:
            raise ConfigError(
                f"stage {job.stage!r} reads {', '.join(map(repr, missing))}, which the documents do not have "
                f"(columns: {', '.join(upstream.columns)}); check its config"
            )
        table = upstream.read(store, job.reads)
    output, seconds = call_in_blocks(job, table) if job.split else timed_call(table, job.fn, job.params, job.args)
    kept, rejected = (output, None) if isinstance(output, pa.Table) else output
    shard = job.shard
    if job.output_keyed is not None:
        output_tables = {"kept": kept} | ({} if rejected is None else {"rejected": rejected})
        shard = ShardRef(shard.name, digest("output", job.output_keyed, tables_digest(output_tables)))
        if store.shard_complete(job.stage, shard):
            return store.shard_stats(job.stage, shard) | {"reused": True, "key": shard.key}
    layer_dir = store.layer_dir(job.stage, shard.key)
    if upstream is None or (rejected is None and ROW not in kept.column_names):  # not documents
        view, files = None, {KEPT_FILE: kept}
    else:
        view, files = stage_layer(job.stage, upstream, table, StageOutput(kept, rejected), layer_dir)
    return write_shard(
        store,
        job.stage,
        shard,
        files,
        view,
        {
            "rows_in": table.num_rows,
            "rows_kept": kept.num_rows,
            "text_bytes_in": text_bytes(table),
            "drops": reason_counts(rejected) if rejected is not None else {},
            "seconds": seconds,
        },
    ) | {"key": shard.key}


def timed_call(
    table: pa.Table, fn: Callable, params: BaseModel, args: tuple, kwargs: dict | None = None
) -> tuple[StageOutput | pa.Table, float]:
    """`fn` on `table`, and the seconds it took: stage work, told apart from orchestration in bench/."""
    start = time.perf_counter()
    output = fn(table, params, *args, **(kwargs or {}))
    return output, time.perf_counter() - start


def row_blocks(table: pa.Table, limit: int = SPLIT_TEXT_BYTES) -> list[pa.Table]:
    """`table` cut into runs of whole rows: a row starts block k when the text before it is at least k
    `limit`s (a row longer than `limit` is a block of its own, never cut)."""
    if table.num_rows == 0 or "text" not in table.column_names:
        return [table]
    sizes = pc.fill_null(pc.binary_length(table.column("text")), 0).to_numpy().astype(np.int64)
    block = (np.cumsum(sizes) - sizes) // limit
    starts = [0, *(np.flatnonzero(np.diff(block)) + 1).tolist(), table.num_rows]
    return [table.slice(a, b - a) for a, b in zip(starts, starts[1:])]


def spread(fn: Callable, inputs: Sequence, name: str, /, **kwargs) -> list:
    """`fn(x, **kwargs)` for each of `inputs`, results in order (`kwargs` may hold `fn` or `name`: the
    first three are positional-only).

    On a Dask worker each call is a task of its own, so idle workers take some while the calling task
    waits without holding its thread (`secede`). Elsewhere (a test, a bench, a client of this process,
    which is no place to wait) they run here. Either way the same calls, the same results.
    """
    from distributed import get_client, get_worker, rejoin, secede

    try:
        get_worker()
    except ValueError:
        return [fn(x, **kwargs) for x in inputs]
    client, tag = get_client(), uuid.uuid4().hex[:8]
    futures = client.map(fn, inputs, key=[f"{name}-{i}-{tag}" for i in range(len(inputs))], **kwargs)
    secede()
    try:
        return client.gather(futures)
    finally:
        rejoin()


def timed_block(block: tuple[pa.Table, dict | None], fn: Callable, params: BaseModel, args: tuple):
    return timed_call(block[0], fn, params, args, block[1])


def call_in_blocks(job: ShardJob, table: pa.Table) -> tuple[StageOutput | pa.Table, float]:
    """`job.fn` on each of the shard's row blocks (`spread` over the workers), outputs concatenated in
    row order, seconds summed: one large shard no longer keeps every other worker idle."""
    blocks = row_blocks(table)
    firsts = accumulate((block.num_rows for block in blocks[:-1]), initial=0)
    kwargs = [{"first_row": first} if job.numbered else None for first in firsts]
    if len(blocks) == 1:
        return timed_call(table, job.fn, job.params, job.args, kwargs[0])
    name = f"{job.stage}-block-{job.shard.name}"
    done = spread(timed_block, list(zip(blocks, kwargs)), name, fn=job.fn, params=job.params, args=job.args)
    outputs, seconds = [output for output, _ in done], sum(s for _, s in done)
    if isinstance(outputs[0], pa.Table):
        return pa.concat_tables(outputs, promote_options="permissive"), seconds
    kept = pa.concat_tables([o.kept for o in outputs], promote_options="permissive")
    rejected = [o.rejected for o in outputs if o.rejected is not None]
    return StageOutput(kept, pa.concat_tables(rejected, promote_options="permissive") if rejected else None), seconds


def read_input(store: ArtifactStore, job: ShardJob) -> dict:
    """The first stage: an input file streamed as bounded parts (`tasks.read.read_parts`), each a shard.

    Part 0 is the file's own shard; its stats, naming every part, are written last, so a file is
    complete only when all its parts are, and a killed read redoes the file.
    """
    if store.file_complete(job.stage, job.shard):
        return store.shard_stats(job.stage, job.shard) | {"reused": True}
    parts, start, file_totals, file_drops = [], time.perf_counter(), Counter(), Counter()
    for k, (docs, quarantined) in enumerate(job.fn(job.source.path, job.source.relpath, job.params, *job.args)):
        part = job.shard if k == 0 else ShardRef(f"{job.shard.name}@{k}", digest("part", job.shard.key, k))
        view, files = base_layer(docs, store.layer_dir(job.stage, part.key))
        if quarantined.num_rows:
            files[REJECTED_FILE] = quarantined
        stats = {
            "rows_in": docs.num_rows + quarantined.num_rows,
            "rows_kept": docs.num_rows,
            "text_bytes_in": text_bytes(docs),
            "drops": reason_counts(quarantined),
            "seconds": time.perf_counter() - start,
        }
        file_totals.update({name: stats[name] for name in ("rows_in", "rows_kept", "text_bytes_in")})
        file_drops.update(stats["drops"])
        if k == 0:
            write_shard(store, job.stage, part, files)
            first = view, stats
        else:
            write_shard(store, job.stage, part, files, view, stats)
        parts.append({"name": part.name, "key": part.key})
        start = time.perf_counter()
    view, stats = first
    # `file`: the whole file's counts, for progress (the stats are part 0's, as every part's are its own)
    totals = dict(file_totals) | {"drops": dict(file_drops)}
    return write_shard(store, job.stage, job.shard, {}, view, stats | {"parts": parts}) | {"file": totals}


def write_shard(
    store: ArtifactStore,
    stage: str,
    shard: ShardRef,
    files: dict[str, pa.Table],
    view: View | None = None,
    stats: dict | None = None,
) -> dict | None:
    """A shard's files, then (when given) its stats, naming its view if it holds documents: last."""
    for name, table in files.items():
        store.write_table(f"{store.shard_dir(stage, shard.key)}/{name}", table)
    if stats is None:
        return None
    stats = {"shard": shard.name, **stats} | ({"view": view.to_json()} if view is not None else {})
    store.write_json(store.stats_path(stage, shard), stats)
    return stats


def text_bytes(table: pa.Table) -> int:
    if "text" not in table.column_names or table.num_rows == 0:
        return 0
    return pc.sum(pc.binary_length(table.column("text"))).as_py() or 0
