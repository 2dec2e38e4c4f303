"""What progress reporting costs a whole run: `winnow run` cold on the same corpus under each display.

    .venv/bin/python bench/progress_cost.py 20000 [--rounds 2] [--modes bare,off,lines,live] [--every-s 30]
    .venv/bin/python bench/progress_cost.py --replay [--stages 15 --phases 2 --shards 24]

Builds an N-document corpus (bench/corpus.py), then runs `winnow run` in its own process, cold (a fresh
output and store each time), once per display mode per round, the order rotating every round so the
modes share the machine's drift. `live` runs under a pseudo-terminal, as a user at a terminal sees it;
`lines` with stderr to a pipe, as CI or cron; `off` is `--quiet`; `bare` is `--quiet` without the
Dask dashboard (bokeh in the scheduler). The run journal and the Prefect
progress artifacts are written in every mode: `bench/ab.py` against a commit before them measures
those. Prints each run's wall seconds, the median per mode, and each mode's ratio to `off`.

Whole-run walls on this machine vary by more than the cost itself, so `--replay` also measures the
flow process's CPU time per reporting act, with the real sinks and no cluster: a run of `--stages`
stages of `--phases` map phases of `--shards` shards each, every shard's stats fed to a `RunProgress`
whose sinks are the run journal (a local store), the plain lines and the live display (a terminal
console writing to /dev/null); then the live redraw and the one-second tick alone. The Prefect
artifact calls are not in it: one per computing phase and at most one a second, each an HTTP call to
the Prefect server, as before this change.
"""

from __future__ import annotations

import argparse
import errno
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from flows.engine.journal import RunJournal  # noqa: E402
from flows.engine.progress import RunProgress  # noqa: E402
from flows.engine.store import ArtifactStore, ShardRef, StageRef  # noqa: E402
from flows.report.live import LineDisplay, LiveDisplay  # noqa: E402

WINNOW = Path(sys.executable).parent / "winnow"
MODE_ARGS = {
    "bare": ["--quiet", "--set", "run.cluster.dashboard=null"],  # no display and no Dask dashboard
    "off": ["--quiet"],
    "lines": ["--set", "run.progress.display=lines"],
    "live": [],
}


def drain(fd: int) -> int:
    """Read a pseudo-terminal until its other end closes; the bytes read."""
    total = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return total
        if not chunk:
            return total
        total += len(chunk)


def timed_run(corpus: Path, out: Path, mode: str, every_s: float) -> tuple[float, int]:
    """Wall seconds of one cold `winnow run`, and the bytes of progress and logs it wrote to stderr."""
    command = [str(WINNOW), "run", "-i", str(corpus), "-o", str(out), "--set", f"run.progress.every_s={every_s}"]
    command += MODE_ARGS[mode]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    start = time.perf_counter()
    if mode == "live":
        master, slave = pty.openpty()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
        os.close(slave)
        written = drain(master)
        os.close(master)
        status = process.wait()
    else:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        status, written = done.returncode, len(done.stderr)
    seconds = time.perf_counter() - start
    if status:
        raise SystemExit(f"winnow run ({mode}) failed with exit {status}")
    return seconds, written


