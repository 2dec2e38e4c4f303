"""One large input file through the expensive per-document stages: does every worker work?

    .venv/bin/python bench/split_one_file.py [--docs 150] [--workers 2] [--rounds 1] [--benchmarks default]

Writes the first `--docs` pages of ../shared/data/web_raw/news_en_dev.jsonl as one JSONL file (one read
part, so one shard per stage) and curates it with `winnow run`: decontamination against the four dev
benchmarks (n-grams and the semantic window scan; `--benchmarks default`: the config's own, a
sample of GSM8K), the default toxicity model, clean's rule families
off so every page reaches them. A first run builds everything (benchmark index, models, every stage);
then each round deletes the stages whose cost is per document (`toxicity`, `decontam.scan`,
`decontam`) from the store, but not the benchmark index, and runs again, so only they compute.
Printed per round: the run's wall, each of those stages' seconds from the run summary.

It imports nothing of Winnow's and starts `winnow` through this interpreter with the caller's
PYTHONPATH, so `bench/ab.py` can run it against a commit that predates it:
    .venv/bin/python bench/ab.py --base <commit> -- /abs/path/bench/split_one_file.py --docs 150
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCHMARKS = {
    "gsm8k": "gsm8k_test.jsonl",
    "humaneval": "humaneval_test.jsonl",
    "mmlu": "mmlu_test.jsonl",
    "truthfulqa": "truthfulqa.jsonl",
}
PER_DOCUMENT = ("toxicity", "decontam.scan", "decontam")
WINNOW = [sys.executable, "-c", "from flows.cli.app import main; main()"]


def run(args: list[str]) -> float:
    """`winnow` with these arguments; its wall seconds."""
    start = time.perf_counter()
    done = subprocess.run([*WINNOW, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"winnow {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--benchmarks",
        choices=("four", "default"),
        default="four",
        help="four: the dev benchmarks; default: the config's",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="winnow-split-") as tmp:
        tmp = Path(tmp)
        pages = (SHARED / "web_raw/news_en_dev.jsonl").read_text().splitlines()[: args.docs]
        (tmp / "input").mkdir()
        (tmp / "input/pages.jsonl").write_text("\n".join(pages) + "\n")
        specs = [{"name": n, "layout": n, "path": str(SHARED / "benchmarks" / f)} for n, f in BENCHMARKS.items()]
        config = {
            "input": {"paths": [str(tmp / "input")]},
            "output": str(tmp / "out"),
            "run": {"cluster": {"n_workers": args.workers}},
            **({"decontam": {"benchmarks": specs}} if args.benchmarks == "four" else {}),
            "clean": {rules: {"enabled": False} for rules in ("gopher_quality", "gopher_repetition", "fineweb", "c4")},
        }
        (tmp / "config.json").write_text(json.dumps(config))
        mib = (tmp / "input/pages.jsonl").stat().st_size / 2**20
        wall = run(["run", "--config", str(tmp / "config.json"), "--quiet"])
        print(f"{args.docs} pages, {mib:.1f} MiB in one file; first run (index, models, every stage): {wall:.1f} s")
        store = tmp / "out/.winnow-store"
        for round_ in range(args.rounds):
            for stage in PER_DOCUMENT:  # the benchmark index (decontam/index) stays: a run builds it once
                for path in (store / stage).glob("*"):
                    if path.name != "index":
                        shutil.rmtree(path) if path.is_dir() else path.unlink()
            wall = run(["run", "--config", str(tmp / "config.json"), "--quiet"])
            summary = json.loads((tmp / "out/run_summary.json").read_text())
            seconds = {row["stage"]: row.get("seconds") for row in summary["funnel"]}
            stages = ", ".join(f"{s} {seconds.get(s.split('.')[0], 0):.1f} s" for s in ("toxicity", "decontam"))
            print(f"round {round_ + 1}: {wall:.1f} s wall, {stages}", flush=True)


if __name__ == "__main__":
    main()
