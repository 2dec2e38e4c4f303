"""The artifact store: content-addressed stage outputs, written atomically, resumable per shard.

Layout under the store root (a local folder or any fsspec URL):

    <stage>/shards/<shard_key>/kept.parquet       documents that go on
    <stage>/shards/<shard_key>/rejected.parquet   documents that stop here, with `reason`
    <stage>/shards/<shard_key>/stats.json         written last: the shard is complete
    <stage>/<stage_key>/manifest.json             written last: the stage is complete

A shard key hashes the stage, its code VERSION, its canonical parameters and the key of the input
shard, so a new input shard is the only map work in a re-curation, and a changed parameter reruns
that stage and everything downstream (their input keys change). No Prefect import here: the flow
layer adds run history on top.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import fsspec.implementations.local
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, as_completed
from pydantic import BaseModel

from tasks.contract import StageOutput, reason_counts
from tasks.errors import StoreError

PARQUET_COMPRESSION = "zstd"


def digest(*parts: Any) -> str:
    """Stable hash of JSON-able parts (pydantic models by their canonical JSON)."""
    canonical = json.dumps(
        [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


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
    source: InputFile | str  # an input file, or the path of the upstream shard's kept.parquet
    fn: Callable[..., StageOutput | pa.Table]
    params: BaseModel
    args: tuple = ()


class Folder:
    """A local folder or fsspec URL whose files are written atomically: the store, an output."""

    def __init__(self, url: str):
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)

    def read_json(self, path: str) -> dict:
        with self.fs.open(path, "rb") as f:
            return json.loads(f.read())

    def write_json(self, path: str, payload: dict) -> None:
        data = json.dumps(payload, indent=1, sort_keys=True).encode()
        self.write_atomic(path, lambda f: f.write(data))

    def write_atomic(self, path: str, write: Callable[[Any], object]) -> None:
        """Write to a temporary name and rename, so a crash never leaves a file a rerun trusts.

        A failed write (disk full, permission denied) removes its temporary file and raises a
        StoreError naming the file and the folder.
        """
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(tmp, "wb") as f:
                write(f)
            self.fs.mv(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.fs.rm(tmp)
            raise StoreError(
                f"{path}: cannot write artifact ({exc.strerror or exc}); free space or grant write access "
                f"on {self.url}, then rerun (finished shards are kept)"
            ) from exc


class ArtifactStore(Folder):

    # paths -------------------------------------------------------------------------------------
    def shard_dir(self, stage: str, shard_key: str) -> str:
        return f"{self.root}/{stage}/shards/{shard_key}"

    def kept_path(self, stage: str, shard: ShardRef) -> str:
        return f"{self.shard_dir(stage, shard.key)}/kept.parquet"

    def rejected_path(self, stage: str, shard: ShardRef) -> str:
        return f"{self.shard_dir(stage, shard.key)}/rejected.parquet"

    def stats_path(self, stage: str, shard: ShardRef) -> str:
        return f"{self.shard_dir(stage, shard.key)}/stats.json"

    def stage_dir(self, stage: str, stage_key: str) -> str:
        return f"{self.root}/{stage}/{stage_key}"

    def manifest_path(self, stage: str, stage_key: str) -> str:
        return f"{self.stage_dir(stage, stage_key)}/manifest.json"

    # keys --------------------------------------------------------------------------------------
    @staticmethod
    def stage_key(stage: str, version: int, params: BaseModel, input_keys: Sequence[str]) -> str:
        return digest("stage", stage, version, params, sorted(input_keys))

    @staticmethod
    def shard_key(stage: str, version: int, params: BaseModel, input_key: str, salt: str = "") -> str:
        return digest("shard", stage, version, params, input_key, salt)

    # reads -------------------------------------------------------------------------------------
    def read_table(self, path: str, columns: list[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(path, filesystem=self.fs, columns=columns)
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

    # writes ------------------------------------------------------------------------------------
    def write_table(self, path: str, table: pa.Table) -> None:
        self.write_atomic(path, lambda f: pq.write_table(table, f, compression=PARQUET_COMPRESSION))

    def publish_dir(self, tmp: str, final: str) -> None:
        """Move a finished directory to `final`, then mark it complete with `final/_SUCCESS`.

        Locally the move is one rename, which refuses a non-empty target, so whatever lies at `final`
        arrived whole: when another run (or an interrupted one, before its mark) got there first, its
        result (the same, by the key) is kept and ours dropped. fsspec's `mv` would instead nest ours
        inside it, and readers of `final` would see every row twice. On object stores a move copies
        file by file, so an unmarked leftover may be partial: it is replaced.
        """
        if self.is_local:
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                self.fs.rm(tmp, recursive=True)
        else:
            if self.fs.exists(final) and not self.fs.exists(f"{final}/_SUCCESS"):
                self.fs.rm(final, recursive=True)
            self.fs.mv(tmp, final, recursive=True)
        self.fs.touch(f"{final}/_SUCCESS")

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
        retries: int = 0,
        on_progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> StageRef:
        """Run `fn` over every unfinished shard on Dask; return at once when the stage is complete.

        `connect` returns the Dask client; it is called only when a shard needs computing.

        Every shard is attempted even when one fails, so a rerun resumes from all that finished;
        the first error is raised afterwards with the stage and shard in its notes.
        """
        ref = self.plan(stage, version, params, sources, salt, shard_salts)
        if self.manifest(stage, ref.key) is not None:
            on_progress(len(ref.shards), len(ref.shards))
            return ref
        jobs = [
            ShardJob(
                self.url, stage, shard,
                src if isinstance(src, InputFile) else self.kept_path(upstream_stage, src),
                fn, params, shard_args(i),
            )
            for i, (shard, src) in enumerate(zip(ref.shards, sources))
            if not self.shard_complete(stage, shard)
        ]
        errors, reused = run_jobs(
            connect() if jobs else None, jobs, f"{stage}-{ref.key[:8]}", retries, on_progress, len(ref.shards)
        )
        if errors:
            raise errors[0]
        self.write_manifest(ref, version, params)
        return StageRef(ref.stage, ref.key, ref.shards, tuple(j.shard.name for j in jobs if j.shard.name not in reused))

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
) -> tuple[list[Exception], set[str]]:
    """Submit shard jobs, wait for all; return the errors (each annotated with stage and shard) and
    the names of shards another run finished meanwhile (found complete on the worker, not redone)."""
    done = total - len(jobs)
    on_progress(done, total)
    if not jobs:
        return [], set()
    # A fresh suffix per call: Dask would hand back a finished task's result for a reused key
    # instead of recomputing a shard whose files were deleted since.
    attempt = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_shard, job, key=f"{prefix}-{job.shard.name}-{attempt}", retries=retries): job
        for job in jobs
    }
    errors, reused = [], set()
    for future in as_completed(futures, loop=client.loop):
        job = futures[future]
        if future.status == "error":
            exc = future.exception()
            exc.add_note(f"winnow: stage {job.stage!r}, shard {job.shard.name!r} ({job.source})")
            errors.append(exc)
        elif future.result().get("reused"):
            reused.add(job.shard.name)
        done += 1
        on_progress(done, total)
    return errors, reused


def run_shard(job: ShardJob) -> dict:
    """The unit of work on a Dask worker: read, transform, write atomically, record stats last.

    `seconds` times the stage function alone, so bench/ can tell stage work from orchestration.
    A shard that another run on the same store finished since this one planned is not redone.
    """
    store = ArtifactStore(job.store_url)
    if store.shard_complete(job.stage, job.shard):
        return store.shard_stats(job.stage, job.shard) | {"reused": True}
    if isinstance(job.source, InputFile):
        start = time.perf_counter()
        kept, rejected = job.fn(job.source.path, job.source.relpath, job.params, *job.args)
        seconds = time.perf_counter() - start
        rows_in, text_bytes_in = kept.num_rows + rejected.num_rows, None
    else:
        table = store.read_table(job.source)
        start = time.perf_counter()
        output = job.fn(table, job.params, *job.args)
        seconds = time.perf_counter() - start
        kept, rejected = (output, None) if isinstance(output, pa.Table) else output
        rows_in, text_bytes_in = table.num_rows, text_bytes(table)
    store.write_table(store.kept_path(job.stage, job.shard), kept)
    if rejected is not None:
        store.write_table(store.rejected_path(job.stage, job.shard), rejected)
    stats = {
        "shard": job.shard.name,
        "rows_in": rows_in,
        "rows_kept": kept.num_rows,
        "text_bytes_in": text_bytes_in if text_bytes_in is not None else text_bytes(kept),
        "drops": reason_counts(rejected) if rejected is not None else {},
        "seconds": seconds,
    }
    store.write_json(store.stats_path(job.stage, job.shard), stats)
    return stats


def text_bytes(table: pa.Table) -> int:
    if "text" not in table.column_names or table.num_rows == 0:
        return 0
    return pc.sum(pc.binary_length(table.column("text"))).as_py() or 0
