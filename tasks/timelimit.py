"""A per-item time limit: call a function on items in a child process, abandoning an item that runs over.

Shard functions run in a Dask worker thread. SIGALRM only reaches the main thread and a Python thread
cannot be stopped, so a call that must be cut short has to run in another process, which can be
killed. Dask's worker processes are daemonic (`distributed.worker.daemon: True`), and `multiprocessing`
(hence `ProcessPoolExecutor`) refuses to start children from a daemonic process, so the child is a plain
`subprocess` (`python -c ... serve(r, w)`) talking over two pipes with `multiprocessing.connection`'s
pickle framing (its own stdout and stderr stay the worker's, for logs).

Each worker process keeps its idle children for reuse (one per concurrent caller), so the ~0.5 s
start is paid once per worker, not per shard. Items go in batches (`_BATCH_BYTES` pickled) but the
child answers each one as it finishes, so the clock of item i starts when item i - 1's answer arrives
(late reading only gives an item more time, never less). An item that runs over is marked
`TIMED_OUT`, its child killed, and the rest go to a fresh child. An exception inside the call rises
in the caller (with the child's traceback as a note); a child that dies without answering (segfault,
OOM kill) raises `ChildProcessError`. `bench/extract_timeout.py` measures the cost: ~6 us of
messaging per item, plus copying it (pickle, pipe, unpickle: ~0.4 ms for an average real HTML page).
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

_ROOT = str(Path(__file__).resolve().parents[1])  # so the child imports `tasks` as this process does
_BATCH_BYTES = 4 << 20  # pickled items per request (bench/extract_timeout.py: ~30 pages; replies stay per item)
_ORPHAN_CHECK_SECONDS = 1.0  # how soon a child stuck in a call notices its parent is gone


class TimedOut:
    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Final = TimedOut()  # the result of an item whose call ran past the limit


class _Child:
    """One child process, owned by the process (and, while in use, the thread) that started it."""

    def __init__(self) -> None:
        child_r, parent_w = os.pipe()
        parent_r, child_w = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from tasks.timelimit import serve; serve({child_r}, {child_w})"],
            pass_fds=(child_r, child_w),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(child_r)
        os.close(child_w)
        self.owner = os.getpid()  # a forked copy of this process must not share the child
        self.requests = Connection(parent_w, readable=False)
        self.replies = Connection(parent_r, writable=False)
        self.fn: Callable | None = None
        self._reply()  # "ready"; `fn`'s imports happen before a batch's "ack", so no item's clock counts them

    def submit(self, fn: Callable, blobs: list[bytes]) -> None:
        """Send a batch of pickled items; returns once the child has read it (its clock may start)."""
        if fn is not self.fn:
            self.requests.send(("fn", fn))
            self.fn = fn
        self.requests.send(("items", blobs))
        self._reply()

    def result(self, deadline: float) -> Any:
        """The next item's result, or `TIMED_OUT` if none came by `deadline` (`time.monotonic()`)."""
        if not self.replies.poll(max(0.0, deadline - time.monotonic())):
            return TIMED_OUT
        return self._reply()

    def _reply(self) -> Any:
        try:
            kind, value, child_traceback = self.replies.recv()
        except EOFError:
            self.kill()
            raise ChildProcessError(
                f"time-limit child process {self.proc.pid} exited with code {self.proc.returncode} "
                "without answering (its stderr is in this worker's log)"
            ) from None
        if kind == "error":
            value.add_note(f"raised in time-limit child process {self.proc.pid}:\n{child_traceback}")
            raise value
        return value

    def usable(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.requests.close()
        self.replies.close()


_idle: list[_Child] = []
_idle_lock = threading.Lock()


def _take() -> _Child:
    with _idle_lock:
        while _idle:
            child = _idle.pop()
            if child.usable():
                return child
    return _Child()


def _give(child: _Child) -> None:
    with _idle_lock:
        _idle.append(child)


@atexit.register
def _close_idle() -> None:
    with _idle_lock:
        for child in _idle:
            if child.owner == os.getpid():
                child.kill()
        _idle.clear()


def map_with_timeout(fn: Callable[[Any], Any], items: Iterable[Any], timeout_seconds: float) -> list[Any]:
    """`[fn(item) for item in items]`, each call in a child process and cut at `timeout_seconds`.

    Args:
        fn: a picklable function of one argument (module-level, or a `functools.partial` of one).
        items: picklable arguments.
        timeout_seconds: wall-clock limit per call.

    Returns:
        One result per item, in order; `TIMED_OUT` where the call ran past the limit.

    Raises:
        Whatever `fn` raised (the child's traceback added as a note); `ChildProcessError` when the
        child died without answering.

    >>> map_with_timeout(len, ["ab", "c"], timeout_seconds=5.0)
    [2, 1]
    """
    items = list(items)
    results: list[Any] = []
    child: _Child | None = None
    blobs = _batch(items, 0)
    try:
        while blobs:
            child = child or _take()
            child.submit(fn, blobs)
            clock = time.monotonic()
            sent = len(results) + len(blobs)
            upcoming = _batch(items, sent)  # pickled while the child works
            for _ in blobs:
                results.append(child.result(clock + timeout_seconds))
                clock = time.monotonic()  # the next item started no later than now
                if results[-1] is TIMED_OUT:
                    break
            if results[-1] is TIMED_OUT:
                child.kill()
                child = None
                upcoming = _batch(items, len(results))  # the batch's rest, to a fresh child
            blobs = upcoming
    except BaseException:
        if child is not None:
            child.kill()
        raise
    if child is not None:
        _give(child)
    return results


def _batch(items: list[Any], start: int) -> list[bytes]:
    """Pickled items from `start` on, until they reach `_BATCH_BYTES` (at least one item)."""
    blobs: list[bytes] = []
    size = 0
    for item in itertools.islice(items, start, None):
        if blobs and size >= _BATCH_BYTES:
            break
        blobs.append(pickle.dumps(item, pickle.HIGHEST_PROTOCOL))
        size += len(blobs[-1])
    return blobs


def serve(read_fd: int, write_fd: int) -> None:
    """The child's loop: `("fn", f)` sets the function; `("items", [pickled x, ...])` is acknowledged,
    then each x answered with `("ok", f(x), None)` or `("error", exception, traceback)`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends us by closing the pipe
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    requests = Connection(read_fd, writable=False)
    replies = Connection(write_fd, readable=False)
    replies.send(("ready", None, None))
    fn: Callable | None = None
    while True:
        try:
            kind, payload = requests.recv()
        except EOFError:  # the parent is done with us
            return
        if kind == "fn":
            fn = payload
            continue
        replies.send(("ack", None, None))
        for blob in payload:
            try:
                reply = ("ok", fn(pickle.loads(blob)), None)
            except Exception as exc:  # noqa: BLE001 - not swallowed: re-raised in the parent
                reply = ("error", exc, traceback.format_exc())
            try:
                replies.send(reply)
            except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception: say what it was
                replies.send(("error", TypeError(f"cannot send the result back: {exc!r}"), traceback.format_exc()))


def _exit_when_orphaned(parent: int) -> None:
    """A parent killed mid-call never closes the pipe we would read next: leave instead of running on."""
    while os.getppid() == parent:
        time.sleep(_ORPHAN_CHECK_SECONDS)
    os._exit(1)
