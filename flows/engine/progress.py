"""What a run reports while it runs: per stage and map phase, shards finished, documents and bytes
read, documents dropped, rates and an ETA.

The executor feeds `RunProgress` shard by shard, from the stats a finished shard returns anyway (no
store read); the flow marks stages' starts and ends. Sinks show or keep the figures: the terminal
display (`flows/report/live.py`), the run journal `winnow status` reads (`flows/engine/journal.py`),
the Prefect progress artifact (`flows/orchestration/curate.py`). No Prefect here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from flows.engine.store import StageRef

log = logging.getLogger("winnow.progress")


def shard_counts(stats: dict) -> dict:
    """What a finished shard's stats count (an input file's: all its parts, under `file`), with
    `dropped`, its rejected documents."""
    counts = stats.get("file") or stats
    return {
        "rows_in": counts.get("rows_in", 0),
        "rows_kept": counts.get("rows_kept", 0),
        "text_bytes_in": counts.get("text_bytes_in", 0),
        "dropped": sum(counts.get("drops", {}).values()),
    }


@dataclass
class PhaseCounts:
    """One map over a stage's shards (`clean.signals`, `clean`), as far as it got.

    `reuse` says how a rerun finds this phase's finished work: by shard (`shards`), by input file
    (`files`: the read stage), or not at all (`none`: shards keyed by their output, recomputed whole).
    """

    name: str
    key: str
    shards: int  # in all
    cached: int  # complete before this run started it
    reuse: str = "shards"
    done: int = 0  # computed by this run
    failed: int = 0
    docs: int = 0  # documents read by the computed shards
    kept: int = 0
    bytes: int = 0  # text bytes read
    dropped: int = 0  # documents rejected, with a reason
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def todo(self) -> int:
        return self.shards - self.cached

    def elapsed(self, now: float | None = None) -> float:
        return (self.finished or now or time.monotonic()) - self.started

    def docs_per_s(self, now: float | None = None) -> float:
        return self.docs / max(self.elapsed(now), 1e-9)

    def bytes_per_s(self, now: float | None = None) -> float:
        return self.bytes / max(self.elapsed(now), 1e-9)

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left at the pace of the shards this run finished; None before the first.

        By shards, not documents: bounded read parts keep shards of like size, and the documents
        still to come are known only by reading every upstream shard's stats."""
        if self.finished is not None or self.done >= self.todo:
            return 0.0
        if self.done == 0:
            return None
        return self.elapsed(now) * (self.todo - self.done) / self.done

    def figures(self, now: float | None = None) -> dict:
        """The counts and rates as plain data (the journal, the Prefect artifact)."""
        eta = self.eta_s(now)
        return {
            "name": self.name,
            "key": self.key,
            "shards": self.shards,
            "cached": self.cached,
            "done": self.done,
            "failed": self.failed,
            "reuse": self.reuse,
            "docs": self.docs,
            "kept": self.kept,
            "bytes": self.bytes,
            "dropped": self.dropped,
            "seconds": round(self.elapsed(now), 3),
            "docs_per_s": round(self.docs_per_s(now), 1),
            "bytes_per_s": round(self.bytes_per_s(now), 1),
            "eta_s": None if eta is None else round(eta, 1),
            "finished": self.finished is not None,
        }


@dataclass
class StageStatus:
    """A stage of the run: pending, running, done, cached or failed, with its phases so far."""

    name: str
    state: str = "pending"
    phases: list[PhaseCounts] = field(default_factory=list)
    step: str = ""  # a corpus-wide step between map phases ("clusters"), while it runs
    started: float | None = None
    # from the stage's funnel row, once it finished
    docs_in: int = 0
    docs_out: int = 0
    seconds: float = 0.0
    shards_computed: int = 0
    error: str = ""

    @property
    def phase(self) -> PhaseCounts | None:
        return self.phases[-1] if self.phases else None

    @property
    def dropped(self) -> int:
        return sum(phase.dropped for phase in self.phases)

    def figures(self, now: float | None = None) -> dict:
        return {
            "name": self.name,
            "state": self.state,
            "step": self.step,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "dropped": self.dropped if self.state == "running" else self.docs_in - self.docs_out,
            "seconds": round(self.seconds or (time.monotonic() - self.started if self.started else 0.0), 3),
            "shards_computed": self.shards_computed,
            "error": self.error,
            "phases": [phase.figures(now) for phase in self.phases],
        }


class ProgressSink:
    """Where progress goes. Every hook is called under the run's lock, from the flow's thread or
    (`tick`) the ticker's: keep them quick. The default does nothing."""

    def stage_started(self, run: RunProgress, stage: StageStatus) -> None: ...

    def stage_finished(self, run: RunProgress, stage: StageStatus) -> None: ...

    def phase_started(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts, ref: StageRef) -> None: ...

    def shard_finished(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts, stats: dict) -> None: ...

    def phase_finished(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts) -> None: ...

    def dashboard(self, run: RunProgress, link: str) -> None: ...

    def tick(self, run: RunProgress) -> None: ...

    def close(self, run: RunProgress) -> None: ...


