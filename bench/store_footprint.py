"""What a cold run writes to the store, per stage, and the workers' peak memory by input layout (issue #14).

    .venv/bin/python bench/store_footprint.py [N_DOCS] [--workers 2] [--shards 8] [--layouts split one]

Builds an N-document corpus from the real pages in ../shared/data/web_raw (bench/corpus.py, default
50,000), gzips it as `--shards` files (`split`) and as one file holding the same records (`one`),
and runs the default `curate` flow cold on each, on a fresh LocalCluster of `--workers` single-threaded
processes, then once more with a `select` threshold added. Prints, per layout: the gzip input bytes;
the store's bytes per stage folder (kept: row numbers and added columns; text: text versions;
rejected; the rest: signatures, clusters, manifests) beside the text bytes the stage read; the
store / input ratio; the published dataset's bytes; wall time; peak RSS per worker; and for the
threshold rerun, the stages it computed and the text bytes they read. #14's targets: store <= 2x
the gz input, peak RSS per worker <= 600 MiB and within 10% between the layouts, a threshold rerun
reads no text.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402

from bench.corpus import build_corpus  # noqa: E402
from bench.memory import peak_rss_mib  # noqa: E402


class PeakByStage(WorkerPlugin):
    """The worker's peak RSS as each shard task finishes, per stage (the key's first word; the dedup
    joins' dataframe tasks, keyed by tuples, are left out): where a worker's peak is first reached
    is where its memory went."""

    name = "peak-by-stage"

    def setup(self, worker) -> None:
        self.peaks: dict[str, float] = {}

    def transition(self, key, start, finish, **kwargs) -> None:
        if start == "executing" and isinstance(key, str):
            stage = key.split("-")[0]
            self.peaks[stage] = max(self.peaks.get(stage, 0.0), peak_rss_mib())


def peaks_by_stage(dask_worker) -> dict[str, float]:
    return dask_worker.plugins[PeakByStage.name].peaks


def gzip_inputs(jsonl: list[Path], target: Path, one_file: bool) -> int:
    """Gzip the shards as they are, or concatenated into one file; the bytes written."""
    target.mkdir(parents=True)
    groups = {"all.jsonl.gz": jsonl} if one_file else {f"{p.name}.gz": [p] for p in jsonl}
    for name, parts in groups.items():
        with gzip.open(target / name, "wb", compresslevel=6) as out:
            for part in parts:
                out.write(part.read_bytes())
    return sum(p.stat().st_size for p in target.iterdir())


KINDS = ("kept.parquet", "text.parquet", "rejected.parquet")


def store_bytes(store: Path) -> dict[str, Counter]:
    """Bytes per stage folder, split into kept / rejected / other files."""
    sizes: dict[str, Counter] = {}
    for path in store.rglob("*"):
        if not path.is_file() or "_prefect" in path.relative_to(store).parts:
            continue
        stage = path.relative_to(store).parts[0]
        kind = path.name.removesuffix(".parquet") if path.name in KINDS else "other"
        sizes.setdefault(stage, Counter())[kind] += path.stat().st_size
    return sizes


def run_layout(layout: str, jsonl: list[Path], tmp: Path, workers: int) -> None:
    from distributed import Client

    from flows.config import load_config
    from flows.orchestration.curate import curate
    from flows.parallel.cluster import local_cluster

    inputs = tmp / layout / "input"
    input_bytes = gzip_inputs(jsonl, inputs, one_file=layout == "one")
    with (
        local_cluster(workers) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.register_plugin(PeakByStage())
        overrides = [
            f"input.paths=[{inputs}]",
            f"output={tmp / layout / 'out'}",
            f"run.cluster.address={cluster.scheduler_address}",
        ]
        start = time.perf_counter()
        summary = curate(load_config(overrides=overrides))
        wall = time.perf_counter() - start
        worker_rss = client.run(peak_rss_mib)
        stage_peaks = client.run(peaks_by_stage)
        start = time.perf_counter()
        rerun = curate(load_config(overrides=[*overrides, "select.thresholds=[{column: toxicity_score, max: 0.5}]"]))
        rerun_wall = time.perf_counter() - start
    store = Path(summary["store"])
    manifests = {
        row["stage"]: json.loads((store / row["stage"] / row["key"] / "manifest.json").read_text())
        for row in summary["funnel"]
        if row["stage"] != "write"
    }
    sizes = store_bytes(store)
    print(f"\n=== layout {layout}: {len(list(inputs.iterdir()))} gzip file(s), {input_bytes / 1e6:.1f} MB")
    print(f"{'store folder':<24}{'kept MB':>9}{'text MB':>9}{'rejected MB':>13}{'other MB':>10}{'text read MB':>14}")
    for stage, kinds in sorted(sizes.items(), key=lambda kv: -sum(kv[1].values())):
        text = manifests[stage]["text_bytes_in"] / 1e6 if stage in manifests else float("nan")
        print(
            f"{stage:<24}{kinds['kept'] / 1e6:>9.1f}{kinds['text'] / 1e6:>9.1f}{kinds['rejected'] / 1e6:>13.1f}"
            f"{kinds['other'] / 1e6:>10.1f}{text:>14.1f}"
        )
    total = sum(sum(k.values()) for k in sizes.values())
    dataset = sum(p.stat().st_size for p in Path(summary["output"]).rglob("*") if p.is_file())
    print(
        f"store written: {total / 1e6:.1f} MB = {total / input_bytes:.2f}x the gz input; "
        f"published dataset {dataset / 1e6:.1f} MB ({summary['rows']:,} docs)"
    )
    print(f"wall {wall:.1f} s; peak RSS per worker (MiB): " + ", ".join(f"{v:.0f}" for v in worker_rss.values()))
    print("peak RSS per worker as each stage's tasks finished (MiB), in run order:")
    for stage in next(iter(stage_peaks.values())):
        print(f"  {stage:<22}" + "".join(f"{peaks.get(stage, float('nan')):>7.0f}" for peaks in stage_peaks.values()))
    computed = [row for row in rerun["funnel"] if not row["cached"] and row["stage"] != "write"]
    text_read = sum(
        json.loads((store / row["stage"] / row["key"] / "manifest.json").read_text())["text_bytes_in"]
        for row in computed
    )
    print(
        f"threshold rerun (select.thresholds added): {rerun_wall:.1f} s; stages computed: "
        f"{', '.join(row['stage'] for row in computed) or 'none'}; text read by them: {text_read / 1e6:.2f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="?", default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8, help="files of the split layout")
    parser.add_argument("--layouts", nargs="+", choices=("split", "one"), default=["split", "one"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="winnow-footprint-") as tmp:
        jsonl = build_corpus(args.n_docs, Path(tmp, "jsonl"), n_shards=args.shards)
        print(f"corpus: {args.n_docs:,} docs, {sum(p.stat().st_size for p in jsonl) / 1e6:.1f} MB JSONL")
        for layout in args.layouts:
            run_layout(layout, jsonl, Path(tmp), args.workers)


if __name__ == "__main__":
    main()
