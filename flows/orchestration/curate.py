"""The `curate` flow: the registry's stages in order (`flows/stages/`), then write and report.

Each stage is a Prefect task made from its declaration (`stage_task`); shard work runs on Dask and
needs no Prefect API on a worker.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prefect import Flow, Task, flow, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, TaskRunContext
from pydantic import BaseModel

from flows.config import CurationConfig
from flows.engine.context import RunContext, open_context
from flows.engine.publish import (
    CARD,
    OutputDir,
    delta,
    delta_markdown,
    new_version_id,
    version_manifest,
    write_version_shard,
)
from flows.engine.stage import Registry, Stage
from flows.engine.store import ArtifactStore, StageRef, digest
from flows.report.card import Source, StageCard, dataset_card
from flows.report.section import Section, delta_section
from flows.stages import STAGES
from tasks.errors import ConfigError
from tasks.io import fingerprint_bytes

# Prefect persists a stage task's result (a pickled StageRef) under its cache key; a new version here
# when that class's module moves, so no run reads a result it cannot unpickle (the store's keys hold).
RESULT_FORMAT = "stage-ref-2"


def stage_task(stage: Stage) -> Task:
    """A stage as a Prefect task, named for it and cached on the key the stage plans: the UI shows a
    hit as Cached; the flow refreshes the cache when the store no longer holds the stage whole."""

    def cache_key(context: TaskRunContext, parameters: dict) -> str:
        return digest(
            "prefect-task", RESULT_FORMAT, stage.name, stage.plan(parameters["ctx"], parameters["upstream"])[-1].key
        )

    def run(ctx: RunContext, upstream: StageRef | None) -> StageRef:
        return stage.run(ctx, upstream)

    run.__name__ = run.__qualname__ = stage.name
    return task(name=stage.name, cache_key_fn=cache_key, persist_result=True)(run)


def progress_reporter(stage: str):
    """A Prefect progress artifact for the stage's shards, at most one API call a second: the Prefect
    server shares the cores with the workers."""
    progress = create_progress_artifact(progress=0.0, description=f"{stage}: shards finished (%)")
    last_update = [time.monotonic()]

    def report(done: int, total: int) -> None:
        if done == total or time.monotonic() - last_update[0] >= 1.0:
            update_progress_artifact(progress, progress=100.0 * done / max(total, 1))
            last_update[0] = time.monotonic()

    return report


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
    why: str = ""  # cached or recomputed because... (flows/report/history.py)


def run_stage(
    stage: Stage, stage_task: Task, ctx: RunContext, upstream: StageRef | None
) -> tuple[StageRef, FunnelRow]:
    """Call one stage task and read its funnel row back from the store's manifest."""
    start = time.perf_counter()
    complete = ctx.store.manifest(stage.name, stage.plan(ctx, upstream)[-1].key) is not None
    policy = ctx.cfg.run.retry_policy(stage.name)
    state: State = stage_task.with_options(
        retries=policy.retries,
        retry_delay_seconds=policy.delays() or 0,
        result_storage=prefect_result_storage(ctx.store),
        refresh_cache=not complete,
    )(ctx, upstream, return_state=True)
    if state.is_failed():
        report_failure(stage.name, state.result(raise_on_failure=False), ctx.cfg.run.shard_retries, policy.retries)
    ref: StageRef = state.result()
    seconds = time.perf_counter() - start
    # the task has just found every shard complete or written them: read, not checked again
    manifest = ctx.store.read_json(ctx.store.manifest_path(ref.stage, ref.key))
    cached = state.name == "Cached" or not ref.computed
    row = FunnelRow(
        ref.stage,
        manifest.get("rows_in", 0),
        manifest.get("rows_kept", 0),
        manifest.get("drops", {}),
        round(seconds, 2),
        cached,
        0 if state.name == "Cached" else len(ref.computed),
        ref.key,
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
def write(
    ctx: RunContext, final: StageRef, run_id: str, card: Callable[..., str], outputs: dict[str, StageRef]
) -> dict:
    """Publish the selected shards as a new dataset version, unless the latest version holds them already.

    The version is staged aside and renamed whole before `latest` moves; on an object store its data is
    written in place and its manifest, then `latest`, last (flows/engine/publish.py). Its dataset card
    (`README.md`, `card(version=, previous=, rows=, languages=, licenses=, changes=)`) is written with
    the data, before the version becomes visible, and goes to the Prefect UI as an artifact. What the
    version changed (`flows.engine.publish.delta`, against the stages' `outputs`) is measured on the
    staged data, so the card says it too; the run's delta section reuses it.
    """
    out = OutputDir(ctx.cfg.output)
    key = digest("write", final.key, ctx.cfg.write.content())
    previous = out.latest()
    if previous is not None and previous["key"] == key:
        return previous | {"cached": True}
    version = new_version_id(run_id)
    staging = out.staging_dir(version)
    futures = ctx.client.map(
        write_version_shard,
        final.shards,
        [f"{staging}/data/{s.name}" for s in final.shards],
        store_url=ctx.store.url,
        stage=final.stage,
        output_url=ctx.cfg.output,
        jsonl=ctx.cfg.write.jsonl,
        pure=False,
    )
    written = dict(zip((s.name for s in final.shards), ctx.client.gather(futures)))
    rows = {name: shard["rows"] for name, shard in written.items()}
    languages: Counter = Counter()
    licenses: Counter = Counter()
    for shard in written.values():
        languages.update(shard["languages"])
        licenses.update(shard["licenses"])
    staged = {"version": version, "data": f"{staging}/data", "rows": sum(rows.values()), "shards": rows}
    changes = delta(out, previous, staged, ctx.store, outputs)
    text = card(
        version=version,
        previous=previous["version"] if previous else None,
        rows=sum(rows.values()),
        languages=dict(languages),
        licenses=dict(licenses),
        changes=delta_markdown(changes).partition("\n\n")[2],
    )
    out.write_atomic(f"{staging}/{CARD}", lambda f: f.write(text.encode()))
    create_markdown_artifact(key="dataset-card", markdown=text, description=f"Dataset card of version {version}")
    manifest = version_manifest(version, key, out.data_url(version), rows, previous, run_id)
    return out.commit(staging, manifest) | {"cached": False, "delta": changes}


def version_card(ctx: RunContext, stages: Registry, funnel: list[FunnelRow], sections: list[Section]):
    """The dataset card of the version this run writes, from what the run knows (`flows/report/card.py`)."""
    config = ctx.cfg.model_dump(mode="json")
    by_name = {stage.name: stage for stage in stages}
    cards = [
        StageCard(
            row.stage,
            by_name[row.stage].version,
            row.docs_in,
            row.docs_out,
            row.drops,
            config.get(by_name[row.stage].section),
        )
        for row in funnel
    ]
    limits = [(stage.name, text) for stage in stages for text in stage.limits(stage.params(ctx.cfg))]
    sources = [Source(f.relpath, fingerprint_bytes(f.fingerprint), f.fingerprint) for f in ctx.inputs]
    return partial(
        dataset_card,
        title=Path(ctx.cfg.output.rstrip("/")).name or "dataset",
        sources=sources,
        stages=cards,
        results=[section.markdown for section in sections],
        limits=limits,
    )


def curation_flow(stages: Registry, config: type[BaseModel]) -> Flow:
    """The `curate` flow over `stages`, whose parameter (the Prefect UI form) is their `config`."""
    stage_tasks = {stage.name: stage_task(stage) for stage in stages}
    config_sections = {stage.name: stage.section for stage in stages}

    def curate(cfg: BaseModel) -> dict:
        """Curate a corpus: every stage cached in the artifact store, shard work on Dask."""
        from flows.orchestration.report import (
            publish,  # plotting: kept off workers that re-import a script importing this
        )

        started = time.perf_counter()
        run_id = current_run_id()
        unknown = set(cfg.run.stage_retries_by_stage) - set(stages.names)
        if unknown:
            raise ConfigError(f"run.stage_retries_by_stage names no stage: {', '.join(sorted(unknown))}")
        with open_context(cfg, stages.warm_models(cfg), progress_reporter) as ctx:
            ref, funnel, sections, outputs = None, [], [], {}  # outputs: stage -> the StageRef it produced
            for stage in (stages.stages[0], *stages.order(cfg)):
                upstream = ref
                ref, row = run_stage(stage, stage_tasks[stage.name], ctx, upstream)
                funnel.append(row)
                outputs[stage.name] = ref
                if stage.report is not None:
                    sections.append(stage.report(ctx, upstream, ref))
            start = time.perf_counter()
            output = write(ctx, ref, run_id, version_card(ctx, stages, funnel, sections), outputs)
            funnel.append(
                FunnelRow(
                    "write",
                    output["rows"],
                    output["rows"],
                    {},
                    round(time.perf_counter() - start, 2),
                    output["cached"],
                    0 if output["cached"] else len(output["shards"]),
                    output["key"],
                )
            )
            sections.insert(0, delta_section(ctx, output, outputs))
            # old versions go after the delta section, which reads the one this run replaced
            for version in OutputDir(cfg.output).prune(cfg.write.keep_versions):
                print(f"removed dataset version {version} (write.keep_versions={cfg.write.keep_versions})")
            return publish(ctx, run_id, funnel, output, time.perf_counter() - started, sections, config_sections)

    curate.__annotations__ = {"cfg": config, "return": dict}
    curate.__qualname__ = "curate"  # deployments load the flow by this name from flows/orchestration/curate.py
    return flow(name="curate", log_prints=True)(curate)


def current_run_id() -> str:
    """The Prefect flow run's id, which names the dataset version this run publishes."""
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else uuid.uuid4().hex


curate = curation_flow(STAGES, CurationConfig)
