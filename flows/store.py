"""The artifact store: content-addressed stage outputs, written atomically, resumable per shard.

Layout under the store root (a local folder or any fsspec URL):

    <stage>/shards/<shard_key>/kept.parquet       a layer's kept rows and added columns, or a plain table
    <stage>/shards/<shard_key>/text.parquet       the texts the stage changed (flows/layers.py)
    <stage>/shards/<shard_key>/rejected.parquet   the rows that stop here, with `reason`
    <stage>/shards/<shard_key>/stats.json         written last: the shard is complete; names its view
    <stage>/<stage_key>/manifest.json             written last: the stage is complete

A document stage's shard is a layer over its input (flows/layers.py), read back as a view: text is
stored once per text version, never once per stage. A shard key hashes the stage, its code VERSION,
its canonical parameters and the key of the input shard, so a new input shard is the only map work
in a re-curation, and a changed parameter reruns that stage and everything downstream (their input
keys change). No Prefect import here: the flow layer adds run history on top.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import fsspec
import fsspec.implementations.local
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, as_completed
from pydantic import BaseModel

from flows.layers import KEPT_FILE, REJECTED_FILE, ROW, View, base_layer, stage_layer
from tasks.contract import StageOutput, reason_counts
from tasks.errors import ConfigError, StoreError

PARQUET_COMPRESSION = "zstd"
LAYOUT = "layers-1"  # in every key: shards of an earlier layout (full copies, no view) are never trusted


def digest(*parts: Any) -> str:
    """Stable hash of JSON-able parts (pydantic models by their canonical JSON)."""
    canonical = json.dumps(
        [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def tables_digest(tables: dict[str, pa.Table]) -> str:
    """Stable hash of named Arrow tables, schema and values (their IPC stream, one chunk a column)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, tables[name].schema) as writer:
            writer.write_table(tables[name].combine_chunks())
        h.update(name.encode())
        h.update(sink.getvalue())
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class InputFile:
    """One input file: the source of one shard of the `read` stage."""

    path: str
    relpath: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.relpath.replace("/", "__")

    @property
    def key(self) -> str:
        return digest("input", self.relpath, self.fingerprint)


@dataclass(frozen=True)
class ShardRef:
    name: str  # stable across runs and stages: derived from the input file
    key: str


@dataclass(frozen=True)
class StageRef:
    stage: str
    key: str
    shards: tuple[ShardRef, ...]
    computed: tuple[str, ...] = field(default=(), compare=False)  # shard names this call computed


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


