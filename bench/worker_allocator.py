"""The default toxicity stage in `winnow run` under Dask's allocator setting and under Winnow's.

    .venv/bin/python bench/worker_allocator.py [--docs 50000] [--rounds 2]

Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536; `flows.parallel.cluster.local_cluster` starts
them with `WORKER_MALLOC`. On an N-document bench corpus (`bench/corpus.py`), one cold run fills a
store; then each round reruns the flow once per setting with only `toxicity` recomputed (its
`batch_size` differs per run, so its cache key does), settings alternating which goes first, and
prints the toxicity stage's seconds from each run summary and the largest resident set (RSS, sampled
every 0.2 s with psutil) of any Dask worker process during the run: what keeping freed pages costs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402

# `winnow run` in a child process, optionally with Dask's own worker allocator setting.
RUN = """
import sys
import flows.parallel.cluster as cluster
if sys.argv[1] == "dask":
    cluster.WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 65536}
from flows.cli.app import main
sys.argv = ["winnow", "run", *sys.argv[2:]]
main()
"""


def peak_worker_rss(process: subprocess.Popen) -> float:
    """Sample the run's process tree until it exits; the largest RSS of a Dask worker, in MiB."""
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "spawn_main" in " ".join(child.cmdline()):  # a LocalCluster worker process
                        peak = max(peak, child.memory_info().rss)
        time.sleep(0.2)
    return peak / 2**20


def toxicity_seconds(setting: str, work: Path, run: int) -> tuple[float, float]:
    spec = {"backend": "heads", "name": "toxicity", "model_path": "winnow:toxicity-use", "batch_size": 500 + run}
    scorer = json.dumps([spec])
    output = work / f"out-{run}"
    command = [sys.executable, "-c", RUN, setting, "--set", f"input.paths=[{work / 'input'}]"]
    command += ["--set", f"output={output}", "--set", f"store={work / 'store'}", "--set", f"toxicity.scorers={scorer}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss = peak_worker_rss(process)
    if process.returncode:
        raise SystemExit(f"winnow run failed (exit {process.returncode}): {' '.join(command)}")
    summary = json.loads((output / "run_summary.json").read_text())
    return next(row["seconds"] for row in summary["funnel"] if row["stage"] == "toxicity"), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="winnow-allocator-") as tmp:
        work = Path(tmp)
        build_corpus(args.docs, work / "input")
        cold, rss = toxicity_seconds("winnow", work, 0)
        print(f"cold run (fills the store): toxicity {cold:.1f} s, peak worker RSS {rss:.0f} MiB", flush=True)
        seconds: dict[str, list[float]] = {"dask": [], "winnow": []}
        for round_ in range(args.rounds):
            for setting in ("dask", "winnow") if round_ % 2 == 0 else ("winnow", "dask"):
                stage, rss = toxicity_seconds(setting, work, 1 + sum(map(len, seconds.values())))
                seconds[setting].append(stage)
                print(
                    f"round {round_ + 1}, {setting}'s setting: toxicity {stage:.1f} s, peak worker RSS {rss:.0f} MiB",
                    flush=True,
                )
    print(
        "toxicity stage, Dask's MALLOC_TRIM_THRESHOLD_=65536: "
        + ", ".join(f"{s:.1f}" for s in seconds["dask"])
        + " s; Winnow's WORKER_MALLOC: "
        + ", ".join(f"{s:.1f}" for s in seconds["winnow"])
        + " s"
    )


if __name__ == "__main__":
    main()
