"""The run journal: how far a run got, kept in the store, so `winnow status` can tell from another
terminal, or another machine when the store is an object store, without a Prefect API.

    <store>/_runs/<run>/journal.json         the run and its stages' figures (`RunProgress.figures`),
                                             rewritten as each stage starts and ends, as each map phase
                                             starts computing, and at most every HEARTBEAT_S seconds
                                             between; `updated_at` is its heartbeat
    <store>/_runs/<run>/<stage>-<k>.json     the shards (name, key) of the stage's k-th map phase, from its
                                             start to its end: what a rerun finds finished after a crash

`<run>` sorts by start time. Only metadata: the journal never holds or reads text.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence

import psutil

from flows.engine.progress import PhaseCounts, ProgressSink, RunProgress, StageStatus
from flows.engine.store import ArtifactStore, ShardRef, StageRef

RUNS_DIR = "_runs"
JOURNAL = "journal.json"
HEARTBEAT_S = 5.0  # a `winnow status` is at most this stale while a run lives
KEEP_RUNS = 100  # journals kept per store; older ones are removed as a run starts


def run_name(run_id: str, started: float) -> str:
    """`20261207T140512Z-3f9a1c2e`: sortable by start time, unique by run."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{run_id.replace('-', '')[:8]}"


def phase_file(stage: str, index: int) -> str:
    return f"{stage}-{index}.json"


class RunJournal(ProgressSink):
    """Writes the journal of one run as its progress changes (a `ProgressSink`)."""

    def __init__(self, store: ArtifactStore, run_id: str, output: str, started: float | None = None):
        started = started or time.time()
        self.store = store
        self.dir = f"{store.root}/{RUNS_DIR}/{run_name(run_id, started)}"
        me = psutil.Process()
        self.meta = {
            "run_id": run_id,
            "output": output,
            "store": store.url,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_started": me.create_time(),
            "started_at": started,
        }
        self._written = 0.0
        prune_journals(store)

    def write(self, run: RunProgress, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._written < HEARTBEAT_S:
            return
        self.store.write_json(f"{self.dir}/{JOURNAL}", self.meta | run.figures() | {"updated_at": time.time()})
        self._written = now

    def stage_started(self, run: RunProgress, stage: StageStatus) -> None:
        self.write(run)

    def stage_finished(self, run: RunProgress, stage: StageStatus) -> None:
        self.write(run)

    def phase_started(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts, ref: StageRef) -> None:
        if phase.todo:  # a complete phase has a manifest: nothing to resume
            shards = [[shard.name, shard.key] for shard in ref.shards]
            self.store.write_json(f"{self.dir}/{phase_file(stage.name, len(stage.phases) - 1)}", {"shards": shards})
        # a computing phase is on record at once: a crash in its first seconds still says what it reuses
        self.write(run, force=bool(phase.todo))

    def shard_finished(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts, stats: dict) -> None:
        self.write(run, force=False)

    def phase_finished(self, run: RunProgress, stage: StageStatus, phase: PhaseCounts) -> None:
        """A finished phase has its manifest: its shard list is not needed again (and at crawl scale is large)."""
        path = f"{self.dir}/{phase_file(stage.name, len(stage.phases) - 1)}"
        if phase.todo and self.store.fs.exists(path):
            self.store.fs.rm(path)

    def dashboard(self, run: RunProgress, link: str) -> None:
        self.write(run)

    def tick(self, run: RunProgress) -> None:
        self.write(run, force=False)

    def close(self, run: RunProgress) -> None:
        self.write(run)


def prune_journals(store: ArtifactStore, keep: int = KEEP_RUNS) -> None:
    root = f"{store.root}/{RUNS_DIR}"
    if not store.fs.exists(root):
        return
    for old in sorted(store.fs.ls(root, detail=False))[:-keep]:
        store.fs.rm(old, recursive=True)


def journals(store: ArtifactStore) -> list[tuple[str, dict]]:
    """Every run's journal in the store, newest first, with its folder."""
    root = f"{store.root}/{RUNS_DIR}"
    if not store.fs.exists(root):
        return []
    found = []
    for folder in sorted(store.fs.ls(root, detail=False), reverse=True):
        path = f"{folder}/{JOURNAL}"
        if store.fs.exists(path):
            found.append((folder, store.read_json(path)))
    return found


def reusable_shards(store: ArtifactStore, folder: str, stage: str, index: int, phase: dict) -> int | None:
    """How many of an unfinished phase's shards a rerun finds complete (None: shards keyed by their
    output, which a rerun computes again; they are cheap by design)."""
    if phase["reuse"] == "none":
        return None
    path = f"{folder}/{phase_file(stage, index)}"
    if not store.fs.exists(path):
        return phase["cached"]
    complete = store.file_complete if phase["reuse"] == "files" else store.shard_complete
    shards: Sequence[list[str]] = store.read_json(path)["shards"]
    return sum(complete(phase["name"], ShardRef(name, key)) for name, key in shards)


def alive(journal: dict, stale_after: float = max(60.0, 6 * HEARTBEAT_S)) -> tuple[bool, str]:
    """Whether the run that writes this journal still runs, and how that was told: by its process on
    this host, else by the age of its heartbeat."""
    if journal["state"] != "running":
        return False, journal["state"]
    age = time.time() - journal["updated_at"]
    if journal["host"] == socket.gethostname():
        try:
            same = abs(psutil.Process(journal["pid"]).create_time() - journal["pid_started"]) < 1.0
        except psutil.NoSuchProcess:
            same = False
        if not same:
            return False, f"interrupted: its process {journal['pid']} is gone"
        return True, f"running (pid {journal['pid']}, updated {age:.0f} s ago)"
    if age > stale_after:
        return False, f"no word for {age:.0f} s from {journal['host']}: interrupted?"
    return True, f"running on {journal['host']} (updated {age:.0f} s ago)"