def replay(n_stages: int, n_phases: int, n_shards: int) -> None:
    """CPU seconds of the flow process per reporting act, with the real sinks (see the docstring)."""
    from rich.console import Console

    stats = {"shard": "part", "rows_in": 2_500, "rows_kept": 2_300, "text_bytes_in": 9_000_000, "drops": {"x:y": 200}}
    with tempfile.TemporaryDirectory(prefix="winnow-replay-") as tmp, open(os.devnull, "w") as null:
        store = ArtifactStore(f"{tmp}/store")
        console = Console(file=null, force_terminal=True, width=120)
        live = LiveDisplay(console)
        live.live.stop()  # its redraws are timed on their own below, not at rich's 2 a second
        journal = RunJournal(store, "replay", "out")
        sinks = [journal, LineDisplay(null, every_s=0.0), live]
        stages = [f"stage{i}" for i in range(n_stages)]
        progress = RunProgress(stages, sinks)
        start = time.process_time()
        for stage in stages:
            progress.stage_started(stage)
            for p in range(n_phases):
                name = f"{stage}.phase{p}"
                shards = tuple(ShardRef(f"part-{i}", f"{name}-{i}") for i in range(n_shards))
                progress.phase_started(StageRef(name, name, shards), todo=n_shards)
                for _ in range(n_shards):
                    progress.shard_finished(name, stats)
                progress.phase_finished(name)
            progress.stage_finished(stage, cached=False, docs_in=1, docs_out=1, seconds=1.0, shards_computed=n_shards)
        events = time.process_time() - start
        n_shard_events = n_stages * n_phases * n_shards
        progress.stage_started("stage0")
        progress.phase_started(StageRef("stage0.x", "k", (ShardRef("a", "a"),) * n_shards), todo=n_shards)
        progress.shard_finished("stage0.x", stats)
        start, renders = time.process_time(), 200
        for _ in range(renders):
            console.print(live)  # what a redraw renders: the running stage's bar and figures
        per_redraw = (time.process_time() - start) / renders
        start, writes = time.process_time(), 50
        for _ in range(writes):
            journal.write(progress)
        per_write = (time.process_time() - start) / writes
        start, ticks = time.process_time(), 200
        for _ in range(ticks):
            for sink in sinks:
                sink.tick(progress)
        per_tick = (time.process_time() - start) / ticks
        progress.close()
    print(f"replay: {n_stages} stages x {n_phases} phases x {n_shards} shards = {n_shard_events:,} shard events")
    print(
        f"  all events, journal + lines + live: {events * 1e3:.1f} ms CPU, "
        f"{events / n_shard_events * 1e3:.3f} ms a shard"
    )
    print(
        f"  journal write (each stage's start and end, each computing phase, 5 s heartbeat): {per_write * 1e3:.2f} ms"
    )
    print(f"  live redraw: {per_redraw * 1e3:.3f} ms CPU each (2 a second: {2 * per_redraw * 100:.2f}% of a core)")
    print(
        f"  one-second tick (lines, journal heartbeat): {per_tick * 1e3:.3f} ms CPU each "
        f"({per_tick * 100:.3f}% of a core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="?")
    parser.add_argument("--replay", action="store_true", help="CPU time per reporting act instead of whole runs")
    parser.add_argument("--stages", type=int, default=15)
    parser.add_argument("--phases", type=int, default=2)
    parser.add_argument("--shards", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="bare,off,lines,live")
    parser.add_argument("--every-s", type=float, default=30.0, help="run.progress.every_s of the lines mode")
    args = parser.parse_args()
    if args.replay:
        replay(args.stages, args.phases, args.shards)
        return
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="winnow-progress-") as tmp:
        corpus = Path(tmp) / "corpus"
        build_corpus(args.n_docs, corpus)
        seconds: dict[str, list[float]] = {mode: [] for mode in modes}
        for round_ in range(args.rounds):
            order = modes[round_ % len(modes) :] + modes[: round_ % len(modes)]
            for mode in order:
                wall, written = timed_run(corpus, Path(tmp) / f"out-{mode}-{round_}", mode, args.every_s)
                seconds[mode].append(wall)
                print(f"round {round_ + 1} {mode:>5}: {wall:7.1f} s wall, {written:,} bytes to stderr", flush=True)
    base = statistics.median(seconds["off"]) if "off" in seconds else None
    print(f"\n{args.n_docs:,} documents, cold runs, median of {args.rounds}:")
    for mode, walls in seconds.items():
        ratio = f"  {statistics.median(walls) / base:.3f}x off" if base else ""
        print(f"  {mode:>5}: {statistics.median(walls):7.1f} s{ratio}")


if __name__ == "__main__":
    main()
