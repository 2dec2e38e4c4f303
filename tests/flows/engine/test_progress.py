"""Run progress: what a finished shard adds, rates and the ETA, and sinks that fail or tick."""

from __future__ import annotations

import logging
import threading

import pytest

from flows.engine.progress import PhaseCounts, ProgressSink, RunProgress
from flows.engine.store import ShardRef, StageRef


def ref(stage: str, n: int) -> StageRef:
    return StageRef(stage, f"key-{stage}", tuple(ShardRef(f"s{i}", f"k{i}") for i in range(n)))


def shard(rows_in: int, rows_kept: int, text_bytes: int, drops: dict | None = None) -> dict:
    return {"rows_in": rows_in, "rows_kept": rows_kept, "text_bytes_in": text_bytes, "drops": drops or {}}


class Recorder(ProgressSink):
    def __init__(self):
        self.events = []

    def stage_started(self, run, stage):
        self.events.append(("stage_started", stage.name))

    def phase_started(self, run, stage, phase, ref):
        self.events.append(("phase_started", phase.name, phase.todo))

    def shard_finished(self, run, stage, phase, stats):
        self.events.append(("shard", phase.name, phase.done))

    def stage_finished(self, run, stage):
        self.events.append(("stage_finished", stage.name, stage.state))

    def close(self, run):
        self.events.append(("close", run.state))


def test_finished_shards_add_documents_bytes_and_drops_to_the_running_phase():
    recorder = Recorder()
    progress = RunProgress(["clean"], [recorder])

    progress.stage_started("clean")
    progress.phase_started(ref("clean.signals", 4), todo=3)
    progress.shard_finished("clean.signals", shard(100, 100, 5_000))
    progress.shard_finished("clean.signals", shard(50, 40, 2_000, {"c4:curly_bracket": 6, "gopher_quality:x": 4}))
    progress.shard_finished("clean.signals", None)  # a failed shard

    phase = progress.stages["clean"].phase
    assert (phase.shards, phase.cached, phase.done, phase.failed) == (4, 1, 2, 1)
    assert (phase.docs, phase.kept, phase.bytes, phase.dropped) == (150, 140, 7_000, 10)
    assert recorder.events[:3] == [
        ("stage_started", "clean"),
        ("phase_started", "clean.signals", 3),
        ("shard", "clean.signals", 1),
    ]


def test_an_input_files_counts_are_all_its_parts_not_its_first():
    progress = RunProgress(["read"])
    progress.stage_started("read")
    progress.phase_started(ref("read", 1), todo=1)
    part0 = shard(10, 9, 100, {"read:invalid_json": 1})
    progress.shard_finished(
        "read",
        part0 | {"file": {"rows_in": 30, "rows_kept": 27, "text_bytes_in": 300, "drops": {"read:invalid_json": 3}}},
    )

    phase = progress.stages["read"].phase
    assert (phase.docs, phase.kept, phase.bytes, phase.dropped) == (30, 27, 300, 3)


def test_rates_and_eta_follow_the_shards_this_run_finished():
    phase = PhaseCounts("toxicity", "k", shards=10, cached=2, started=100.0)
    assert phase.eta_s(now=110.0) is None  # nothing finished yet: no pace to go by

    phase.done, phase.docs, phase.bytes = 2, 400, 4_000_000
    assert phase.docs_per_s(now=110.0) == pytest.approx(40.0)
    assert phase.bytes_per_s(now=110.0) == pytest.approx(400_000.0)
    assert phase.eta_s(now=110.0) == pytest.approx(30.0)  # 6 shards left at 5 s each

    phase.done = 8
    assert phase.eta_s(now=120.0) == 0.0


def test_a_failing_sink_is_logged_and_the_run_goes_on(caplog):
    class Broken(ProgressSink):
        def phase_started(self, run, stage, phase, ref):
            raise OSError("the Prefect API is down")

    recorder = Recorder()
    progress = RunProgress(["quality"], [Broken(), recorder])
    progress.stage_started("quality")
    with caplog.at_level(logging.WARNING, logger="winnow.progress"):
        progress.phase_started(ref("quality", 2), todo=2)

    assert "Broken.phase_started failed: OSError: the Prefect API is down" in caplog.text
    assert ("phase_started", "quality", 2) in recorder.events  # the next sink still heard it


def test_the_ticker_ticks_every_sink_until_the_run_closes_and_an_error_marks_it_failed():
    ticked = threading.Event()

    class Ticks(Recorder):
        def tick(self, run):
            ticked.set()

    sink = Ticks()
    with pytest.raises(RuntimeError):
        with RunProgress(["read"], [sink], tick_s=0.01) as progress:
            assert ticked.wait(5)
            raise RuntimeError("a stage failed")

    assert progress.state == "failed" and progress.error == "RuntimeError: a stage failed"
    assert sink.events[-1] == ("close", "failed")
    assert not progress._ticker.is_alive()


def test_a_map_outside_any_stage_is_counted_under_its_phase_prefix():
    """A bench or a calibration flow maps phases without the curate flow's stage marks."""
    progress = RunProgress()
    progress.phase_started(ref("dedup_fuzzy.bands", 2), todo=2)
    progress.shard_finished("dedup_fuzzy.bands", shard(5, 5, 0))

    assert progress.stages["dedup_fuzzy"].phase.done == 1
