"""Versioned dataset output: a run that changes the dataset publishes a new version; `latest` points at it.

Layout under the output (a local folder or any fsspec URL):

    versions/<version>/data/<shard>.parquet   that version's dataset; older versions stay readable
    versions/<version>/manifest.json          rows per shard, the write key, the version it replaced, its run
    latest.json                               the pointer: {"version", "data", ...}, replaced atomically
    data -> versions/<version>/data           local outputs only: a symlink, swapped atomically
    runs/<run id>.json, runs/<run id>.html    every run's summary (config, inputs, funnel, sections) and report
    run_summary.json, report.html             the latest run's (also when it published nothing new)

A version is built under a temporary name and renamed whole, then the pointer moves, so a reader of
`latest.json` or `data` never sees a half-written version, and a crash leaves the previous one current.
No Prefect or Dask here: `flows/curate.py` writes the shards on Dask and calls these.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.store import ArtifactStore, Folder, StageRef

LATEST = "latest.json"
MANIFEST = "manifest.json"
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

    def staging_dir(self) -> str:
        return f"{self.root}/versions/.tmp-{uuid.uuid4().hex}"

    def commit(self, staging: str, manifest: dict) -> dict:
        """Rename the staged version into place, then move the pointer to it."""
        self.fs.pipe(f"{staging}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
        self.fs.mv(staging, self.version_dir(manifest["version"]), recursive=True)
        self.write_json(f"{self.root}/{LATEST}", {k: manifest[k] for k in ("version", "data", "rows", "created_at")})
        if self.is_local:
            self._link_data(manifest["version"])
        return manifest

    def _link_data(self, version: str) -> None:
        """`data` as a relative symlink, replaced in one rename (an older layout's real folder goes first)."""
        link = os.path.join(self.root, "data")
        if os.path.isdir(link) and not os.path.islink(link):
            self.fs.rm(link, recursive=True)
        tmp = f"{link}.tmp-{uuid.uuid4().hex}"
        os.symlink(os.path.join("versions", version, "data"), tmp)
        os.replace(tmp, link)

    def previous_summary(self) -> dict | None:
        """The summary of the last run on this output (read before this run's replaces it)."""
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
    """Sortable by time, unique by run: `20261123T140512Z-3f9a1c2e`."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{run_id.replace('-', '')[:8]}"


def version_manifest(version: str, key: str, data: str, shard_rows: Mapping[str, int], previous: dict | None, run_id: str) -> dict:
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
        pq.read_table(f"{manifest['data']}/{shard}.parquet", columns=["id"], filesystem=out.fs)
        .append_column("shard", pa.array([shard] * rows, pa.string()))
        for shard, rows in manifest["shards"].items()
    ]
    return pa.concat_tables(tables) if tables else pa.table({"id": pa.array([], pa.string()), "shard": pa.array([], pa.string())})


def delta(out: OutputDir, previous: dict | None, current: dict, store: ArtifactStore, stages: Mapping[str, StageRef]) -> dict:
    """What this version added and removed against the one it replaced, and why each removal happened.

    A removed document's reason is the one a stage of this run rejected it with; one that no stage
    rejected left with its input (the file was removed or its record changed). Memory: the ids of both
    versions, not their text.
    """
    if previous is None:
        return {"previous_version": None, "version": current["version"], "added": current["rows"], "removed": 0}
    old, new = _ids_by_shard(out, previous), _ids_by_shard(out, current)
    added = new.filter(pc.invert(pc.is_in(new.column("id"), value_set=old.column("id"))))
    removed = old.filter(pc.invert(pc.is_in(old.column("id"), value_set=new.column("id")))).column("id").combine_chunks()
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
            "removed": [{"id": i, "reason": reasons.get(i, "input:removed_or_changed")} for i in removed.slice(0, EXAMPLES).to_pylist()],
        },
    }


def rejection_reasons(ids: pa.Array, store: ArtifactStore, stages: Mapping[str, StageRef]) -> dict[str, str]:
    """The reason code each of `ids` was rejected with, searching every stage's rejected rows."""
    found: dict[str, str] = {}
    if len(ids) == 0:
        return found
    for ref in stages.values():
        for shard in ref.shards:
            path = store.rejected_path(ref.stage, shard)
            if not store.fs.exists(path) or "id" not in pq.read_schema(path, filesystem=store.fs).names:
                continue  # `read` quarantines records that never had a valid id
            rejected = store.read_table(path, columns=["id", "reason"])
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
