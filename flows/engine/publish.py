"""Versioned dataset output: a run that changes the dataset publishes a new version; `latest` points at it.

Layout under the output (a local folder or any fsspec URL):

    versions/<version>/data/<shard>.parquet   that version's dataset; older versions stay readable
    versions/<version>/manifest.json          rows per shard, the write key, the version it replaced, its run
    versions/<version>/README.md              its dataset card (Hugging Face format: `load_dataset` reads it)
    latest.json                               the pointer: {"version", "data", ...}, replaced atomically, written last
    data -> versions/<version>/data           local outputs only: a symlink, swapped atomically
    runs/<run id>.json, runs/<run id>.html    every run's summary (config, inputs, funnel, sections) and report
    run_summary.json, report.html             the latest run's (also when it published nothing new)

Locally a version is built under a temporary name and renamed whole, then the pointer moves. An object
store (s3://) has no rename: the data objects go straight to `versions/<version>/data/`, then the
manifest (a version without one is not listed), then the pointer, conditionally where S3 allows
(`OutputDir.advance_latest`: the newest version wins, `latest` never moves back). Either way a reader
of `latest.json` or `data` never sees a half-written version, and a crash leaves the previous one
current. `write.keep_versions` prunes old versions after a run (`OutputDir.prune`).
No Prefect or Dask here: `flows/orchestration/curate.py` maps `write_version_shard` over the shards on Dask
and calls the rest.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Mapping

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.engine.store import ArtifactStore, Folder, ShardRef, StageRef, write_parquet

LATEST = "latest.json"
MANIFEST = "manifest.json"
CARD = "README.md"  # the version's dataset card (flows/report/card.py), in the Hugging Face format
SUMMARY = "run_summary.json"
REPORT = "report.html"
EXAMPLES = 5  # ids shown per kind of change in the delta report


class OutputDir(Folder):
    def version_dir(self, version: str) -> str:
        return f"{self.root}/versions/{version}"

    def maybe_json(self, path: str) -> dict | None:
        return self.read_json(path) if self.fs.exists(path) else None

    def latest(self) -> dict | None:
        """The current version's manifest, or None before the first publication."""
        pointer = self.maybe_json(f"{self.root}/{LATEST}")
        manifest = self.maybe_json(f"{self.version_dir(pointer['version'])}/{MANIFEST}") if pointer else None
        return manifest if manifest and self.fs.exists(manifest["data"]) else None

    def versions(self) -> list[str]:
        """Published versions, oldest first (version names sort by time)."""
        root = f"{self.root}/versions"
        if not self.fs.exists(root):
            return []
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(root, detail=False))
        return sorted(n for n in names if not n.startswith(".") and self.fs.exists(f"{root}/{n}/{MANIFEST}"))

    def data_url(self, version: str) -> str:
        """Where a version's data lies, as a reader outside this process opens it (with its s3:// etc.)."""
        path = f"{self.version_dir(version)}/data"
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def staging_dir(self, version: str) -> str:
        """Where a run writes the data of `version`: aside under a temporary name locally, renamed whole
        by `commit`; on an object store, which cannot rename, the version's own folder, unseen until
        `commit` writes its manifest."""
        return f"{self.root}/versions/.tmp-{uuid.uuid4().hex}" if self.is_local else self.version_dir(version)

    def commit(self, staging: str, manifest: dict) -> dict:
        """Make the staged version visible, then move `latest` to it unless a newer version is current.

        Locally the staged folder is renamed whole; on an object store its data already lies in place
        and the manifest, one PUT, written last, makes it a version (`versions`, `latest` require it).
        """
        version = manifest["version"]
        if self.is_local:
            self.fs.pipe(f"{staging}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
            self.fs.mv(staging, self.version_dir(version), recursive=True)
        else:
            if staging.rstrip("/") != self.version_dir(version):
                raise ValueError(f"staging {staging!r} is not the folder of version {version!r}: see staging_dir")
            self.write_json(f"{self.version_dir(version)}/{MANIFEST}", manifest)
        if self.advance_latest({k: manifest[k] for k in ("version", "data", "rows", "created_at")}) and self.is_local:
            self._link_data(version)
        return manifest

    def advance_latest(self, pointer: dict) -> bool:
        """Point `latest.json` at `pointer["version"]` unless it points at that or a newer one already.

        Of concurrent publishers the newest version id wins (ids sort by the time each run began its
        write), whatever order they finish in: `latest` never moves back to an older version, and a
        version that loses stays published, listed by `versions()`. On S3 the pointer is replaced by
        a conditional PUT (If-Match on the ETag read, If-None-Match: * for the first version): when
        another publisher replaced it in between, the PUT is refused (412) and the pointer read again.
        Elsewhere (local disk, stores without conditional writes) the check and the write are two
        steps: two publishers within the same instant may still leave the older one current.

        Returns whether `latest` now points at this version.
        """
        path = f"{self.root}/{LATEST}"
        data = json.dumps(pointer, indent=1, sort_keys=True).encode()
        while True:
            current, etag = self._read_pointer(path)
            if current is not None and current["version"] >= pointer["version"]:
                return current["version"] == pointer["version"]
            if not self.conditional_writes:
                self.write_atomic(path, lambda f: f.write(data))
                return True
            try:
                self.fs.pipe_file(path, data, **({"IfMatch": etag} if etag else {"IfNoneMatch": "*"}))
                return True
            except OSError as exc:
                if not _lost_race(exc):
                    raise

    def _read_pointer(self, path: str) -> tuple[dict | None, str | None]:
        """The pointer and, where the store has them, its ETag (read first: a newer body than the
        ETag only makes the conditional PUT fail and the loop read again)."""
        try:
            etag = self.fs.info(path).get("ETag") if self.conditional_writes else None
            return self.read_json(path), etag
        except FileNotFoundError:
            return None, None

    def prune(self, keep: int | None) -> list[str]:
        """Remove all but the newest `keep` versions, never the one `latest.json` points to; None keeps all.

        Each removed version's manifest goes first, so it stops being listed before its data goes,
        and a crash in between leaves an invisible folder, never a listed version without data. A
        folder without a manifest is never touched: it may be a version another run is writing.
        Returns the removed versions.
        """
        if keep is None:
            return []
        pointer, _ = self._read_pointer(f"{self.root}/{LATEST}")
        versions = self.versions()
        removed = [v for v in versions[: max(len(versions) - keep, 0)] if not pointer or v != pointer["version"]]
        for version in removed:
            self.fs.rm_file(f"{self.version_dir(version)}/{MANIFEST}")
            self.fs.rm(self.version_dir(version), recursive=True)
        return removed

    def _link_data(self, version: str) -> None:
        """`data` as a relative symlink, replaced in one rename (an older layout's real folder goes first)."""
        link = os.path.join(self.root, "data")
        if os.path.isdir(link) and not os.path.islink(link):
            self.fs.rm(link, recursive=True)
        tmp = f"{link}.tmp-{uuid.uuid4().hex}"
        os.symlink(os.path.join("versions", version, "data"), tmp)
        os.replace(tmp, link)

    def last_summary(self) -> dict | None:
        """The summary of the last run on this output (a run reads it before its own replaces it)."""
        return self.maybe_json(f"{self.root}/{SUMMARY}")

    def write_report(self, run_id: str, page: str) -> str:
        """The HTML report under `runs/` and at the top as `report.html`; returns the run's own copy's URL."""
        for path in (f"{self.root}/runs/{run_id}.html", f"{self.root}/{REPORT}"):
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe(path, page.encode())
        return self.fs.unstrip_protocol(f"{self.root}/runs/{run_id}.html")

    def write_summary(self, summary: dict) -> str:
        """Kept per run under `runs/`, and at the top as the latest run's."""
        self.write_json(f"{self.root}/runs/{summary['run_id']}.json", summary)
        path = f"{self.root}/{SUMMARY}"
        self.write_json(path, summary)
        return path


def new_version_id(run_id: str) -> str:
    """Sortable by time (to the millisecond), unique by run: `20261123T140512.042Z-3f9a1c2e`."""
    now = time.time()
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d}Z"
    return f"{stamp}-{run_id.replace('-', '')[:8]}"


