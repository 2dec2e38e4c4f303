"""Peak resident memory of this process, for the bench scripts' per-worker figures."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mib() -> float:
    """This process's own peak RSS. On Linux VmHWM, not ru_maxrss: a Dask worker is forked from its
    nanny, and ru_maxrss keeps the high-water mark of the process before exec, so a worker started by
    a 500 MiB parent would report at least 500 MiB whatever it did."""
    if STATUS.exists():
        line = next(line for line in STATUS.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