class RunProgress:
    """The figures of one run as it goes, fanned out to `sinks`; with `tick_s`, a daemon thread calls
    every sink's `tick` that often, so a display and the journal move while a long shard runs.

    Used as a context manager: the ticker stops and every sink closes on exit, with the run `failed`
    when an exception left the block.
    """

    def __init__(self, stages: Sequence[str] = (), sinks: Sequence[ProgressSink] = (), tick_s: float | None = None):
        self.stages: dict[str, StageStatus] = {name: StageStatus(name) for name in stages}
        self.sinks = list(sinks)
        self.state = "running"
        self.error = ""
        self.dashboard_link: str | None = None
        self.started = time.time()
        self._running: StageStatus | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker = None
        if tick_s:
            self._ticker = threading.Thread(target=self._tick, args=(tick_s,), name="winnow-progress", daemon=True)
            self._ticker.start()

    # what the flow reports -----------------------------------------------------------------------
    def stage_started(self, name: str) -> None:
        with self._lock:
            stage = self.stages.setdefault(name, StageStatus(name))
            stage.state, stage.started, stage.phases = "running", time.monotonic(), []
            self._running = stage
            self._each("stage_started", stage)

    def stage_finished(
        self, name: str, *, cached: bool, docs_in: int, docs_out: int, seconds: float, shards_computed: int
    ) -> None:
        with self._lock:
            stage = self.stages.setdefault(name, StageStatus(name))
            stage.state, stage.step = ("cached" if cached else "done"), ""
            stage.docs_in, stage.docs_out, stage.seconds = docs_in, docs_out, seconds
            stage.shards_computed = shards_computed
            self._running = None
            self._each("stage_finished", stage)

    def stage_failed(self, name: str, error: BaseException) -> None:
        with self._lock:
            stage = self.stages.setdefault(name, StageStatus(name))
            stage.state, stage.error = "failed", f"{type(error).__name__}: {error}"[:500]
            self._running = None
            self._each("stage_finished", stage)

    # what the engine reports ---------------------------------------------------------------------
    def phase_started(self, ref: StageRef, todo: int, reuse: str = "shards") -> None:
        """A map over `ref.shards`, `todo` of them not yet complete."""
        with self._lock:
            stage = self._stage_of(ref.stage)
            phase = PhaseCounts(ref.stage, ref.key, len(ref.shards), len(ref.shards) - todo, reuse)
            stage.phases.append(phase)
            stage.step = ""
            self._each("phase_started", stage, phase, ref)

    def shard_finished(self, name: str, stats: dict | None) -> None:
        """A shard of the running phase `name` finished (`stats`: what `run_shard` returned) or failed (None)."""
        with self._lock:
            stage = self._stage_of(name)
            phase = stage.phase
            if phase is None or phase.name != name:
                return
            if stats is None:
                phase.failed += 1
            else:
                counts = shard_counts(stats)
                phase.done += 1
                phase.docs += counts["rows_in"]
                phase.kept += counts["rows_kept"]
                phase.bytes += counts["text_bytes_in"]
                phase.dropped += counts["dropped"]
            self._each("shard_finished", stage, phase, stats or {})

    def phase_finished(self, name: str) -> None:
        with self._lock:
            stage = self._stage_of(name)
            if stage.phase is not None and stage.phase.name == name:
                stage.phase.finished = time.monotonic()
                self._each("phase_finished", stage, stage.phase)

    def step(self, name: str, label: str) -> None:
        """A corpus-wide step of stage `name` between its maps (clusters, index), which has no shards to count."""
        with self._lock:
            self._stage_of(name).step = label

    def cluster_started(self, dashboard_link: str | None) -> None:
        with self._lock:
            self.dashboard_link = dashboard_link
            if dashboard_link:
                self._each("dashboard", dashboard_link)

    # reading -------------------------------------------------------------------------------------
    @property
    def running(self) -> StageStatus | None:
        return self._running

    def figures(self) -> dict:
        with self._lock:
            now = time.monotonic()
            return {
                "state": self.state,
                "error": self.error,
                "dashboard": self.dashboard_link,
                "stages": [stage.figures(now) for stage in self.stages.values()],
            }

    # lifetime ------------------------------------------------------------------------------------
    def close(self, error: BaseException | None = None) -> None:
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=5)
        with self._lock:
            if self.state != "running":
                return
            self.state = "failed" if error is not None else "finished"
            if error is not None:
                self.error = f"{type(error).__name__}: {error}"[:500]
            self._each("close")

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)

    def _stage_of(self, phase: str) -> StageStatus:
        """The running stage, or, for a map outside a stage (a bench, a calibration flow), one named
        by the phase's prefix."""
        if self._running is not None:
            return self._running
        name = phase.split(".", 1)[0]
        return self.stages.setdefault(name, StageStatus(name, "running", started=time.monotonic()))

    def _each(self, hook: str, *args) -> None:
        """Every sink's hook; one that fails (an API call, a store write) is logged, and the run goes on:
        progress is never worth a curation."""
        for sink in self.sinks:
            try:
                getattr(sink, hook)(self, *args)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.warning("progress: %s.%s failed: %s: %s", type(sink).__name__, hook, type(exc).__name__, exc)

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                self._each("tick")
