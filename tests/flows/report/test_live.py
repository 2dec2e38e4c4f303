"""The terminal's progress: a live line per running stage (rich) and plain lines for logs."""

from __future__ import annotations

import io

from rich.console import Console

from flows.engine.progress import RunProgress
from flows.engine.store import ShardRef, StageRef
from flows.report.live import LineDisplay, LiveDisplay, phase_figures, terminal_display


def ref(stage: str, n: int) -> StageRef:
    return StageRef(stage, "k", tuple(ShardRef(f"part-{i}", f"k{i}") for i in range(n)))


def stats(name: str, rows: int, dropped: int) -> dict:
    return {
        "shard": name,
        "rows_in": rows,
        "rows_kept": rows - dropped,
        "text_bytes_in": rows * 2_000,
        "drops": {"c4:curly_bracket": dropped},
        "seconds": 1.5,
    }


def run_clean(progress: RunProgress, finish: bool = True) -> None:
    progress.stage_started("clean")
    progress.phase_started(ref("clean.signals", 4), todo=4)
    progress.shard_finished("clean.signals", stats("part-0", 1_000, 30))
    progress.shard_finished("clean.signals", stats("part-1", 1_000, 20))
    if finish:
        progress.phase_finished("clean.signals")
        progress.stage_finished("clean", cached=False, docs_in=4_000, docs_out=3_800, seconds=8.0, shards_computed=4)


def test_plain_lines_say_what_starts_how_far_a_running_stage_got_and_each_stage_as_it_ends():
    out = io.StringIO()
    display = LineDisplay(out, every_s=0.0, shards=True)
    progress = RunProgress(["clean"], [display])

    run_clean(progress, finish=False)
    display.tick(progress)
    progress.stage_finished("clean", cached=False, docs_in=4_000, docs_out=3_800, seconds=8.0, shards_computed=4)
    progress.stage_started("quality")
    progress.stage_finished("quality", cached=True, docs_in=3_800, docs_out=3_800, seconds=0.1, shards_computed=0)

    lines = [line.split(" | progress | ")[1] for line in out.getvalue().splitlines()]
    assert lines[0] == "clean.signals: 4 of 4 shards to compute"
    assert lines[1] == "clean.signals: shard part-0: 1,000 docs, 30 dropped, 1.50 s"
    assert lines[3].startswith("clean · signals: 2/4 shards · ") and " docs/s · " in lines[3] and "B/s · " in lines[3]
    assert "50 dropped · ETA " in lines[3]
    assert lines[4] == "✓ clean: 4,000 → 3,800 docs (200 dropped), 4 shards computed, 8.0 s, 500 docs/s"
    assert lines[5] == "· quality: cached (3,800 → 3,800 docs)"


def test_plain_lines_between_shards_come_no_more_often_than_asked():
    out = io.StringIO()
    display = LineDisplay(out, every_s=3600.0)
    progress = RunProgress(["clean"], [display])
    run_clean(progress, finish=False)
    for _ in range(5):
        display.tick(progress)

    assert len(out.getvalue().splitlines()) == 1  # only the phase's start


def test_the_live_display_draws_the_running_stage_and_leaves_each_finished_one_as_a_line():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    display = LiveDisplay(console)
    progress = RunProgress(["clean"], [display])

    run_clean(progress, finish=False)
    display.live.refresh()
    drawn = out.getvalue()
    run_clean(progress)
    progress.close()

    assert "clean · signals: 2/4 shards · " in drawn and "docs/s" in drawn and "50 dropped" in drawn
    assert "━" in drawn  # the shards' bar
    assert "✓ clean: 4,000 → 3,800 docs (200 dropped)" in out.getvalue()


def test_figures_say_eta_unknown_before_the_first_shard_ends():
    progress = RunProgress(["toxicity"])
    progress.stage_started("toxicity")
    progress.phase_started(ref("toxicity", 8), todo=6)

    assert phase_figures(progress.stages["toxicity"].phase) == "2/8 shards · ETA …"


def test_auto_draws_live_only_on_a_terminal_and_off_draws_nothing():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(terminal_display("auto", 30.0, False, io.StringIO()), LineDisplay)
    live = terminal_display("auto", 30.0, False, Terminal())
    assert isinstance(live, LiveDisplay)
    live.close(RunProgress())
    assert terminal_display("off", 30.0, False, Terminal()) is None
