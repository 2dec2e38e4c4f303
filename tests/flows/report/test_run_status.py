"""`winnow status` from the run journal: a live run's figures, an interrupted run's reusable shards,
the last finished run, and where an output's store is."""

from __future__ import annotations

import json
import time

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from flows.engine.journal import RunJournal, journals
from flows.engine.progress import RunProgress
from flows.engine.store import ArtifactStore, ShardRef, StageRef
from flows.report.status import run_status
from tasks.errors import StoreError


def ref(stage: str, n: int) -> StageRef:
    return StageRef(stage, f"key-{stage}", tuple(ShardRef(f"part-{i}", f"{stage}-k{i}") for i in range(n)))


def finish_shard(store: ArtifactStore, stage: str, shard: ShardRef) -> dict:
    """A shard as the executor leaves it complete: its files, then its stats."""
    store.write_table(store.kept_path(stage, shard), pa.table({"id": ["a"]}))
    stats = {"shard": shard.name, "rows_in": 100, "rows_kept": 90, "text_bytes_in": 10_000, "drops": {"c4:x": 10}}
    store.write_json(store.stats_path(stage, shard), stats)
    return stats


def run_until_clean(
    store: ArtifactStore, output: str, run_id: str = "run-1", flush: bool = True
) -> tuple[RunProgress, RunJournal]:
    """A run whose `read` finished and whose `clean.signals` finished 2 of its 3 shards; with `flush`,
    its journal written after the last shard (the heartbeat), else as the journal wrote it itself."""
    journal = RunJournal(store, run_id, output)
    progress = RunProgress(["read", "clean", "quality"], [journal])
    progress.stage_started("read")
    progress.phase_started(ref("read", 2), todo=0)
    progress.phase_finished("read")
    progress.stage_finished("read", cached=True, docs_in=200, docs_out=200, seconds=0.1, shards_computed=0)
    progress.stage_started("clean")
    signals = ref("clean.signals", 3)
    progress.phase_started(signals, todo=3)
    for shard in signals.shards[:2]:
        progress.shard_finished("clean.signals", finish_shard(store, "clean.signals", shard))
    if flush:
        journal.write(progress)
    return progress, journal


def journal_file(store: ArtifactStore) -> str:
    (folder, _), *_ = journals(store)
    return f"{folder}/journal.json"


def test_a_live_run_shows_its_running_phase_with_shards_rates_and_eta(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    run_until_clean(store, str(tmp_path / "out"))

    (run,) = run_status(store.url)["runs"]

    assert run["alive"] and run["state"].startswith("running (pid ")
    rows = {row["stage"]: row for row in run["stages"]}
    assert rows["read"]["state"] == "complete (cached)"
    assert rows["clean"]["state"] == "running"
    assert rows["clean"]["detail"].startswith("clean.signals, 2/3 shards, ")
    assert "docs/s" in rows["clean"]["detail"] and "20 dropped" in rows["clean"]["detail"]
    assert "ETA " in rows["clean"]["detail"]
    assert rows["quality"]["state"] == "not started"


def test_an_interrupted_run_says_what_a_rerun_reuses_and_the_last_finished_run_follows(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    with RunProgress(["read"], [RunJournal(store, "run-0", "out", started=time.time() - 60)]) as earlier:
        earlier.stage_started("read")
        earlier.stage_finished("read", cached=False, docs_in=200, docs_out=198, seconds=3.0, shards_computed=2)
    # killed within the heartbeat after its phase started: the journal's own writes must name the phase
    run_until_clean(store, "out", flush=False)
    path = journal_file(store)
    journal = store.read_json(path)
    store.write_json(path, journal | {"pid_started": journal["pid_started"] - 100})  # its process is gone

    latest, finished = run_status(store.url)["runs"]

    assert not latest["alive"] and latest["state"] == f"interrupted: its process {journal['pid']} is gone"
    rows = {row["stage"]: row for row in latest["stages"]}
    assert rows["clean"]["state"] == "interrupted"
    assert rows["clean"]["detail"] == "clean.signals: a rerun reuses 2 of 3 shards"
    assert finished["run_id"] == "run-0" and finished["state"] == "finished"
    assert finished["stages"][0]["detail"] == "200 → 198 docs, 3.0 s"


def test_a_run_on_another_host_is_judged_by_its_heartbeat(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    run_until_clean(store, "out")
    path = journal_file(store)
    store.write_json(path, store.read_json(path) | {"host": "elsewhere", "updated_at": time.time() - 600})

    (run,) = run_status(store.url)["runs"]

    assert not run["alive"] and run["state"] == "no word for 600 s from elsewhere: interrupted?"


def test_a_finished_phase_leaves_no_shard_list_behind(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    progress, _ = run_until_clean(store, "out")
    (folder, _), *_ = journals(store)
    assert store.fs.exists(f"{folder}/clean-0.json")

    progress.phase_finished("clean.signals")

    assert not store.fs.exists(f"{folder}/clean-0.json")


def test_an_output_leads_to_its_store_by_its_summary_or_the_default(tmp_path):
    elsewhere = ArtifactStore(str(tmp_path / "shared-store"))
    run_until_clean(elsewhere, str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run_summary.json").write_text(json.dumps({"store": elsewhere.url}))
    assert run_status(str(tmp_path / "out"))["store"] == elsewhere.url

    default = ArtifactStore(str(tmp_path / "out2" / ".winnow-store"))
    run_until_clean(default, str(tmp_path / "out2"))
    assert run_status(str(tmp_path / "out2"))["store"] == default.url

    with pytest.raises(StoreError, match="no run journal here"):
        run_status(str(tmp_path / "nothing"))


def test_the_status_command_prints_each_stage(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    run_until_clean(store, "out")

    result = CliRunner().invoke(app, ["status", store.url])

    assert result.exit_code == 0, result.output
    assert "clean.signals, 2/3 shards" in result.output and "not started" in result.output
    missing = CliRunner().invoke(app, ["status", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no run journal here" in missing.output
