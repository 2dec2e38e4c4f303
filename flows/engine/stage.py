"""How a declared stage runs: a `Stage` is its `tasks/` module, its config section, its map phases
and, for a corpus-wide stage, its `CorpusSteps` (`flows/engine/corpus.py`).

Planning and running are one code path: `Stage.plan` and `Stage.run` walk the same `MapCall`s, one
computing refs without running, the other mapping shards, so the key a stage is cached under is the
key it writes. Stages are declared in `flows/stages/`, one module each; `Registry` holds them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from flows.engine.context import RunContext
from flows.engine.corpus import CorpusSteps, Step, corpus_refs, run_corpus
from flows.engine.store import StageRef
from flows.parallel.cluster import WarmModels


def _same(params: BaseModel) -> BaseModel:
    return params


def _always(params: BaseModel) -> bool:
    return True


def _never(params: BaseModel) -> bool:
    return False


def reads_text(params: BaseModel) -> tuple[str, ...]:
    """What a stage that reads only the documents' text declares as `reads`."""
    return ("text",)


def _no_args(ctx: RunContext, params: BaseModel, upstream: StageRef | None) -> Callable[[int], tuple]:
    return lambda i: ()


@dataclass(frozen=True)
class Phase:
    """One map over a stage's shards, cached under its own name (`decontam.scan`, `dedup_fuzzy.bands`).

    `params` derives the phase's params from its stage's (a phase keyed on fewer knobs does not rerun
    when the others change); `when` says whether it runs under them; `shard_args` gives the extra
    arguments of each shard's call, resolved only when shards run (it may build an index); `reads`
    names, under the phase's params, the columns of its input view it reads (None: all of them).
    `key_params`, when set, keys the phase's shards by those params and by what each shard holds
    (`flows.engine.executor.map_shards`): a params change that leaves a shard's output as it was leaves
    the later stages' work on that shard cached. `split` runs `fn` on each shard's row blocks as tasks
    of their own (`flows.engine.executor.call_in_blocks`), for a row-local phase whose cost is per
    document (a model's forward passes): one large shard then keeps every worker busy. A split phase
    whose rows are numbered by their place in the shard (`tasks.clusters.position`) sets `numbered`:
    `fn` then takes `first_row`, its block's first row in the shard.
    """

    name: str
    fn: Callable[..., Any]
    params: Callable[[BaseModel], BaseModel] = _same
    when: Callable[[BaseModel], bool] = _always
    shard_args: Callable[[RunContext, BaseModel, StageRef | None], Callable[[int], tuple]] = _no_args
    reads: Callable[[BaseModel], tuple[str, ...] | None] = lambda params: None
    key_params: Callable[[BaseModel], BaseModel] | None = None
    split: bool = False
    numbered: bool = False


@dataclass(frozen=True)
class MapCall:
    """One phase over one upstream, as planning and running both see it."""

    phase: Phase
    version: int
    stage_params: BaseModel
    upstream: StageRef | None

    def plan(self, ctx: RunContext) -> StageRef:
        return ctx.plan(self.phase.name, self.version, self.phase.params(self.stage_params), self.upstream)

    def run(self, ctx: RunContext) -> StageRef:
        params = self.phase.params(self.stage_params)
        return ctx.map(
            self.phase.name,
            self.version,
            self.phase.fn,
            params,
            self.upstream,
            shard_args=self.phase.shard_args(ctx, self.stage_params, self.upstream),
            reads=self.phase.reads(params),
            key_params=None if self.phase.key_params is None else self.phase.key_params(params),
            split=self.phase.split,
            numbered=self.phase.numbered,
        )


