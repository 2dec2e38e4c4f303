"""Scaling: the full `curate` flow at 1 and 2 workers and 3 corpus sizes, a per-stage cost model fitted
to the measurements, and its extrapolation to 1 TB and 100 TB of JSONL on N nodes.

    .venv/bin/python bench/scaling.py [--sizes 2000 4000 8000] [--shards 8] [--cores-per-node 32]

Each run is cold (fresh store) on a LocalCluster of single-threaded worker processes, over a corpus
from bench/corpus.py. Measured per stage and run: wall seconds (the funnel row) and core-seconds of
stage work (stage-function time in the shard stats; for the dedup stages their map phases too). The
rest of a dedup stage's wall time, beyond its map work spread over the workers, is its corpus-wide
step (Dask shuffle on the band/hash column, connected components, keepers): "shuffle".

Each cluster first runs a small warm-up corpus, so model loading (once per worker) is not counted
as work. Fits (least squares over the 3 sizes, at each worker count): stage core-seconds = a + b *
docs_in (b: core-seconds per document), shuffle seconds x workers = a + b * docs, and stage wall
seconds = a + b * docs. Parallel efficiency 1 -> 2 workers per stage: of the whole stage at the
largest size, wall(1) / (2 * wall(2)), which counts the fixed per-stage cost (Prefect task, Dask
scheduling, progress artifacts); and marginal, b_wall(1) / (2 * b_wall(2)), the part that grows
with the data, which is what the extrapolation uses.

Extrapolation: documents per TB from the corpus's JSONL bytes per document; each stage sees the share
of documents the funnel passed to it; hours = docs * b / (nodes * cores * efficiency), with the
measured marginal 2-worker efficiency (within 0.05..1) standing in for all larger clusters: an optimistic
assumption for the shuffle, which moves every band row across the network (its bytes per document are
printed, from the band rows' Parquet size) and whose component search takes more rounds as the corpus
grows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # shared, busy cores

import numpy as np  # noqa: E402

from bench.corpus import build_corpus  # noqa: E402
from bench.throughput import phase_seconds  # noqa: E402
from flows.config import load_config  # noqa: E402
from flows.engine.store import ArtifactStore  # noqa: E402
from flows.orchestration.curate import curate  # noqa: E402
from flows.parallel.cluster import local_cluster  # noqa: E402
from flows.stages import STAGES  # noqa: E402

CORPUS_STAGES = [stage.name for stage in STAGES if stage.corpus]

TB = 1e12
WARM_UP_DOCS = 100  # loads every model on every worker before the measured runs
NETWORK_GBIT_PER_NODE = 10  # a common datacenter NIC; only the shuffle's transfer bound uses it


def measure(n_docs: int, n_shards: int, address: str, workers: int, tmp: Path) -> dict:
    """One cold run: per stage docs_in, wall s, core-s of stage work, and shuffle s (global stages)."""
    corpus = tmp / f"corpus-{n_docs}"
    if not corpus.exists():
        build_corpus(n_docs, corpus, n_shards=n_shards)
    out = tmp / f"out-{n_docs}-{workers}"
    cfg = load_config(overrides=[f"input.paths=[{corpus}]", f"output={out}", f"run.cluster.address={address}"])
    start = time.perf_counter()
    summary = curate(cfg)
    wall = time.perf_counter() - start
    store = ArtifactStore(summary["store"])
    stages = {}
    for row in summary["funnel"]:
        if row["stage"] == "write":
            continue
        manifest = store.manifest(row["stage"], row["key"])
        work = manifest["shard_seconds"]
        shuffle = 0.0
        if row["stage"] in CORPUS_STAGES:
            work += phase_seconds(store, row["stage"])
            shuffle = max(row["seconds"] - work / workers, 0.0)
        stages[row["stage"]] = {
            "docs_in": manifest["rows_in"],
            "wall": row["seconds"],
            "work": work,
            "shuffle": shuffle,
        }
    band_bytes = sum(p.stat().st_size for p in Path(store.root).glob("dedup_fuzzy.bands/shards/*/kept.parquet"))
    return {
        "docs": n_docs,
        "workers": workers,
        "wall": wall,
        "stages": stages,
        "jsonl_bytes": sum(p.stat().st_size for p in corpus.iterdir()),
        "band_bytes": band_bytes,
    }


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line."""
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(intercept), float(slope)


