"""The `extract.timeout_seconds` default and what the time limit costs.

    .venv/bin/python bench/extract_timeout.py [--limit N] [--repeats R]

1. Per-page extraction time on the 990 labeled real pages (html_labeled_pages.jsonl.gz, the set
   bench/extraction.py scores), in this process: p50 / p99 / p99.9 / max of wall time and of the
   thread's CPU time, per extractor, the slowest page, and how many pages datatrove's 0.1 s default
   would cut. The default must sit well above the max.
2. Throughput of the stage (`tasks.extract.run` over all pages as one shard) with the default time
   limit (pages go in batches to a child process, `tasks/timelimit.py`) and with
   `timeout_seconds=None` (in-process): docs/s of wall time and of CPU time (this process plus the
   child: robust to other load on the machine), best of R alternating runs; the child is started
   and warmed before the clock, as it is once per worker. Both must give identical output. First,
   the child's round trip alone (`len` as the function): per tiny item and per real page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psutil
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction import load_labeled  # noqa: E402
from tasks.contract import DOC_SCHEMA  # noqa: E402
from tasks.extract import ExtractParams, extract_text, run  # noqa: E402
from tasks.read import HTML_SOURCE  # noqa: E402
from tasks.timelimit import map_with_timeout  # noqa: E402

EXTRACTORS = ("trafilatura", "resiliparse")
DATATROVE_TIMEOUT_SECONDS = 0.1  # datatrove's extractors (pipeline/extractors/base.py BaseExtractor)


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=10_000, method="inclusive")[round(q * 10_000) - 1]


def per_page_times(pages: list[dict]) -> None:
    print(f"per-page extraction time, {len(pages)} pages, in-process")
    print(f"{'extractor':12} {'clock':5} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8}  slowest page")
    for extractor in EXTRACTORS:
        params = ExtractParams(extractor=extractor)
        wall, cpu = [], []
        for page in pages:
            w0, c0 = time.perf_counter(), time.thread_time()
            extract_text(page["html"], params)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.thread_time() - c0)
        slowest = pages[max(range(len(pages)), key=wall.__getitem__)]
        for clock, times in (("wall", wall), ("cpu", cpu)):
            figures = [quantile(times, q) * 1e3 for q in (0.5, 0.99, 0.999)] + [max(times) * 1e3]
            print(
                f"{extractor:12} {clock:5} "
                + " ".join(f"{x:>8.1f}" for x in figures)
                + (f"  {slowest['id']} ({len(slowest['html']):,} chars)" if clock == "wall" else "")
            )
        over = sum(t > DATATROVE_TIMEOUT_SECONDS for t in wall)
        print(
            f"{'':12} pages over datatrove's {DATATROVE_TIMEOUT_SECONDS} s default: {over} ({over / len(pages):.1%})"
        )


def cpu_seconds() -> float:
    """CPU time of this process and its live children (the time-limit child stays alive between runs)."""
    me = psutil.Process()
    return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children()])


def throughput(pages: list[dict], repeats: int) -> None:
    n = len(pages)
    table = pa.Table.from_arrays(
        [
            pa.array([page["id"] for page in pages]),
            pa.array([page["html"] for page in pages]),
            pa.array([page["url"] for page in pages]),
            pa.array([HTML_SOURCE] * n),
            pa.array([None] * n, pa.string()),
        ],
        schema=DOC_SCHEMA,
    )
    map_with_timeout(len, [""], 60.0)  # start the child (once per worker in a run)
    for label, items in (("messaging per tiny item", [""] * 20_000), ("copying per page", [p["html"] for p in pages])):
        start = time.perf_counter()
        map_with_timeout(len, items, 60.0)  # len: no work in the child, only the round trip
        print(f"time-limit child, {label}: {(time.perf_counter() - start) / len(items) * 1e6:,.0f} us")
    modes = {"in-process": None, "child": ExtractParams().timeout_seconds}
    print(
        f"\nstage throughput, {n} pages as one shard, best of {repeats} alternating runs; "
        "CPU = this process + the child"
    )
    print(f"{'extractor':12} {'mode':10} {'wall docs/s':>12} {'CPU docs/s':>11}  identical output")
    for extractor in EXTRACTORS:
        wall = dict.fromkeys(modes, float("inf"))
        cpu = dict.fromkeys(modes, float("inf"))
        outputs = {}
        for timeout in modes.values():  # first calls load the extractor's data files: once per process
            run(table.slice(0, 5), ExtractParams(extractor=extractor, timeout_seconds=timeout))
        for _ in range(repeats):
            for mode, timeout in modes.items():
                params = ExtractParams(extractor=extractor, timeout_seconds=timeout)
                w0, c0 = time.perf_counter(), cpu_seconds()
                outputs[mode] = run(table, params)
                wall[mode] = min(wall[mode], time.perf_counter() - w0)
                cpu[mode] = min(cpu[mode], cpu_seconds() - c0)
        same = all(a.equals(b) for a, b in zip(*outputs.values()))
        for mode in modes:
            print(f"{extractor:12} {mode:10} {n / wall[mode]:>12.1f} {n / cpu[mode]:>11.1f}  {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N labeled pages")
    parser.add_argument("--repeats", type=int, default=2, help="throughput runs per mode")
    args = parser.parse_args()
    pages = [page for page, _ in load_labeled(args.limit)]
    per_page_times(pages)
    throughput(pages, args.repeats)


if __name__ == "__main__":
    main()