@dataclass(frozen=True)
class Stage:
    """One stage: its `tasks/` module (VERSION; `run` for a map stage, `apply` for a corpus-wide one),
    its config section and model, its map phases (default: the module's `run`), and what the run
    around it needs to know (stages it must follow, models to warm, its report section)."""

    name: str
    module: ModuleType
    section_model: type[BaseModel]
    section: str = ""  # the config section; default: the stage name
    params_of: Callable[[BaseModel], BaseModel] = _same  # the params from the section
    phases: tuple[Phase, ...] = ()
    reads: Callable[[BaseModel], tuple[str, ...] | None] = lambda params: None  # of the default phase
    split: bool = False  # of the default phase (`Phase.split`)
    corpus: CorpusSteps | None = None
    needs: Callable[[BaseModel], tuple[str, ...]] = lambda cfg: ()  # stages to run first under this config
    active: Callable[[BaseModel], bool] = _always  # from the params: false leaves the stage out of the run
    limits: Callable[[BaseModel], tuple[str, ...]] = lambda params: ()  # what it does not do: the dataset card
    uses_torch: Callable[[BaseModel], bool] = _never  # from the params
    fasttext_models: Callable[[BaseModel], tuple[str, ...]] = lambda params: ()
    report: Callable[[RunContext, StageRef | None, StageRef], Any] | None = None  # -> flows.report.Section

    def __post_init__(self) -> None:
        object.__setattr__(self, "section", self.section or self.name)
        if not self.phases and self.corpus is None:
            object.__setattr__(
                self, "phases", (Phase(self.name, self.module.run, reads=self.reads, split=self.split),)
            )

    @property
    def version(self) -> int:
        return self.module.VERSION

    def params(self, cfg: BaseModel) -> BaseModel:
        return self.params_of(getattr(cfg, self.section))

    def plan(self, ctx: RunContext, upstream: StageRef | None) -> tuple[StageRef, ...]:
        """Every phase's ref, the stage's own last, as `run` writes them, without running anything."""
        plan = partial(MapCall.plan, ctx=ctx)
        if self.corpus is None:
            return self.chain(ctx, upstream, plan)
        _, phases, ref = corpus_refs(self, ctx, upstream, plan)
        return (*phases, ref)

    def run(self, ctx: RunContext, upstream: StageRef | None) -> StageRef:
        run = partial(MapCall.run, ctx=ctx)
        if self.corpus is None:
            return self.chain(ctx, upstream, run)[-1]
        return run_corpus(self, ctx, upstream, run)

    def chain(self, ctx: RunContext, upstream: StageRef | None, step: Step) -> tuple[StageRef, ...]:
        params, refs = self.params(ctx.cfg), []
        for phase in self.phases:
            if phase.when(params):
                upstream = step(MapCall(phase, self.version, params, upstream))
                refs.append(upstream)
        return tuple(refs)


@dataclass(frozen=True)
class Registry:
    """The stages of a curation in their default order; the first reads the input files."""

    stages: tuple[Stage, ...]
    _by_name: dict[str, Stage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        object.__setattr__(self, "_by_name", dict(zip(names, self.stages)))

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __getitem__(self, name: str) -> Stage:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def with_stage(self, stage: Stage, after: str) -> Registry:
        at = self.names.index(after) + 1
        return Registry(self.stages[:at] + (stage,) + self.stages[at:])

    def order(self, cfg: BaseModel) -> tuple[Stage, ...]:
        """The active stages after the first, in order, except that a stage's `needs` under `cfg` run
        before it."""
        ordered: dict[str, Stage] = {}

        def add(stage: Stage) -> None:
            if stage.name in ordered or not stage.active(stage.params(cfg)):
                return
            for name in stage.needs(cfg):
                add(self[name])
            ordered[stage.name] = stage

        for stage in self.stages[1:]:
            add(stage)
        return tuple(ordered.values())

    def warm_models(self, cfg: BaseModel) -> WarmModels:
        """Per worker: the fastText models the stages name (resolved now: a missing one fails before
        any cluster starts), and torch's thread count when a stage runs torch."""
        params = [(stage, stage.params(cfg)) for stage in self.stages if stage.active(stage.params(cfg))]
        fasttext = tuple(path for stage, p in params for path in stage.fasttext_models(p))
        torch = any(stage.uses_torch(p) for stage, p in params)
        return WarmModels(fasttext, cfg.run.cluster.threads_per_worker if torch else None)