class Folder:
    """A local folder or fsspec URL whose files are written atomically: the store, an output.

    On an object store (s3://, gs://, ...) there is no rename, but one object written by one PUT
    appears whole or not at all; completeness is a marker object written last (stats.json,
    manifest.json, _SUCCESS, latest.json). Listings are not cached there: other processes (Dask
    workers, other runs) add objects, and fsspec's listing cache would hide them.
    """

    def __init__(self, url: str):
        self.url = url
        local = fsspec.core.split_protocol(url)[0] in (None, "file", "local")
        self.fs, self.root = fsspec.core.url_to_fs(url, **({} if local else {"use_listings_cache": False}))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)

    @property
    def conditional_writes(self) -> bool:
        """Whether a PUT can be made conditional on the object's ETag (S3's If-Match / If-None-Match)."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return "s3" in protocols

    def read_json(self, path: str) -> dict:
        return json.loads(self.fs.cat_file(path))  # one GET on an object store (open() asks HEAD first)

    def write_json(self, path: str, payload: dict) -> None:
        data = json.dumps(payload, indent=1, sort_keys=True).encode()
        self.write_atomic(path, lambda f: f.write(data))

    def write_atomic(self, path: str, write: Callable[[Any], object]) -> None:
        """Write a file so that a crash never leaves one a rerun trusts.

        Locally: to a temporary name, then one rename. On an object store: the bytes are built in
        memory and sent in one PUT (a multipart upload above 100 MiB, completed in one call), so a
        failed or killed write leaves no object and nothing to clean up; a rename there would be a
        copy plus a delete, twice the bytes and not atomic. A failed write (disk full, permission
        denied) removes its temporary file and raises a StoreError naming the file and the folder.
        """
        if not self.is_local:
            try:
                buffer = io.BytesIO()
                write(buffer)
                self.fs.pipe_file(path, buffer.getvalue())
            except OSError as exc:
                raise self._write_error(path, exc) from exc
            return
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(tmp, "wb") as f:
                write(f)
            self.fs.mv(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.fs.rm(tmp)
            raise self._write_error(path, exc) from exc

    def _write_error(self, path: str, exc: OSError) -> StoreError:
        return StoreError(
            f"{path}: cannot write artifact ({exc.strerror or exc}); free space or grant write access "
            f"on {self.url}, then rerun (finished shards are kept)"
        )


class ArtifactStore(Folder):

    # paths -------------------------------------------------------------------------------------
    @staticmethod
    def layer_dir(stage: str, shard_key: str) -> str:
        """A shard's folder relative to the store root, as views name their layers."""
        return f"{stage}/shards/{shard_key}"

    def shard_dir(self, stage: str, shard_key: str) -> str:
        return f"{self.root}/{self.layer_dir(stage, shard_key)}"

    def kept_path(self, stage: str, shard: ShardRef) -> str:
        return f"{self.shard_dir(stage, shard.key)}/{KEPT_FILE}"

    def stats_path(self, stage: str, shard: ShardRef) -> str:
        return f"{self.shard_dir(stage, shard.key)}/stats.json"

    def stage_dir(self, stage: str, stage_key: str) -> str:
        return f"{self.root}/{stage}/{stage_key}"

    def manifest_path(self, stage: str, stage_key: str) -> str:
        return f"{self.stage_dir(stage, stage_key)}/manifest.json"

    # keys --------------------------------------------------------------------------------------
    @staticmethod
    def stage_key(stage: str, version: int, params: BaseModel, input_keys: Sequence[str]) -> str:
        return digest("stage", LAYOUT, stage, version, params, sorted(input_keys))

    @staticmethod
    def shard_key(stage: str, version: int, params: BaseModel, input_key: str, salt: str = "") -> str:
        return digest("shard", LAYOUT, stage, version, params, input_key, salt)

    # reads -------------------------------------------------------------------------------------
    def read_table(self, path: str, columns: list[str] | None = None) -> pa.Table:
        """A Parquet artifact. On an object store it is fetched in one GET: a shard's files are small
        (a layer holds only what its stage wrote), and Parquet's ranged reads cost a HEAD and several
        GETs each."""
        try:
            if self.is_local:
                return pq.read_table(path, filesystem=self.fs, columns=columns)
            return pq.read_table(pa.BufferReader(self.fs.cat_file(path)), columns=columns)
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"{path}: unreadable artifact ({exc}); delete it and rerun") from exc

    def manifest(self, stage: str, stage_key: str) -> dict | None:
        """The stage's manifest if it is complete and every shard it lists is still there."""
        path = self.manifest_path(stage, stage_key)
        if not self.fs.exists(path):
            return None
        manifest = self.read_json(path)
        shards = [ShardRef(s["name"], s["key"]) for s in manifest["shards"]]
        return manifest if all(self.shard_complete(stage, s) for s in shards) else None

    def shard_complete(self, stage: str, shard: ShardRef) -> bool:
        return self.fs.exists(self.stats_path(stage, shard)) and self.fs.exists(self.kept_path(stage, shard))

    def shard_stats(self, stage: str, shard: ShardRef) -> dict:
        return self.read_json(self.stats_path(stage, shard))

    def file_complete(self, stage: str, shard: ShardRef) -> bool:
        """An input file's shard (its part 0) and every other part it names are complete."""
        if not self.shard_complete(stage, shard):
            return False
        parts = self.shard_stats(stage, shard)["parts"][1:]
        return all(self.shard_complete(stage, ShardRef(part["name"], part["key"])) for part in parts)

    def view(self, stage: str, shard: ShardRef) -> View:
        stats = self.shard_stats(stage, shard)
        if "view" not in stats:
            raise StoreError(f"stage {stage!r} writes a plain table, not documents: read {self.kept_path(stage, shard)}")
        return View.from_json(stats["view"])

    def read_view(self, stage: str, shard: ShardRef, columns: list[str] | None = None) -> pa.Table:
        """The documents of a shard after `stage` (default: every column; names it lacks skipped)."""
        return self.view(stage, shard).read(self, columns).drop_columns([ROW])

    def read_rejected(self, stage: str, shard: ShardRef, columns: list[str] | None = None) -> pa.Table | None:
        """The documents `stage` rejected in a shard, as its input saw them, with `reason` and the
        stage's columns; for `read`, the quarantined records. None when it rejected nothing."""
        view = self.view(stage, shard)
        if len(view.layers) > 1:
            rejected = view.rejected(self, columns)
            return None if rejected is None else rejected.drop_columns([ROW])
        path = f"{self.shard_dir(stage, shard.key)}/{REJECTED_FILE}"
        if not self.fs.exists(path):
            return None
        table = self.read_table(path)
        return table if columns is None else table.select([c for c in table.column_names if c in columns])

    # writes ------------------------------------------------------------------------------------
    def write_table(self, path: str, table: pa.Table) -> None:
        self.write_atomic(path, lambda f: pq.write_table(table, f, compression=PARQUET_COMPRESSION))

    def publish_dir(self, tmp: str, final: str) -> None:
        """Move a finished directory to `final`, then mark it complete with `final/_SUCCESS`.

        Locally the move is one rename, which refuses a non-empty target, so whatever lies at `final`
        arrived whole: when another run (or an interrupted one, before its mark) got there first, its
        result (the same, by the key) is kept and ours dropped. fsspec's `mv` would instead nest ours
        inside it, and readers of `final` would see every row twice.

        An object store has no rename: a marked `final` is kept and ours dropped; otherwise each
        object is copied server-side (no bytes through this process) over whatever an interrupted
        run left, `_SUCCESS` is written, and the temporary copy deleted. Object names and contents
        follow from the key, so a leftover or a concurrent run's copy is overwritten by identical
        objects, each replaced whole, and nothing is deleted under a run still writing.
        """
        if self.is_local:
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                self.fs.rm(tmp, recursive=True)
            self.fs.touch(f"{final}/_SUCCESS")
            return
        if not self.fs.exists(f"{final}/_SUCCESS"):
            source = self.fs._strip_protocol(tmp).rstrip("/")
            target = self.fs._strip_protocol(final).rstrip("/")
            objects = self.fs.find(source)
            self.fs.copy(objects, [f"{target}{path[len(source):]}" for path in objects])
            self.fs.touch(f"{final}/_SUCCESS")
        self.fs.rm(tmp, recursive=True)

    # the map -----------------------------------------------------------------------------------
    def plan(
        self, stage: str, version: int, params: BaseModel, sources: Sequence[ShardRef | InputFile], salt: str = "",
        shard_salts: Sequence[str] | None = None,
    ) -> StageRef:
        """Output refs of a map stage over `sources` (input files or upstream shards), without running it."""
        shards = tuple(
            ShardRef(src.name, self.shard_key(stage, version, params, src.key, shard_salt))
            for src, shard_salt in zip(sources, shard_salts or [salt] * len(sources), strict=True)
        )
        return StageRef(stage, self.stage_key(stage, version, params, [s.key for s in sources] + [salt]), shards)

    def map_shards(
        self,
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
        retries: int = 0,
        on_progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> StageRef:
        """Run `fn` over every unfinished shard on Dask; return at once when the stage is complete.

        `connect` returns the Dask client; it is called only when a shard needs computing. `reads`
        names the upstream view's columns `fn` reads (None: all).

        With `key_params`, shards are keyed by those params and by a digest of what each holds, not
        by `params` (which still key the stage): every shard is computed when the stage is not
        complete, but one whose output is unchanged keeps its key and is not written again, and the
        stages after it find their work under the same input key. For a cheap stage whose params
        change often and change few shards' output (clean's decision, under new thresholds).

        Every shard is attempted even when one fails, so a rerun resumes from all that finished;
        the first error is raised afterwards with the stage and shard in its notes.
        """
        ref = self.plan(stage, version, params, sources, salt, shard_salts)
        manifest = self.manifest(stage, ref.key)
        if manifest is not None:
            on_progress(len(ref.shards), len(ref.shards))
            return StageRef(ref.stage, ref.key, tuple(ShardRef(s["name"], s["key"]) for s in manifest["shards"]))
        if key_params is not None and upstream_stage is None:
            raise ValueError(f"stage {stage!r}: output-keyed shards need an upstream stage, not input files")
        salts = shard_salts or [salt] * len(sources)
        jobs = [
            ShardJob(
                self.url, stage, shard,
                src if isinstance(src, InputFile) else self.shard_dir(upstream_stage, src.key),
                fn, params, shard_args(i), reads,
                None if key_params is None else self.shard_key(stage, version, key_params, src.key, salts[i]),
            )
            for i, (shard, src) in enumerate(zip(ref.shards, sources))
            if key_params is not None
            or not (self.file_complete if upstream_stage is None else self.shard_complete)(stage, shard)
        ]
        errors, results = run_jobs(
            connect() if jobs else None, jobs, f"{stage}-{ref.key[:8]}", retries, on_progress, len(ref.shards)
        )
        if errors:
            raise errors[0]
        if key_params is not None:
            ref = replace(ref, shards=tuple(ShardRef(s.name, results[s.name]["key"]) for s in ref.shards))
        computed = {name for name, result in results.items() if not result.get("reused")}
        if upstream_stage is None:  # an input file's shard is the first of its parts
            parts = [(s, [ShardRef(**part) for part in self.shard_stats(stage, s)["parts"]]) for s in ref.shards]
            computed = {part.name for s, group in parts if s.name in computed for part in group}
            ref = StageRef(ref.stage, ref.key, tuple(part for _, group in parts for part in group))
        self.write_manifest(ref, version, params)
        return StageRef(ref.stage, ref.key, ref.shards, tuple(s.name for s in ref.shards if s.name in computed))

    def write_manifest(self, ref: StageRef, version: int, params: BaseModel, extra: dict | None = None) -> dict:
        totals = Counter()
        drops = Counter()
        for shard in ref.shards:
            stats = self.shard_stats(ref.stage, shard)
            totals.update({k: stats[k] for k in ("rows_in", "rows_kept", "text_bytes_in", "seconds")})
            drops.update(stats["drops"])
        manifest = {
            "stage": ref.stage,
            "key": ref.key,
            "version": version,
            "params": params.model_dump(mode="json"),
            "shards": [{"name": s.name, "key": s.key} for s in ref.shards],
            "rows_in": totals["rows_in"],
            "rows_kept": totals["rows_kept"],
            "drops": dict(sorted(drops.items())),
            "text_bytes_in": totals["text_bytes_in"],
            "shard_seconds": round(totals["seconds"], 3),
            "completed_at": time.time(),
            **(extra or {}),
        }
        self.write_json(self.manifest_path(ref.stage, ref.key), manifest)
        return manifest


def run_jobs(
    client, jobs: list[ShardJob], prefix: str, retries: int, on_progress, total: int
) -> tuple[list[Exception], dict[str, dict]]:
    """Submit shard jobs, wait for all; return the errors (each annotated with stage and shard) and
    each finished shard's stats by name (`reused`: found complete on the worker, not redone)."""
    done = total - len(jobs)
    on_progress(done, total)
    if not jobs:
        return [], {}
    # A fresh suffix per call: Dask would hand back a finished task's result for a reused key
    # instead of recomputing a shard whose files were deleted since.
    attempt = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_shard, job, key=f"{prefix}-{job.shard.name}-{attempt}", retries=retries): job
        for job in jobs
    }
    errors, results = [], {}
    for future in as_completed(futures, loop=client.loop):
        job = futures[future]
        if future.status == "error":
            exc = future.exception()
            exc.add_note(f"winnow: stage {job.stage!r}, shard {job.shard.name!r} ({job.source})")
            errors.append(exc)
        else:
            results[job.shard.name] = future.result()
        done += 1
        on_progress(done, total)
    return errors, results


