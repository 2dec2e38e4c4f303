"""The `curate` flow: the registry's stages in order (`flows/stages/`), then write and report.

Each stage is a Prefect task made from its declaration (`stage_task`); shard work runs on Dask and
needs no Prefect API on a worker.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prefect import Flow, Task, flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import PrefectConsoleHandler
from pydantic import BaseModel

from flows.config import CurationConfig
from flows.engine.context import RunContext, open_context
from flows.engine.journal import RunJournal
from flows.engine.progress import PhaseCounts, ProgressSink, RunProgress, StageStatus
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
from flows.report.live import LiveDisplay, phase_figures, terminal_display
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


class PrefectProgress(ProgressSink):
    """A Prefect progress artifact per map phase that computes shards, its description the terminal's
    figures (shards, docs/s, MB/s, dropped, ETA), at most one API call a second: the Prefect server
    shares the cores with the workers. The Dask dashboard as a link artifact. Called from the flow's
    thread only (the ticker's has no run context)."""

    def __init__(self, min_interval_s: float = 1.0):
        self.min_interval_s = min_interval_s
        self._artifact = None
        self._last = 0.0

    def phase_started(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts, ref) -> None:
        self._artifact = None
        if phase.todo:
            self._artifact = create_progress_artifact(
                progress=100.0 * phase.cached / phase.shards, description=f"{phase.name}: {phase_figures(phase)}"
            )
            self._last = time.monotonic()

    def shard_finished(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts, stats: dict) -> None:
        if self._artifact is not None and time.monotonic() - self._last >= self.min_interval_s:
            self._update(phase)

    def phase_finished(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts) -> None:
        if self._artifact is not None:
            self._update(phase)
            self._artifact = None

    def dashboard(self, run: RunProgress, link: str) -> None:
        create_link_artifact(key="dask-dashboard", link=link, description="The Dask dashboard of this run's cluster")

    def _update(self, phase: PhaseCounts) -> None:
        done = 100.0 * (phase.cached + phase.done) / phase.shards
        update_progress_artifact(self._artifact, progress=done, description=f"{phase.name}: {phase_figures(phase)}")
        self._last = time.monotonic()


def run_progress(cfg: BaseModel, stage_names: list[str], run_id: str) -> tuple[RunProgress, ProgressSink | None]:
    """The run's progress: to the terminal as `run.progress` says, the journal in the store (`winnow
    status`) and the Prefect UI; ticked every second so plain lines and the journal's heartbeat move
    while a long shard runs. Returns the terminal display too (None with `display: off`)."""
    options = cfg.run.progress
    journal = RunJournal(ArtifactStore(cfg.store_url), run_id, cfg.output)
    display = terminal_display(options.display, options.every_s, options.shards)  # last: a live one starts drawing
    sinks = [sink for sink in (display, journal, PrefectProgress()) if sink is not None]
    return RunProgress(stage_names, sinks, tick_s=1.0), display


class _NoTaskRunInfo(logging.Filter):
    """Prefect's "Task run 'clean-…' - Finished in state Completed()": one line per stage, which the
    progress display shows with its figures."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("prefect.task_runs") and record.levelno < logging.WARNING)


@contextlib.contextmanager
def console_logs(display: ProgressSink | None, verbose: bool) -> Iterator[None]:
    """Prefect's terminal log lines beside a progress display: its task-run INFO lines left out (still
    sent to the API and the UI) unless `verbose`, and under a live display, printed above it through
    the display's console instead of drawn over it."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    consoles = [h.console for h in handlers]
    quiet = _NoTaskRunInfo()
    for handler in handlers:
        if display is not None and not verbose:
            handler.addFilter(quiet)
        if isinstance(display, LiveDisplay):
            handler.console = display.console
    try:
        yield
    finally:
        for handler, console in zip(handlers, consoles):
            handler.removeFilter(quiet)
            handler.console = console


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
    ctx.progress.stage_started(stage.name)
    complete = ctx.store.manifest(stage.name, stage.plan(ctx, upstream)[-1].key) is not None
    policy = ctx.cfg.run.retry_policy(stage.name)
    state: State = stage_task.with_options(
        retries=policy.retries,
        retry_delay_seconds=policy.delays() or 0,
        result_storage=prefect_result_storage(ctx.store),
        refresh_cache=not complete,
    )(ctx, upstream, return_state=True)
    if state.is_failed():
        error = state.result(raise_on_failure=False)
        ctx.progress.stage_failed(stage.name, error)
        report_failure(stage.name, error, ctx.cfg.run.shard_retries, policy.retries)
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
    finished(ctx.progress, row)
    return ref, row


def finished(progress: RunProgress, row: FunnelRow) -> None:
    progress.stage_finished(
        row.stage,
        cached=row.cached,
        docs_in=row.docs_in,
        docs_out=row.docs_out,
        seconds=row.seconds,
        shards_computed=row.shards_computed,
    )


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
        order = (stages.stages[0], *stages.order(cfg))
        progress, display = run_progress(cfg, [stage.name for stage in order] + ["write"], run_id)
        with (
            progress,  # on any exit: the display stops and the journal says how the run ended
            console_logs(display, verbose=cfg.run.progress.shards),
            open_context(cfg, stages.warm_models(cfg), progress) as ctx,
        ):
            ref, funnel, sections, outputs = None, [], [], {}  # outputs: stage -> the StageRef it produced
            for stage in order:
                upstream = ref
                ref, row = run_stage(stage, stage_tasks[stage.name], ctx, upstream)
                funnel.append(row)
                outputs[stage.name] = ref
                if stage.report is not None:
                    sections.append(stage.report(ctx, upstream, ref))
            progress.stage_started("write")
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
            finished(progress, funnel[-1])
            progress.close()  # the version is published: the display ends before the funnel prints
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
