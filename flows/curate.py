"""The `curate` flow: read → url_filter → extract → normalize → langid → clean → dedup_exact →
dedup_fuzzy → quality → toxicity → select → write, then report."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from flows import stages
from flows.config import CurationConfig
from flows.store import ArtifactStore, StageRef, digest

PIPELINE = (
    stages.url_filter, stages.extract, stages.normalize, stages.langid, stages.clean, stages.dedup_exact,
    stages.dedup_fuzzy, stages.quality, stages.toxicity, stages.select,
)
OUTPUT_MANIFEST = "_manifest.json"


@dataclass
class FunnelRow:
    stage: str
    docs_in: int
    docs_out: int
    drops: dict[str, int]
    seconds: float
    cached: bool
    shards_computed: int = 0
    key: str = ""


def run_stage(stage_task, run: stages.Run, upstream: StageRef | None) -> tuple[StageRef, FunnelRow]:
    """Call one stage task and read its funnel row back from the store's manifest."""
    start = time.perf_counter()
    stage = stage_task.name
    complete = run.store.manifest(stage, run.plan(stage, upstream)) is not None
    state: State = stage_task.with_options(
        retries=run.cfg.run.stage_retries,
        result_storage=prefect_result_storage(run.store),
        refresh_cache=not complete,
    )(run, upstream, return_state=True)
    ref: StageRef = state.result()
    seconds = time.perf_counter() - start
    manifest = run.store.manifest(ref.stage, ref.key) or {}
    cached = state.name == "Cached" or not ref.computed
    row = FunnelRow(
        ref.stage, manifest.get("rows_in", 0), manifest.get("rows_kept", 0), manifest.get("drops", {}),
        round(seconds, 2), cached, 0 if state.name == "Cached" else len(ref.computed), ref.key,
    )
    return ref, row


def prefect_result_storage(store: ArtifactStore) -> Path | None:
    """Prefect persists task results (StageRefs) beside the artifacts, so its cache follows the store.

    A remote store keeps Prefect's default result storage: the stage cache itself lives in the store.
    """
    return Path(store.root) / "_prefect" if store.is_local else None


@task(name="write", cache_policy=NO_CACHE)
def write(run: stages.Run, final: StageRef) -> dict:
    """Publish the selected shards as the dataset: built aside, then swapped in whole.

    The output manifest goes first and comes back last, so a crash mid-swap leaves no manifest
    and the next run writes the dataset again.
    """
    out_fs, out_root = fsspec.core.url_to_fs(run.cfg.output)
    manifest_path, data_dir = f"{out_root}/{OUTPUT_MANIFEST}", f"{out_root}/data"
    key = digest("write", final.key, run.cfg.write)
    if out_fs.exists(manifest_path) and out_fs.exists(data_dir):
        published = json.loads(out_fs.cat(manifest_path))
        if published.get("key") == key:
            return published | {"cached": True}
    staging = f"{out_root}/data.tmp-{uuid.uuid4().hex}"
    out_fs.makedirs(staging, exist_ok=True)
    sources = [run.store.kept_path(final.stage, s) for s in final.shards]
    targets = [f"{staging}/{s.name}" for s in final.shards]
    futures = run.client.map(
        write_output_shard, sources, targets, store_url=run.store.url, output_url=run.cfg.output,
        jsonl=run.cfg.write.jsonl, pure=False,
    )
    rows = sum(run.client.gather(futures))
    if out_fs.exists(manifest_path):
        out_fs.rm(manifest_path)
    if out_fs.exists(data_dir):
        out_fs.rm(data_dir, recursive=True)
    out_fs.mv(staging, data_dir, recursive=True)
    manifest = {"key": key, "rows": rows, "data": data_dir, "shards": [s.name for s in final.shards]}
    out_fs.pipe(manifest_path, json.dumps(manifest, indent=1).encode())
    return manifest | {"cached": False}


def write_output_shard(source: str, target: str, store_url: str, output_url: str, jsonl: bool) -> int:
    """Worker side: copy one selected shard to the output as Parquet (and JSONL when asked)."""
    table = ArtifactStore(store_url).read_table(source)
    out_fs, _ = fsspec.core.url_to_fs(output_url)
    with out_fs.open(f"{target}.parquet", "wb") as f:
        pq.write_table(table, f, compression="zstd")
    if jsonl:
        with out_fs.open(f"{target}.jsonl.gz", "wb", compression="gzip") as f:
            for row in table.to_pylist():
                f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return table.num_rows


@flow(name="curate", log_prints=True)
def curate(cfg: CurationConfig) -> dict:
    """Curate a corpus: every stage cached in the artifact store, shard work on Dask."""
    from flows.report import fuzzy_quality, publish

    started = time.perf_counter()
    with stages.open_run(cfg) as run:
        ref, row = run_stage(stages.read, run, None)
        funnel, refs = [row], {"read": ref}
        for stage_task in PIPELINE:
            ref, row = run_stage(stage_task, run, ref)
            funnel.append(row)
            refs[ref.stage] = ref
        start = time.perf_counter()
        output = write(run, ref)
        funnel.append(FunnelRow(
            "write", output["rows"], output["rows"], {}, round(time.perf_counter() - start, 2), output["cached"],
            0 if output["cached"] else len(output["shards"]),
        ))
        dedup = fuzzy_quality(run, refs["dedup_exact"], refs["dedup_fuzzy"])
        return publish(run, funnel, output, time.perf_counter() - started, dedup)
