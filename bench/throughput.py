"""Per-stage throughput, peak memory and orchestration overhead of a full `curate` run.

    .venv/bin/python bench/throughput.py 200000 [--workers 2] [--shards 8] [--set langid.languages=[en]]
        [--datatrove-python /tmp/dtvenv/bin/python [--datatrove-docs 50000]]  # + bench/datatrove_baseline.py

Builds an N-document corpus from the real pages in ../shared/data/web_raw (bench/corpus.py), runs
the `curate` flow cold on a local Dask cluster of `--workers` single-threaded processes, and prints:
per stage, docs/s of wall time and docs/s and MB/s per core (stage function time alone, from the
shard stats), peak RSS per worker, whole-run wall time, and the share of worker time that is not
stage work (Prefect, Dask, Parquet I/O, idle): 1 - sum(stage function seconds) / (wall x workers).
The dedup stages' corpus-wide steps (Dask shuffles, connected components) fall in that share too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from bench.corpus import build_corpus  # noqa: E402
from bench.memory import peak_rss_mib  # noqa: E402
from flows.config import load_config  # noqa: E402
from flows.engine.store import ArtifactStore  # noqa: E402
from flows.orchestration.curate import curate  # noqa: E402
from flows.parallel.cluster import local_cluster  # noqa: E402
from flows.stages import STAGES  # noqa: E402

CORPUS_STAGES = [stage.name for stage in STAGES if stage.corpus]

FILTER_STAGES = ("normalize", "langid", "clean")  # what datatrove's filter chain is compared with


def phase_seconds(store: ArtifactStore, stage: str) -> float:
    """Stage-function seconds of a global stage's map phases (`<stage>.signatures`, …), from their shards' stats."""
    return sum(
        json.loads(p.read_text())["seconds"]
        for phase in Path(store.root).glob(f"{stage}.*")
        for p in (phase / "shards").glob("*/stats.json")
    )


def datatrove_docs_per_s(python: str, n_docs: int) -> dict[str, float]:
    """docs/s of datatrove's filters on the same corpus: as a chain, and with every rule on every doc."""
    result = subprocess.run(
        [python, str(ROOT / "bench" / "datatrove_baseline.py"), str(n_docs)],
        capture_output=True,
        text=True,
        check=True,
    )
    print(result.stdout)
    rates = {}
    for name, pattern in {
        "chain": r"^chain .*?([\d,]+) docs/s",
        "every rule": r"^every rule .*?([\d,]+) docs/s",
    }.items():
        rates[name] = float(re.search(pattern, result.stdout, re.M).group(1).replace(",", ""))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8, help="8 gives datatrove_baseline.py's corpus")
    parser.add_argument("--datatrove-python", default=None)
    parser.add_argument("--datatrove-docs", type=int, default=None, help="baseline size (default: N)")
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. langid.languages=[en]")
    args = parser.parse_args()

    from distributed import Client

    with tempfile.TemporaryDirectory(prefix="winnow-bench-") as tmp:
        start = time.perf_counter()
        build_corpus(args.n_docs, Path(tmp, "input"), n_shards=args.shards)
        corpus_mb = sum(p.stat().st_size for p in Path(tmp, "input").iterdir()) / 1e6
        print(
            f"corpus: {args.n_docs:,} docs, {corpus_mb:.1f} MB JSONL in {args.shards} shards "
            f"({time.perf_counter() - start:.1f} s to build)"
        )
        with (
            local_cluster(args.workers) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            cfg = load_config(
                overrides=[
                    f"input.paths=[{tmp}/input]",
                    f"output={tmp}/out",
                    f"run.cluster.address={cluster.scheduler_address}",
                    *args.set,
                ]
            )
            start = time.perf_counter()
            summary = curate(cfg)
            wall = time.perf_counter() - start
            worker_rss = client.run(peak_rss_mib)

        store = ArtifactStore(summary["store"])
        rows = {row["stage"]: row for row in summary["funnel"]}
        manifests = {s: store.manifest(s, r["key"]) for s, r in rows.items() if s != "write"}
        seconds = {s: m["shard_seconds"] for s, m in manifests.items()}
        for stage in CORPUS_STAGES:  # their corpus-wide Dask steps (shuffles, components) count as not stage work
            if stage in seconds:  # an opt-in stage (dedup_semantic) is not in a default run
                seconds[stage] += phase_seconds(store, stage)

        print(f"\n{'stage':<12}{'docs in':>10}{'wall s':>9}{'docs/s wall':>13}{'docs/s/core':>13}{'MB/s/core':>11}")
        for stage, manifest in manifests.items():
            docs, mb = manifest["rows_in"], manifest["text_bytes_in"] / 1e6
            per_core = docs / seconds[stage] if seconds[stage] else float("inf")
            print(
                f"{stage:<12}{docs:>10,}{rows[stage]['seconds']:>9.1f}{docs / rows[stage]['seconds']:>13,.0f}"
                f"{per_core:>13,.0f}{mb / seconds[stage] if seconds[stage] else 0:>11.2f}"
            )
        filter_docs = manifests["normalize"]["rows_in"]
        filter_seconds = sum(seconds[s] for s in FILTER_STAGES)
        filter_rate = filter_docs / filter_seconds
        stage_work = sum(seconds.values())
        print(
            f"\nnormalize+langid+clean: {filter_rate:,.0f} docs/s per core "
            f"({filter_docs:,} docs, {filter_seconds:.1f} core-s)"
        )
        flow = summary["seconds"]
        print(
            f"whole run: {wall:.1f} s wall ({wall - flow:.1f} s of it starting and stopping Prefect's "
            f"ephemeral API server), {summary['rows']:,} docs out"
        )
        print(
            f"orchestration share (1 - stage work / worker time): {1 - stage_work / (wall * args.workers):.1%} "
            f"of the whole run; {1 - stage_work / (flow * args.workers):.1%} of the flow body "
            f"({stage_work:.1f} core-s of stage work in {flow:.1f} s x {args.workers} workers)"
        )
        print(
            "peak RSS per worker (MiB): "
            + ", ".join(f"{v:.0f}" for v in worker_rss.values())
            + f"; flow process {peak_rss_mib():.0f}"
        )
        if args.datatrove_python:
            for name, rate in datatrove_docs_per_s(args.datatrove_python, args.datatrove_docs or args.n_docs).items():
                print(f"normalize+langid+clean vs datatrove filters ({name}), per core: {filter_rate / rate:.2f}x")


if __name__ == "__main__":
    main()
