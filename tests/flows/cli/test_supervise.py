"""A supervised command leaves no process behind, however its supervisor is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]
# The work: two grandchildren that would outlive it (as Prefect's server and Dask's workers would), then wait.
WORK = (
    "import subprocess, sys, time; from flows.cli.supervise import watch_parent; watch_parent(); "
    "[subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']) for _ in range(2)]; "
    "print('ready', flush=True); time.sleep(120)"
)
SUPERVISOR = (
    "import sys; from flows.cli.supervise import supervise; sys.exit(supervise([sys.executable, '-c', sys.argv[1]]))"
)


def started_tree() -> tuple[subprocess.Popen, list[psutil.Process]]:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, WORK], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert supervisor.stdout.readline().strip() == "ready"
    tree = psutil.Process(supervisor.pid).children(recursive=True)
    assert len(tree) == 3  # the work and its two children
    return supervisor, tree


def survivors(tree: list[psutil.Process], timeout_s: float = 10.0) -> list[int]:
    _, alive = psutil.wait_procs(tree, timeout=timeout_s)
    return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_stopping_the_supervisor_any_way_stops_every_process_of_the_work(signum):
    supervisor, tree = started_tree()

    os.kill(supervisor.pid, signum)
    supervisor.wait(timeout=30)

    assert survivors(tree) == []


def test_work_that_ends_takes_what_it_left_running_with_it():
    work = (
        "import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
        "print(child.pid, flush=True)"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, work], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    orphan = psutil.Process(int(supervisor.stdout.readline()))

    status = supervisor.wait(timeout=30)

    assert status == 0 and survivors([orphan]) == []


def test_a_winnow_command_started_by_supervised_work_supervises_itself_and_spares_the_work():
    """Regression: `winnow serve` started by `winnow demo --ui` took its parent's group for its own and
    killed it, since it inherited the supervisor's variable."""
    nested = (
        "import os, sys; from flows.cli.supervise import main; sys.argv = ['winnow', 'run']; "
        "main(lambda: print(os.getpgid(0), flush=True), long_running={'run'})"
    )
    work = (
        f"import subprocess, sys, os; subprocess.run([sys.executable, '-c', {nested!r}], check=True); "
        "print('work', os.getpgid(0), flush=True)"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, work], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )

    nested_group, (label, work_group) = supervisor.stdout.readline().split(), supervisor.stdout.readline().split()

    assert supervisor.wait(timeout=60) == 0
    assert label == "work" and nested_group != [work_group]
