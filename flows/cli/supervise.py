"""A run leaves no process behind, however it ends: the CLI runs its work as a supervised process group.

`winnow run` (and the other long-running commands) re-executes itself as a child in a new process
group and waits. Everything the work starts, Prefect's temporary API server and the LocalCluster's
worker processes, inherits that group, so one signal to the group reaches all of it:
- SIGINT or SIGTERM to the CLI: forwarded to the group; what is still there after a grace period is
  killed.
- The child ends (done, crashed or killed): whatever it left in its group is killed.
- SIGKILL to the CLI, which no handler sees: the child notices its parent is gone (it is re-parented)
  within `PARENT_POLL_SECONDS` and kills its own group.
POSIX only (process groups); elsewhere the command runs unsupervised.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

SUPERVISED = "WINNOW_SUPERVISED"  # set in the child's environment: it is the supervised work
PARENT_POLL_SECONDS = 0.5
GRACE_SECONDS = 20.0  # SIGINT/SIGTERM: time for the work to stop its cluster and server itself


def main(app, long_running: set[str]) -> None:
    """The console script: a long-running command runs supervised (this very command line again, as
    the child); anything else, or the child itself, runs `app` here."""
    if sys.argv[1:2] and sys.argv[1] in long_running and hasattr(os, "killpg"):
        if not is_supervised_child():
            sys.exit(supervise(list(sys.orig_argv)))
        watch_parent()
    app()


def is_supervised_child() -> bool:
    """Whether this process is the work its parent supervises. A `winnow` started by the work (`winnow
    demo --ui` serving the deployments) inherits the variable but has another parent: it supervises
    itself, and must not take the work's group for its own."""
    return os.environ.get(SUPERVISED) == str(os.getppid())


def supervise(command: list[str]) -> int:
    """Run `command` in a process group of its own; return its exit status (128 + n for signal n)."""
    child = subprocess.Popen(command, env={**os.environ, SUPERVISED: str(os.getpid())}, start_new_session=True)

    def forward(signum, frame) -> None:
        _signal_group(child.pid, signum)
        threading.Thread(target=_kill_after_grace, args=(child,), daemon=True).start()

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _signal_group(child.pid, signal.SIGKILL)  # whatever the work left behind
    return 128 - status if status < 0 else status


def watch_parent() -> None:
    """In the supervised child: kill this process group as soon as the supervisor is gone."""
    supervisor = int(os.environ[SUPERVISED])

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(PARENT_POLL_SECONDS)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="winnow-parent-watch", daemon=True).start()


def _kill_after_grace(child: subprocess.Popen) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=GRACE_SECONDS)
        return
    _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
