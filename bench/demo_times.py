"""Wall times of `make demo` as a new user meets it: a clean clone, cold (venv, install, demo), then again.

    python3 bench/demo_times.py [--repo .] [--keep]

Clones the repository's HEAD into a temporary directory with `../shared` linked beside it (as CI
has it), runs `make install` and `make demo` (together what the first `make demo` does on a fresh
clone), then `make demo` again, and prints the wall times and what the rerun computed (it should be
nothing: every stage cached, the model kept).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return time.perf_counter() - started, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="winnow-demo-"))
    try:
        subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(base / "repo")], check=True)
        (base / "shared").symlink_to(args.repo.resolve().parent / "shared")
        repo = base / "repo"
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        installed, _ = timed(["make", "install"], repo)  # what `make demo` does first on a fresh clone
        demo, _ = timed(["make", "demo"], repo)
        rerun, output = timed(["make", "demo"], repo)
        computed = [line for line in output.splitlines() if re.match(r"│ \w+ .*│ +no \(", line)]
        print(
            f"commit {commit}: make demo cold {installed + demo:.0f} s "
            f"(install {installed:.0f} s, demo {demo:.0f} s); "
            f"rerun {rerun:.0f} s; stages computed on the rerun: {len(computed)}"
        )
        print("\n".join(computed))
    finally:
        if args.keep:
            print(f"clone kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
