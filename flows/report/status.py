"""`winnow status`: where the run in progress and the last finished run stand, from the store's run
journals (`flows/engine/journal.py`) and shard files alone, never text, so it works from another
terminal, against a store on S3, and after a crash, when it says what a rerun will reuse.
"""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text

from flows.engine.journal import RUNS_DIR, alive, journals, reusable_shards
from flows.engine.publish import OutputDir
from flows.engine.store import ArtifactStore
from flows.report.live import duration, figure_parts
from tasks.errors import StoreError


def find_store(target: str) -> ArtifactStore:
    """The store at `target`, or the one an output at `target` was written with (its last run summary,
    else the default `<output>/.winnow-store`)."""
    target = target.rstrip("/")
    candidates = [target]
    summary = OutputDir(target).last_summary()
    if summary is not None:
        candidates.append(summary["store"])
    candidates.append(f"{target}/.winnow-store")
    for url in candidates:
        store = ArtifactStore(url)
        if store.fs.exists(f"{store.root}/{RUNS_DIR}"):
            return store
    raise StoreError(
        f"{target}: no run journal here, nor in the store of an output here ({', '.join(candidates[1:])}); "
        "pass the store a run wrote to (--store of `winnow run`), or start a run"
    )


def run_status(target: str) -> dict:
    """The latest run (running or not) and, when that one did not finish, the last one that did; each
    with its stages' states as status shows them."""
    store = find_store(target)
    runs = []
    for folder, journal in journals(store):
        runs.append(_describe(store, folder, journal))
        if journal["state"] == "finished":
            break
    return {"store": store.url, "runs": runs}


def _describe(store: ArtifactStore, folder: str, journal: dict) -> dict:
    running, how = alive(journal)
    age = time.time() - journal["updated_at"]
    stages = []
    for stage in journal["stages"]:
        row = {"stage": stage["name"], "state": stage["state"], "detail": ""}
        if stage["state"] in ("done", "cached"):
            row["state"] = "complete" + (" (cached)" if stage["state"] == "cached" else "")
            row["detail"] = f"{stage['docs_in']:,} → {stage['docs_out']:,} docs, {stage['seconds']:.1f} s"
        elif stage["state"] == "pending":
            row["state"] = "not started"
        elif stage["state"] == "running" and running:
            row["detail"] = _running_detail(stage, age)
        else:  # running when its run died, or failed: what a rerun finds
            row["state"] = "failed" if stage["state"] == "failed" else "interrupted"
            row["detail"] = _reuse_detail(store, folder, stage)
            if stage["error"]:
                row["detail"] += f"; {stage['error']}"
        stages.append(row)
    return {
        "run_id": journal["run_id"],
        "output": journal["output"],
        "state": how,
        "alive": running,
        "started_at": journal["started_at"],
        "updated_at": journal["updated_at"],
        "dashboard": journal.get("dashboard"),
        "error": journal.get("error", ""),
        "stages": stages,
    }


def _running_detail(stage: dict, age: float) -> str:
    if stage["step"]:
        return stage["step"]
    if not stage["phases"]:
        return "starting"
    phase = stage["phases"][-1]
    eta = None if phase["eta_s"] is None else max(phase["eta_s"] - age, 0.0)  # as of now, not of the journal
    return ", ".join([phase["name"], *figure_parts(phase | {"eta_s": eta})])


def _reuse_detail(store: ArtifactStore, folder: str, stage: dict) -> str:
    """Per map phase of a stage that did not finish: complete, or how many shards a rerun reuses."""
    parts = []
    for index, phase in enumerate(stage["phases"]):
        if store.fs.exists(f"{store.stage_dir(phase['name'], phase['key'])}/manifest.json"):
            parts.append(f"{phase['name']} complete")
            continue
        reused = reusable_shards(store, folder, stage["name"], index, phase)
        if reused is None:
            parts.append(f"{phase['name']}: recomputed whole (its shards are keyed by their output)")
        else:
            parts.append(f"{phase['name']}: a rerun reuses {reused} of {phase['shards']} shards")
    return "; ".join(parts) or "no shard started"


def status_renderable(status: dict):
    """The status as rich tables, one per run."""
    parts = [Text(f"store: {status['store']}")]
    if not status["runs"]:
        parts.append(Text("no run has written a journal here yet"))
    for run in status["runs"]:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started_at"]))
        took = "" if run["alive"] else f", last word {duration(run['updated_at'] - run['started_at'])} later"
        parts.append(Text(f"\nrun {run['run_id']} → {run['output']}: {run['state']} (started {started}{took})"))
        table = Table()
        for column in ("stage", "state", "detail"):
            table.add_column(column, overflow="fold")
        for row in run["stages"]:
            table.add_row(row["stage"], row["state"], row["detail"])
        parts.append(table)
        if run["alive"] and run["dashboard"]:
            parts.append(Text(f"Dask dashboard: {run['dashboard']}"))
        if run["error"]:
            parts.append(Text(f"error: {run['error']}"))
    return Group(*parts)
