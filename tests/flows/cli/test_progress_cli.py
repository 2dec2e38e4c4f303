"""`winnow run` on a terminal: the live display's lines (stage, shards, rate), each stage's line as it
ends, Prefect's lines printed above the display; then `winnow status` on what it wrote."""

from __future__ import annotations

import errno
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CHEAP_TOXICITY
from typer.testing import CliRunner

from flows.cli.app import app
from flows.cli.demo import write_demo_corpus

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_a_terminal(args: list[str], env: dict, timeout: float = 300) -> tuple[int, str]:
    """A command with a pseudo-terminal as its stdout and stderr; its exit status and all it wrote."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError as exc:  # EIO: every holder of the terminal's other end closed it
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()


def test_a_run_on_a_terminal_draws_live_progress_and_a_line_per_finished_stage(tmp_path, dask_cluster, prefect_api):
    write_demo_corpus(tmp_path / "in", n_docs=60)
    output = tmp_path / "out"
    command = [
        str(BIN / "winnow"),
        "run",
        "-i",
        str(tmp_path / "in"),
        "-o",
        str(output),
        "--set",
        f"run.cluster.address={dask_cluster.scheduler_address}",
        "--set",
        CHEAP_TOXICITY,
        "--verbose",
    ]
    status, raw = run_on_a_terminal(command, {**os.environ, "PREFECT_API_URL": prefect_api, "COLUMNS": "160"})
    text = ANSI.sub("", raw)

    assert status == 0, text[-3000:]
    assert "\x1b[?25l" in raw  # rich hid the cursor: the live display ran
    # the running stage's line, redrawn with its figures as each shard ends (--verbose prints each)
    running = re.findall(r"(\w+(?: · \w+)?): (\d+)/(\d+) shards · ([\d,]+) docs/s", text)
    assert {stage.split(" · ")[0] for stage, *_ in running} >= {"read", "clean", "toxicity"}
    assert re.search(r"clean\.signals: shard demo-000\.jsonl: [\d,]+ docs, [\d,]+ dropped, [\d.]+ s", text)
    for stage in ("read", "langid", "clean", "dedup_fuzzy", "toxicity", "select", "write"):
        assert re.search(rf"✓ {stage}: [\d,]+ → [\d,]+ docs \([\d,]+ dropped\), \d+ shards computed", text), stage
    assert "Task run 'clean-" in text  # --verbose keeps Prefect's task-run lines, printed above the display
    assert "Curation funnel" in text  # the funnel, after the display

    shown = CliRunner().invoke(app, ["status", str(output)])
    assert shown.exit_code == 0, shown.output
    assert "finished" in shown.output and shown.output.count("complete") >= 14
