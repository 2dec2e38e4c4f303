"""Winnow's whole DAG beside datatrove's FineWeb pipeline, in one run, on one corpus (issue #36).

    .venv/bin/python bench/peer.py 50000 [--shards 8] [--datatrove-python /tmp/dtvenv/bin/python]
        [--set KEY=VALUE ...] [--every 0.2]

Builds the bench corpus as `--shards` gzip JSONL files (bench/process_memory.py's `gz_corpus`, from
bench/corpus.py), then runs, each cold in its own process tree sampled every `--every` seconds
(bench/process_memory.py's `sample_run`):

- datatrove 0.10.1: FineWeb's filters and its 4-step MinHash with 2 workers (bench/datatrove_pipeline.py,
  from datatrove's own venv);
- `winnow run`: the default DAG with `langid.min_score=0.65` (FineWeb's language threshold) and the
  `--set` overrides, 2 workers.

Prints each one's wall, documents out and the tree's sampled peak RSS, Winnow's speed against
datatrove, and Winnow's store against the gzip input. The two do different work: Winnow also runs
normalization, PII, exact dedup, quality and toxicity models and decontamination.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.process_memory import MIB, WINNOW, gz_corpus, sample_run  # noqa: E402


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--datatrove-python", default="/tmp/dtvenv/bin/python")
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a Winnow config override")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="winnow-peer-") as tmp:
        tmp = Path(tmp)
        gz_bytes = gz_corpus(args.n_docs, args.shards, tmp)
        print(f"{args.n_docs:,} documents in {args.shards} gzip files ({gz_bytes / MIB:.1f} MiB)", flush=True)

        datatrove = [
            args.datatrove_python,
            str(ROOT / "bench/datatrove_pipeline.py"),
            str(tmp / "in"),
            str(tmp / "dt"),
        ]
        status, dt_wall, _, dt_peak, _ = sample_run(datatrove, args.every, str(tmp / "none"))
        if status:
            raise SystemExit(f"datatrove failed with exit {status}: run {' '.join(datatrove)} to see why")
        dt = json.loads((tmp / "dt/summary.json").read_text())
        winnow = [str(WINNOW), "run", "-i", str(tmp / "in"), "-o", str(tmp / "out"), "--quiet"]
        for override in ["langid.min_score=0.65", *args.overrides]:
            winnow += ["--set", override]
        status, wn_wall, _, wn_peak, _ = sample_run(winnow, args.every, str(tmp / "out/.winnow-store"))
        if status:
            raise SystemExit(f"winnow run failed with exit {status}")
        summary = json.loads((tmp / "out/run_summary.json").read_text())
        store = folder_bytes(tmp / "out/.winnow-store") - folder_bytes(tmp / "out/.winnow-store/_prefect")
    out = {row["stage"]: row for row in summary["funnel"]}
    print(f"datatrove: {dt_wall:.1f} s wall, tree peak {sum(dt_peak.values()):,.0f} MiB {dt}")
    print(
        f"winnow:    {wn_wall:.1f} s wall, tree peak {sum(wn_peak.values()):,.0f} MiB, "
        f"{out['write']['docs_out'] if 'write' in out else '?'} docs out; store {store / MIB:.0f} MiB = "
        f"{store / gz_bytes:.2f}x the gzip input"
    )
    print(f"winnow is {dt_wall / wn_wall:.2f}x datatrove's speed (wall ratio, same machine, same run)")


if __name__ == "__main__":
    main()
