"""A bench script on two revisions in one run: the working tree against a base commit, interleaved.

    .venv/bin/python bench/ab.py --base HEAD~1 [--rounds 2] -- bench/throughput.py 20000

Checks the base out as a detached git worktree beside a link to ../shared, then runs the same
bench command in each tree, alternating which goes first every round, so both see the same machine
load. Prints each run's output, then the wall seconds per run and the ratio working tree / base
(median over rounds): above 1 means the working tree is slower. Timings on a shared machine drift;
the ratio within one run is the figure to quote.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(tree: Path, command: list[str]) -> tuple[float, str]:
    # PYTHONPATH too: a bench that starts `winnow` would otherwise import the editable install's
    # code, the working tree, in both runs.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *command], cwd=tree, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed in {tree} (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="commit to compare against (any git revision)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("command", nargs="+", help="a bench script (relative to the repo) and its arguments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="winnow-ab-") as tmp:
        base = Path(tmp) / "repo"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.base], check=True)
        (Path(tmp) / "shared").symlink_to(ROOT.parent / "shared")
        trees = {"base": base, "working tree": ROOT}
        seconds: dict[str, list[float]] = {name: [] for name in trees}
        try:
            for round_ in range(args.rounds):
                for name in list(trees) if round_ % 2 == 0 else list(reversed(trees)):
                    wall, output = timed(trees[name], args.command)
                    seconds[name].append(wall)
                    print(
                        f"--- round {round_ + 1}, {name} ({args.base if name == 'base' else 'uncommitted'}): "
                        f"{wall:.1f} s\n{output}",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    ratios = [tree / base for tree, base in zip(seconds["working tree"], seconds["base"])]
    print(
        f"{' '.join(args.command)}: base {args.base} "
        + ", ".join(f"{s:.1f}" for s in seconds["base"])
        + " s; working tree "
        + ", ".join(f"{s:.1f}" for s in seconds["working tree"])
        + f" s; ratio working tree / base {statistics.median(ratios):.3f} (median of {len(ratios)})"
    )


if __name__ == "__main__":
    main()
