"""The artifact store: content-addressed stage outputs, written atomically, resumable per shard.

Layout under the store root (a local folder or any fsspec URL):

    <stage>/shards/<shard_key>/kept.parquet       a layer's kept rows and added columns, or a plain table
    <stage>/shards/<shard_key>/text.parquet       the texts the stage changed (flows/engine/layers.py)
    <stage>/shards/<shard_key>/rejected.parquet   the rows that stop here, with `reason`
    <stage>/shards/<shard_key>/stats.json         written last: the shard is complete; names its view
    <stage>/<stage_key>/manifest.json             written last: the stage is complete

A document stage's shard is a layer over its input (flows/engine/layers.py), read back as a view: text is
stored once per text version, never once per stage. A shard key hashes the stage, its code VERSION,
its canonical parameters and the key of the input shard, so a new input shard is the only map work
in a re-curation, and a changed parameter reruns that stage and everything downstream (their input
keys change). The store keys, reads and writes; `flows/engine/executor.py` schedules the shards. No
Prefect import here: the flow layer adds run history on top.
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
from dataclasses import dataclass, field
from typing import Any

import fsspec
import fsspec.implementations.local
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from flows.engine.layers import KEPT_FILE, REJECTED_FILE, ROW, View
from tasks.errors import StoreError

PARQUET_COMPRESSION = "zstd"
# zstd's level 6 instead of Arrow's default 1, and no dictionary for `text` (every text is distinct, so
# a dictionary only costs time): docs/benchmarks.md, "Store size and worker memory"
PARQUET_COMPRESSION_LEVEL = 6
UNDICTIONARIED = frozenset({"text"})
LAYOUT = "layers-1"  # in every key: shards of an earlier layout (full copies, no view) are never trusted


def digest(*parts: Any) -> str:
    """Stable hash of JSON-able parts (pydantic models by their canonical JSON)."""
    canonical = json.dumps(
        [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def write_parquet(table: pa.Table, sink) -> None:
    """A table as Parquet, as Winnow writes every store artifact and published shard."""
    dictionary = [name for name in table.column_names if name not in UNDICTIONARIED]
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        compression_level=PARQUET_COMPRESSION_LEVEL,
        use_dictionary=dictionary,
    )


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

    def num_rows(self, path: str) -> int:
        """A Parquet artifact's row count, from its footer alone."""
        try:
            return pq.read_metadata(path, filesystem=self.fs).num_rows
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
            raise StoreError(
                f"stage {stage!r} writes a plain table, not documents: read {self.kept_path(stage, shard)}"
            )
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
        self.write_atomic(path, lambda f: write_parquet(table, f))

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
            self.fs.copy(objects, [f"{target}{path[len(source) :]}" for path in objects])
            self.fs.touch(f"{final}/_SUCCESS")
        self.fs.rm(tmp, recursive=True)

    # the map -----------------------------------------------------------------------------------
    def plan(
        self,
        stage: str,
        version: int,
        params: BaseModel,
        sources: Sequence[ShardRef | InputFile],
        salt: str = "",
        shard_salts: Sequence[str] | None = None,
    ) -> StageRef:
        """Output refs of a map stage over `sources` (input files or upstream shards), without running it."""
        shards = tuple(
            ShardRef(src.name, self.shard_key(stage, version, params, src.key, shard_salt))
            for src, shard_salt in zip(sources, shard_salts or [salt] * len(sources), strict=True)
        )
        return StageRef(stage, self.stage_key(stage, version, params, [s.key for s in sources] + [salt]), shards)

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