def write_version_shard(
    shard: ShardRef, target: str, store_url: str, stage: str, output_url: str, jsonl: bool
) -> dict:
    """Worker side: materialize one selected shard's documents (its view) in a version being written, as
    Parquet (and JSONL when asked); returns its rows, and documents per `lang` and per `license` (for
    the dataset card).
    Here, not beside the `write` task, so a worker unpickling it imports no Prefect."""
    table = ArtifactStore(store_url).read_view(stage, shard)
    out_fs, _ = fsspec.core.url_to_fs(output_url)
    out_fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    with out_fs.open(f"{target}.parquet", "wb") as f:
        write_parquet(table, f)
    if jsonl:
        with out_fs.open(f"{target}.jsonl.gz", "wb", compression="gzip") as f:
            for row in table.to_pylist():
                f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return {"rows": table.num_rows, "languages": _counts(table, "lang"), "licenses": _counts(table, "license")}


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    """Documents per value of a column ("" for null); {} without the column."""
    if column not in table.column_names:
        return {}
    return {r["values"] or "": r["counts"] for r in pc.value_counts(table.column(column)).to_pylist()}


def _lost_race(exc: OSError) -> bool:
    """A conditional PUT refused because the object changed since it was read: 412 Precondition
    Failed, or 409 while another conditional write of it is in flight (S3)."""
    response = getattr(exc.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict")


def version_manifest(
    version: str, key: str, data: str, shard_rows: Mapping[str, int], previous: dict | None, run_id: str
) -> dict:
    return {
        "version": version,
        "key": key,
        "data": data,
        "rows": sum(shard_rows.values()),
        "shards": dict(shard_rows),
        "previous": previous["version"] if previous else None,
        "run_id": run_id,
        "created_at": time.time(),
    }


def _ids_by_shard(out: OutputDir, manifest: dict) -> pa.Table:
    """(shard, id) of every document of a version, reading only the `id` column."""
    tables = [
        pq.read_table(f"{manifest['data']}/{shard}.parquet", columns=["id"], filesystem=out.fs).append_column(
            "shard", pa.array([shard] * rows, pa.string())
        )
        for shard, rows in manifest["shards"].items()
    ]
    return (
        pa.concat_tables(tables)
        if tables
        else pa.table({"id": pa.array([], pa.string()), "shard": pa.array([], pa.string())})
    )


def delta(
    out: OutputDir, previous: dict | None, current: dict, store: ArtifactStore, stages: Mapping[str, StageRef]
) -> dict:
    """What this version added and removed against the one it replaced, and why each removal happened.

    A removed document's reason is the one a stage of this run rejected it with; one that no stage
    rejected left with its input (the file was removed or its record changed). Memory: the ids of both
    versions, not their text.
    """
    if previous is None:
        return {"previous_version": None, "version": current["version"], "added": current["rows"], "removed": 0}
    old, new = _ids_by_shard(out, previous), _ids_by_shard(out, current)
    added = new.filter(pc.invert(pc.is_in(new.column("id"), value_set=old.column("id"))))
    removed = (
        old.filter(pc.invert(pc.is_in(old.column("id"), value_set=new.column("id")))).column("id").combine_chunks()
    )
    new_shards = sorted(set(current["shards"]) - set(previous["shards"]))
    from_new_shards = pc.sum(pc.is_in(added.column("shard"), value_set=pa.array(new_shards, pa.string()))).as_py() or 0
    reasons = rejection_reasons(removed, store, stages)
    by_reason = Counter(reasons.get(i, "input:removed_or_changed") for i in removed.to_pylist())
    return {
        "previous_version": previous["version"],
        "version": current["version"],
        "added": added.num_rows,
        "added_from_new_shards": from_new_shards,
        "added_in_existing_shards": added.num_rows - from_new_shards,
        "removed": len(removed),
        "removed_by_reason": dict(by_reason.most_common()),
        "new_shards": new_shards,
        "removed_shards": sorted(set(previous["shards"]) - set(current["shards"])),
        "examples": {
            "added": added.column("id").slice(0, EXAMPLES).to_pylist(),
            "removed": [
                {"id": i, "reason": reasons.get(i, "input:removed_or_changed")}
                for i in removed.slice(0, EXAMPLES).to_pylist()
            ],
        },
    }


def rejection_reasons(ids: pa.Array, store: ArtifactStore, stages: Mapping[str, StageRef]) -> dict[str, str]:
    """The reason code each of `ids` was rejected with, searching every stage's rejected rows."""
    found: dict[str, str] = {}
    if len(ids) == 0:
        return found
    for ref in stages.values():
        for shard in ref.shards:
            rejected = store.read_rejected(ref.stage, shard, ["id", "reason"])
            if rejected is None or "id" not in rejected.column_names:
                continue  # `read` quarantines records that never had a valid id
            hits = rejected.filter(pc.is_in(rejected.column("id"), value_set=ids))
            found.update(zip(hits.column("id").to_pylist(), hits.column("reason").to_pylist()))
    return found


def delta_markdown(report: dict) -> str:
    if report.get("unchanged"):
        return f"### Dataset version {report['version']}\n\nUnchanged by this run."
    if report["previous_version"] is None:
        return f"### Dataset version {report['version']}\n\nFirst version: {report['added']:,} documents."
    reasons = ", ".join(f"`{r}` {n:,}" for r, n in report["removed_by_reason"].items()) or "none"
    return (
        f"### Dataset version {report['version']} (replaces {report['previous_version']})\n\n"
        f"Added {report['added']:,} documents ({report['added_from_new_shards']:,} from "
        f"{len(report['new_shards'])} new input shard{'' if len(report['new_shards']) == 1 else 's'}, "
        f"{report['added_in_existing_shards']:,} newly passing in "
        f"existing shards); removed {report['removed']:,}: {reasons}."
    )
