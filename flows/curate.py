"""The `curate` flow: read → url_filter → extract → normalize → langid → clean → dedup_exact →
dedup_fuzzy → quality → toxicity → decontam → select → write, then report."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext

from flows import stages
from flows.config import CurationConfig
from flows.publish import OutputDir, new_version_id, version_manifest
from flows.store import ArtifactStore, StageRef, digest
from tasks.errors import ConfigError

PIPELINE = (
    stages.url_filter, stages.extract, stages.normalize, stages.langid, stages.clean, stages.dedup_exact,
    stages.dedup_fuzzy, stages.quality, stages.toxicity, stages.decontam, stages.select,
)


def pipeline(cfg: CurationConfig) -> tuple:
    """The stages after `read`, in order. Quality scoring runs after fuzzy dedup so no model scores a
    duplicate, unless the fuzzy keeper is chosen by a quality scorer's column: then it runs first."""
    keeper_column = cfg.dedup_fuzzy.keeper_column if cfg.dedup_fuzzy.keeper == "highest_score" else None
    if keeper_column not in {spec.column for spec in cfg.quality.scorers}:
        return PIPELINE
    at = PIPELINE.index(stages.dedup_fuzzy)
    return PIPELINE[:at] + (stages.quality, stages.dedup_fuzzy) + tuple(s for s in PIPELINE[at + 1:] if s is not stages.quality)


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
    why: str = ""  # cached or recomputed because... (flows/history.py)


def run_stage(stage_task, run: stages.Run, upstream: StageRef | None) -> tuple[StageRef, FunnelRow]:
    """Call one stage task and read its funnel row back from the store's manifest."""
    start = time.perf_counter()
    stage = stage_task.name
    complete = run.store.manifest(stage, run.plan(stage, upstream)) is not None
    policy = run.cfg.run.retry_policy(stage)
    state: State = stage_task.with_options(
        retries=policy.retries,
        retry_delay_seconds=policy.delays() or 0,
        result_storage=prefect_result_storage(run.store),
        refresh_cache=not complete,
    )(run, upstream, return_state=True)
    if state.is_failed():
        report_failure(stage, state.result(raise_on_failure=False), run.cfg.run.shard_retries, policy.retries)
    ref: StageRef = state.result()
    seconds = time.perf_counter() - start
    manifest = run.store.manifest(ref.stage, ref.key) or {}
    cached = state.name == "Cached" or not ref.computed
    row = FunnelRow(
        ref.stage, manifest.get("rows_in", 0), manifest.get("rows_kept", 0), manifest.get("drops", {}),
        round(seconds, 2), cached, 0 if state.name == "Cached" else len(ref.computed), ref.key,
    )
    return ref, row


def report_failure(stage: str, error: BaseException, shard_retries: int, stage_retries: int) -> None:
    """A failed stage as a Prefect artifact: which shard, what went wrong, after how many attempts."""
    shards = [note.removeprefix("winnow: ") for note in getattr(error, "__notes__", ()) if note.startswith("winnow: ")]
    create_markdown_artifact(
        key="curation-failure",
        markdown=(
            f"### Stage `{stage}` failed\n\n"
            f"- where: {'; '.join(shards) or 'the stage itself (no shard)'}\n"
            f"- error: `{type(error).__name__}: {str(error)[:2000]}`\n"
            f"- attempts: {shard_retries + 1} per shard (Dask) x {stage_retries + 1} of the stage (Prefect)\n\n"
            "Finished shards are kept: rerun the same command to resume."
        ),
        description=f"Failure of stage {stage}",
    )


def prefect_result_storage(store: ArtifactStore) -> Path | None:
    """Prefect persists task results (StageRefs) beside the artifacts, so its cache follows the store.

    A remote store keeps Prefect's default result storage: the stage cache itself lives in the store.
    """
    return Path(store.root) / "_prefect" if store.is_local else None


@task(name="write", cache_policy=NO_CACHE)
def write(run: stages.Run, final: StageRef, run_id: str) -> dict:
    """Publish the selected shards as a new dataset version, unless the latest version holds them already.

    The version is staged aside and renamed whole before `latest` moves (flows/publish.py).
    """
    out = OutputDir(run.cfg.output)
    key = digest("write", final.key, run.cfg.write)
    previous = out.latest()
    if previous is not None and previous["key"] == key:
        return previous | {"cached": True}
    staging = out.staging_dir()
    futures = run.client.map(
        write_output_shard, [run.store.kept_path(final.stage, s) for s in final.shards],
        [f"{staging}/data/{s.name}" for s in final.shards], store_url=run.store.url, output_url=run.cfg.output,
        jsonl=run.cfg.write.jsonl, pure=False,
    )
    rows = dict(zip((s.name for s in final.shards), run.client.gather(futures)))
    version = new_version_id(run_id)
    manifest = version_manifest(version, key, f"{out.version_dir(version)}/data", rows, previous, run_id)
    return out.commit(staging, manifest) | {"cached": False}


def write_output_shard(source: str, target: str, store_url: str, output_url: str, jsonl: bool) -> int:
    """Worker side: copy one selected shard to the output as Parquet (and JSONL when asked)."""
    table = ArtifactStore(store_url).read_table(source)
    out_fs, _ = fsspec.core.url_to_fs(output_url)
    out_fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
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
    from flows.report import delta_section, fuzzy_quality, publish, score_distributions
    from flows.decontam import report_section as decontam_report

    started = time.perf_counter()
    run_id = current_run_id()
    unknown = set(cfg.run.stage_retries_by_stage) - {"read", *(stage.name for stage in PIPELINE)}
    if unknown:
        raise ConfigError(f"run.stage_retries_by_stage names no stage: {', '.join(sorted(unknown))}")
    with stages.open_run(cfg) as run:
        ref, row = run_stage(stages.read, run, None)
        funnel, inputs, outputs = [row], {}, {"read": ref}  # stage -> the StageRef it ran on / produced
        for stage_task in pipeline(cfg):
            inputs[stage_task.name] = ref
            ref, row = run_stage(stage_task, run, ref)
            funnel.append(row)
            outputs[ref.stage] = ref
        start = time.perf_counter()
        output = write(run, ref, run_id)
        funnel.append(FunnelRow(
            "write", output["rows"], output["rows"], {}, round(time.perf_counter() - start, 2), output["cached"],
            0 if output["cached"] else len(output["shards"]), output["key"],
        ))
        sections = [
            delta_section(run, output, outputs),
            fuzzy_quality(run, inputs["dedup_fuzzy"], outputs["dedup_fuzzy"]),
            score_distributions(run, inputs["select"]),
            decontam_report(run, outputs["decontam"]),
        ]
        return publish(run, run_id, funnel, output, time.perf_counter() - started, sections)


def current_run_id() -> str:
    """The Prefect flow run's id, which names the dataset version this run publishes."""
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else uuid.uuid4().hex
