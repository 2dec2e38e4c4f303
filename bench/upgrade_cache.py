"""Does a store written by an earlier revision stay cached under this one, with the same output?

    .venv/bin/python bench/upgrade_cache.py --base 09f4117 [--docs 20000] [--shards 8]

Builds an N-document corpus (bench/corpus.py), checks the base revision out as a detached worktree,
and runs the default `curate` flow with it into `upgraded/`. Then, with the working tree: reruns the
same config on that store (every stage should be cached, no shard computed, the dataset version
unchanged), and runs it cold into `fresh/`. Prints each stage's row of the rerun and whether the cold
run's dataset equals the base run's, file by file, byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One curate run in whichever tree is first on sys.path; prints the run summary as JSON. The flow
# moved from flows/curate.py to flows/orchestration/curate.py, so both are tried.
RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from flows.config import load_config
try:
    from flows.orchestration.curate import curate
except ImportError:
    from flows.curate import curate
summary = curate(load_config(overrides=[f"input.paths=[{sys.argv[2]}]", f"output={sys.argv[3]}", \
"run.cluster.n_workers=2"]))
print("SUMMARY " + json.dumps({"funnel": summary["funnel"], "version": summary["version"], \
"output": summary["output"]}))
"""


def curate(tree: Path, inputs: Path, output: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(tree), str(inputs), str(output)],
        capture_output=True,
        text=True,
        env={
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            **dict(__import__("os").environ),
        },
    )
    if done.returncode:
        raise SystemExit(f"curate in {tree} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("SUMMARY "))
    return json.loads(line.removeprefix("SUMMARY "))


def data_digests(data_dir: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(Path(data_dir).glob("*.parquet"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision that writes the store (any git revision)")
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.corpus import build_corpus

    with tempfile.TemporaryDirectory(prefix="winnow-upgrade-") as tmp:
        tmp = Path(tmp)
        base = tmp / "repo"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.base], check=True)
        (tmp / "shared").symlink_to(ROOT.parent / "shared")
        try:
            build_corpus(args.docs, tmp / "input", n_shards=args.shards)
            written = curate(base, tmp / "input", tmp / "upgraded")
            rerun = curate(ROOT, tmp / "input", tmp / "upgraded")
            fresh = curate(ROOT, tmp / "input", tmp / "fresh")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
        print(
            f"{args.docs:,} documents in {args.shards} shards; "
            f"store written by {args.base}, rerun by the working tree:"
        )
        print(f"{'stage':<14}{'docs in':>9}{'docs out':>10}{'cached':>8}{'shards computed':>17}  why")
        for row in rerun["funnel"]:
            print(
                f"{row['stage']:<14}{row['docs_in']:>9,}{row['docs_out']:>10,}{'yes' if row['cached'] else 'no':>8}"
                f"{row['shards_computed']:>17}  {row['why']}"
            )
        same_rows = [(r["stage"], r["docs_out"]) for r in written["funnel"]] == [
            (r["stage"], r["docs_out"]) for r in rerun["funnel"]
        ]
        print(
            f"every stage cached: {all(r['cached'] for r in rerun['funnel'])}; shards computed: "
            f"{sum(r['shards_computed'] for r in rerun['funnel'])}; "
            f"dataset version kept: {rerun['version'] == written['version']}; "
            f"same funnel: {same_rows}"
        )
        base_files, fresh_files = data_digests(written["output"]), data_digests(fresh["output"])
        print(
            f"cold run of the working tree vs the base's dataset: {len(fresh_files)} files, "
            f"byte-identical: {base_files == fresh_files}"
        )


if __name__ == "__main__":
    main()