def efficiency_bound(measured: float) -> float:
    """The measured marginal efficiency kept within 0.05..1 (noise can put a slope ratio outside)."""
    return 1.0 if measured != measured else min(max(measured, 0.05), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=3, default=[2000, 4000, 8000])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--cores-per-node", type=int, default=32)
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory(prefix="winnow-scaling-") as tmp:
        for workers in (1, 2):
            with local_cluster(workers) as cluster:
                measure(WARM_UP_DOCS, args.shards, cluster.scheduler_address, workers, Path(tmp))
                for n_docs in args.sizes:
                    run = measure(n_docs, args.shards, cluster.scheduler_address, workers, Path(tmp))
                    runs.append(run)
                    print(f"measured: {n_docs:>7,} docs, {workers} worker(s): {run['wall']:.1f} s wall", flush=True)

    stage_names = list(runs[0]["stages"])
    by = {(r["docs"], r["workers"]): r for r in runs}
    largest = max(args.sizes)
    print(
        f"\n{'stage':<20}{'core-ms/doc':>12}{'(2 workers)':>12}{'wall 1w s':>11}{'wall 2w s':>11}"
        f"{'efficiency':>11}{'marginal':>10}"
    )
    model = {}
    rows = [(stage, "work", "wall", stage) for stage in stage_names]
    rows += [(f"{stage} shuffle", "shuffle", "shuffle", stage) for stage in CORPUS_STAGES]
    for name, cost, wall, stage in rows:
        per_doc, wall_slope = {}, {}
        for workers in (1, 2):
            points = [by[(n, workers)]["stages"][stage] for n in args.sizes]
            scale = workers if cost == "shuffle" else 1  # a shuffle's wall seconds occupy every worker
            per_doc[workers] = fit([p["docs_in"] for p in points], [scale * p[cost] for p in points])[1]
            wall_slope[workers] = fit([p["docs_in"] for p in points], [p[wall] for p in points])[1]
        wall1, wall2 = (by[(largest, w)]["stages"][stage][wall] for w in (1, 2))
        efficiency = wall1 / (2 * wall2) if wall2 else float("nan")
        marginal = wall_slope[1] / (2 * wall_slope[2]) if wall_slope[2] > 0 else float("nan")
        share = by[(largest, 2)]["stages"][stage]["docs_in"] / by[(largest, 2)]["stages"]["read"]["docs_in"]
        model[name] = {"per_doc": max(per_doc[1], 0.0), "efficiency": marginal, "share": share}
        print(
            f"{name:<20}{1e3 * per_doc[1]:>12.3f}{1e3 * per_doc[2]:>12.3f}{wall1:>11.2f}{wall2:>11.2f}"
            f"{efficiency:>11.2f}{marginal:>10.2f}"
        )
    whole1, whole2 = by[(largest, 1)]["wall"], by[(largest, 2)]["wall"]
    print(
        f"whole run at {largest:,} docs: {whole1:.1f} s (1 worker), {whole2:.1f} s (2 workers), "
        f"efficiency {whole1 / (2 * whole2):.2f}"
    )

    ref = by[(largest, 2)]
    bytes_per_doc = ref["jsonl_bytes"] / largest
    band_bytes_per_doc = ref["band_bytes"] / largest
    print(
        f"\ncorpus: {bytes_per_doc:,.0f} JSONL bytes/doc ({TB / bytes_per_doc / 1e9:.2f} G docs per TB); "
        f"fuzzy-dedup band rows: {band_bytes_per_doc:,.0f} bytes/doc on disk (zstd Parquet)"
    )
    print(
        f"extrapolation: hours per stage on N nodes x {args.cores_per_node} cores, measured marginal "
        "2-worker efficiency (within 0.05..1) assumed to hold"
    )
    top = sorted(model, key=lambda s: model[s]["per_doc"] * model[s]["share"], reverse=True)[:4]
    print(
        f"\n{'corpus':>7}{'nodes':>7}"
        + "".join(f"{s:>22}" for s in top)
        + f"{'all stages h':>14}{'band rows net h':>17}"
    )
    for size_tb in (1, 100):
        docs = size_tb * TB / bytes_per_doc
        for nodes in (1, 10, 100):
            cores = nodes * args.cores_per_node
            hours = {
                s: docs * m["share"] * m["per_doc"] / (cores * efficiency_bound(m["efficiency"])) / 3600
                for s, m in model.items()
            }
            network = docs * band_bytes_per_doc / (nodes * NETWORK_GBIT_PER_NODE / 8 * 1e9) / 3600
            print(
                f"{size_tb:>5} TB{nodes:>7}"
                + "".join(f"{hours[s]:>22.2f}" for s in top)
                + f"{sum(hours.values()):>14.1f}{network:>17.3f}"
            )
    print(
        f"\nfirst bottleneck: {top[0]} ({1e3 * model[top[0]]['per_doc']:.3f} core-ms/doc, "
        f"{model[top[0]]['share']:.0%} of documents reach it)"
    )


if __name__ == "__main__":
    main()