def run_shard(job: ShardJob) -> dict:
    """The unit of work on a Dask worker: read, transform, write atomically, record stats last.

    A document stage reads the columns it names of its input view and writes a layer (flows/layers.py);
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
    start = time.perf_counter()
    output = job.fn(table, job.params, *job.args)
    seconds = time.perf_counter() - start
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
    return write_shard(store, job.stage, shard, files, view, {
        "rows_in": table.num_rows, "rows_kept": kept.num_rows, "text_bytes_in": text_bytes(table),
        "drops": reason_counts(rejected) if rejected is not None else {}, "seconds": seconds,
    }) | {"key": shard.key}


def read_input(store: ArtifactStore, job: ShardJob) -> dict:
    """The first stage: an input file streamed as bounded parts (`tasks.read.read_parts`), each a shard.

    Part 0 is the file's own shard; its stats, naming every part, are written last, so a file is
    complete only when all its parts are, and a killed read redoes the file.
    """
    if store.file_complete(job.stage, job.shard):
        return store.shard_stats(job.stage, job.shard) | {"reused": True}
    parts, start = [], time.perf_counter()
    for k, (docs, quarantined) in enumerate(job.fn(job.source.path, job.source.relpath, job.params, *job.args)):
        part = job.shard if k == 0 else ShardRef(f"{job.shard.name}@{k}", digest("part", job.shard.key, k))
        view, files = base_layer(docs, store.layer_dir(job.stage, part.key))
        if quarantined.num_rows:
            files[REJECTED_FILE] = quarantined
        stats = {
            "rows_in": docs.num_rows + quarantined.num_rows, "rows_kept": docs.num_rows,
            "text_bytes_in": text_bytes(docs), "drops": reason_counts(quarantined),
            "seconds": time.perf_counter() - start,
        }
        if k == 0:
            write_shard(store, job.stage, part, files)
            first = view, stats
        else:
            write_shard(store, job.stage, part, files, view, stats)
        parts.append({"name": part.name, "key": part.key})
        start = time.perf_counter()
    view, stats = first
    return write_shard(store, job.stage, job.shard, {}, view, stats | {"parts": parts})


def write_shard(
    store: ArtifactStore, stage: str, shard: ShardRef, files: dict[str, pa.Table], view: View | None = None,
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
