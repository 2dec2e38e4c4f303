"""A run's progress in the terminal: a redrawn line per running stage on a terminal (rich), plain
periodic lines elsewhere (CI, cron, a served run's log).

Both show, for the stage's current map phase: shards finished of all, documents and bytes per second,
documents dropped so far and the ETA; a finished stage collapses into one line of the funnel. They
read only what `RunProgress` holds: no store, no text.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from flows.engine.progress import PhaseCounts, ProgressSink, RunProgress, StageStatus, shard_counts

LIVE_REFRESH_PER_S = 2  # the redraw; the figures change when a shard ends, which is seldom more often


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def figure_parts(figures: dict) -> list[str]:
    """A phase's figures (`PhaseCounts.figures`, as the journal keeps them) as words: `12/24 shards`,
    `1,234 docs/s`, `3.2 MB/s`, `1,024 dropped`, `ETA 12 s` (cached shards count as finished)."""
    parts = [f"{figures['cached'] + figures['done']}/{figures['shards']} shards"]
    if figures["done"]:
        parts.append(f"{figures['docs_per_s']:,.0f} docs/s")
        if figures["bytes_per_s"]:
            parts.append(f"{human_bytes(figures['bytes_per_s'])}/s")
        parts.append(f"{figures['dropped']:,} dropped")
    if figures["failed"]:
        parts.append(f"{figures['failed']} failed")
    eta = figures["eta_s"]
    parts.append("ETA …" if eta is None else f"ETA {duration(eta)}")
    return parts


def phase_figures(phase: PhaseCounts, now: float | None = None) -> str:
    """`12/24 shards · 1,234 docs/s · 3.2 MB/s · 1,024 dropped · ETA 12 s`."""
    return " · ".join(figure_parts(phase.figures(now)))


def running_line(stage: StageStatus, now: float | None = None) -> str:
    """The running stage, its current phase and its figures, or the corpus-wide step it is in."""
    phase = stage.phase
    if stage.step:
        return f"{stage.name}: {stage.step}"
    if phase is None:
        return f"{stage.name}: starting"
    label = stage.name if phase.name == stage.name else f"{stage.name} · {phase.name.partition('.')[2]}"
    return f"{label}: {phase_figures(phase, now)}"


def finished_line(stage: StageStatus) -> str:
    """The stage's row of the funnel, as it ends."""
    if stage.state == "failed":
        return f"✗ {stage.name}: failed: {stage.error}"
    if stage.state == "cached":
        return f"· {stage.name}: cached ({stage.docs_in:,} → {stage.docs_out:,} docs)"
    rate = f", {stage.docs_in / stage.seconds:,.0f} docs/s" if stage.seconds > 0 else ""
    return (
        f"✓ {stage.name}: {stage.docs_in:,} → {stage.docs_out:,} docs ({stage.docs_in - stage.docs_out:,} dropped), "
        f"{stage.shards_computed} shards computed, {stage.seconds:.1f} s{rate}"
    )


class LiveDisplay(ProgressSink):
    """rich's live display on `console`: a line per running stage with a bar of its shards; each
    finished stage printed above it as one line. The redraw reads a copy of the running stages taken
    at each change, never the run's state itself (the redraw thread holds rich's lock)."""

    def __init__(self, console: Console, shards: bool = False):
        self.console = console
        self.shards = shards
        self._running: list[StageStatus] = []
        # the display is this object, rendered afresh each time rich draws it (`__rich__`): a line printed
        # above it never redraws a stale copy
        self.live = Live(self, console=console, refresh_per_second=LIVE_REFRESH_PER_S, transient=True)
        self.live.start()

    def __rich__(self):
        if not self._running:
            return Group()  # no line at all between stages
        now = time.monotonic()
        grid = Table.grid(padding=(0, 1))
        for stage in self._running:
            phase = stage.phase
            done = 0 if phase is None else phase.cached + phase.done
            bar = ProgressBar(total=max(phase.shards, 1) if phase else 1, completed=done, width=12)
            grid.add_row(bar, Text(running_line(stage, now), no_wrap=True, overflow="ellipsis"))
        return Group(grid)

    def _copy(self, run: RunProgress) -> None:
        stage = run.running
        self._running = [] if stage is None else [replace(stage, phases=[replace(p) for p in stage.phases[-1:]])]

    def stage_started(self, run, stage):
        self._copy(run)

    def phase_started(self, run, stage, phase, ref):
        self._copy(run)

    def shard_finished(self, run, stage, phase, stats):
        self._copy(run)
        if self.shards and stats:
            self.console.print(shard_line(phase.name, stats), highlight=False)

    def phase_finished(self, run, stage, phase):
        self._copy(run)

    def tick(self, run):
        self._copy(run)  # a corpus-wide step shows as it starts

    def stage_finished(self, run, stage):
        self._copy(run)
        self.console.print(finished_line(stage), highlight=False)

    def dashboard(self, run, link):
        self.console.print(f"Dask dashboard: {link}", highlight=False)

    def close(self, run):
        self._running = []
        self.live.stop()


class LineDisplay(ProgressSink):
    """Plain lines on `stream`: a phase as it starts computing, the running stage every `every_s`
    seconds, each stage as it ends, and with `shards` each finished shard."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 30.0, shards: bool = False):
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.shards = shards
        self._last = time.monotonic()

    def _line(self, text: str) -> None:
        self.stream.write(f"{time.strftime('%H:%M:%S')} | progress | {text}\n")
        self.stream.flush()

    def phase_started(self, run, stage, phase, ref):
        if phase.todo:
            self._line(f"{phase.name}: {phase.todo} of {phase.shards} shards to compute")
            self._last = time.monotonic()

    def shard_finished(self, run, stage, phase, stats):
        if self.shards and stats:
            self._line(shard_line(phase.name, stats))

    def tick(self, run):
        stage = run.running
        if stage is not None and time.monotonic() - self._last >= self.every_s:
            self._line(running_line(stage))
            self._last = time.monotonic()

    def stage_finished(self, run, stage):
        self._line(finished_line(stage))

    def dashboard(self, run, link):
        self._line(f"Dask dashboard: {link}")


def shard_line(phase: str, stats: dict) -> str:
    counts = shard_counts(stats)
    return (
        f"{phase}: shard {stats.get('shard', '?')}: {counts['rows_in']:,} docs, {counts['dropped']:,} dropped, "
        f"{stats.get('seconds', 0.0):.2f} s{' (found complete)' if stats.get('reused') else ''}"
    )


def terminal_display(mode: str, every_s: float, shards: bool, stream: TextIO | None = None) -> ProgressSink | None:
    """The display `run.progress.display` asks for; `auto` is live only when `stream` (stderr) is a terminal."""
    stream = stream or sys.stderr
    if mode == "off":
        return None
    if mode == "auto":
        mode = "live" if stream.isatty() else "lines"
    if mode == "live":
        return LiveDisplay(Console(file=stream), shards)
    return LineDisplay(stream, every_s, shards)
