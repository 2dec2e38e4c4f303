"""Peak memory of a whole `winnow run`, by process: which part of the tree is large (issue #36).

    .venv/bin/python bench/process_memory.py 50000 [--shards 8] [--set KEY=VALUE ...] [--every 0.2]

Builds an N-document corpus (bench/corpus.py) as `--shards` gzip files, runs `winnow run` on it cold in
its own process, and samples the whole process tree every `--every` seconds (psutil). Each process gets
a role from its place and command line: the CLI that supervises the run, the flow process (Prefect's
flow, the Dask scheduler and the nannies, which are objects in it, not processes), Prefect's temporary
API server, Dask workers, and anything else (multiprocessing's resource tracker). Prints:

- per role, the processes' own peaks (Linux VmHWM, last seen; exact, whatever the sampling missed);
- the tree's peak RSS as sampled (the sum over all processes at one moment), and what each role
  held at that moment: the figure datatrove's 479 MiB is compared with;
- per stage (the running one, read from the run journal in the store as each sample is taken), the
  flow process's and the workers' largest sampled RSS: where each grows;
- the wall time.

RSS counts shared pages (the Python runtime, numpy, mapped model files) in every process that maps
them, as `ps` and datatrove's measurement do.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402

WINNOW = Path(sys.executable).parent / "winnow"
MIB = 1 << 20


def gz_corpus(n_docs: int, shards: int, directory: Path) -> int:
    """The bench corpus as `shards` gzip JSONL files; their total bytes."""
    raw = directory / "raw"
    build_corpus(n_docs, raw)
    lines = [line for path in sorted(raw.glob("*.jsonl")) for line in path.read_bytes().splitlines(keepends=True)]
    out = directory / "in"
    out.mkdir()
    for k in range(shards):
        (out / f"part-{k:02d}.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[k::shards]), 6))
    shutil.rmtree(raw)
    return sum(p.stat().st_size for p in out.iterdir())


def role(process: psutil.Process, root: psutil.Process, flow_pid: int | None) -> str:
    """What a process of the run's tree is, from its place and command line."""
    if process.pid == root.pid:
        return "CLI supervisor"
    if process.pid == flow_pid:
        return "flow process (Prefect flow, Dask scheduler, nannies)"
    command = " ".join(process.cmdline())
    if "uvicorn" in command or "prefect" in command and "server" in command:
        return "Prefect temporary API server"
    if "spawn_main" in command and "resource_tracker" not in command:
        return "Dask worker"
    return "other (" + (process.name() or "?") + ")"


def hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def running_stage(store: str) -> str:
    """The stage the run's journal says is running ("-" before the first and between stages)."""
    for path in glob.glob(f"{store}/_runs/*/journal.json"):
        try:
            journal = json.loads(Path(path).read_text())
        except (OSError, ValueError):  # replaced while read
            continue
        return next((stage["name"] for stage in journal["stages"] if stage["state"] == "running"), "-")
    return "-"


def sample_run(command: list[str], every: float, store: str) -> tuple[int, float, dict, dict, dict]:
    """Run `command`, sampling its tree; (exit status, wall, per-process peaks by (role, pid), the
    tree's sampled peak by role, the largest sampled RSS by stage and role)."""
    by_stage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    start = time.perf_counter()
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(run.pid)
    peaks: dict[tuple[str, int], float] = {}
    roles: dict[int, str] = {}
    tree_peak, tree_at_peak = 0.0, {}
    while run.poll() is None:
        try:
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        flow_pid = next((c.pid for c in children if c.ppid() == root.pid), None)
        held: dict[str, float] = defaultdict(float)
        for process in [root, *children]:
            try:
                roles.setdefault(process.pid, role(process, root, flow_pid))
                rss = process.memory_info().rss / MIB
            except psutil.NoSuchProcess:
                continue
            held[roles[process.pid]] += rss
            peak = hwm_mib(process.pid)
            if peak is not None:
                peaks[(roles[process.pid], process.pid)] = peak
        if sum(held.values()) > tree_peak:
            tree_peak, tree_at_peak = sum(held.values()), dict(held)
        stage = by_stage[running_stage(store)]
        for name, mib in held.items():
            stage[name] = max(stage[name], mib)
        time.sleep(every)
    return run.wait(), time.perf_counter() - start, peaks, tree_at_peak, by_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a config override")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="winnow-memory-") as tmp:
        gz_bytes = gz_corpus(args.n_docs, args.shards, Path(tmp))
        command = [str(WINNOW), "run", "-i", f"{tmp}/in", "-o", f"{tmp}/out", "--quiet"]
        for override in args.overrides:
            command += ["--set", override]
        env_note = {k: os.environ[k] for k in ("PREFECT_API_URL",) if k in os.environ}
        status, wall, peaks, at_peak, by_stage = sample_run(command, args.every, f"{tmp}/out/.winnow-store")
    if status:
        raise SystemExit(f"winnow run failed with exit {status}")
    print(f"{args.n_docs:,} documents in {args.shards} gzip files ({gz_bytes / MIB:.1f} MiB); wall {wall:.1f} s")
    if env_note:
        print(f"reporting to {env_note['PREFECT_API_URL']}: no temporary API server")
    print("\nper process, its own peak (VmHWM):")
    by_role: dict[str, list[float]] = defaultdict(list)
    for (name, _), peak in peaks.items():
        by_role[name].append(peak)
    for name, values in sorted(by_role.items(), key=lambda kv: -max(kv[1])):
        print(f"  {name}: {', '.join(f'{v:,.0f}' for v in sorted(values, reverse=True))} MiB")
    total = sum(at_peak.values())
    print(f"\nthe tree's sampled peak: {total:,.0f} MiB, then held by:")
    for name, mib in sorted(at_peak.items(), key=lambda kv: -kv[1]):
        print(f"  {name}: {mib:,.0f} MiB ({mib / total:.0%})")
    flow, workers = "flow process (Prefect flow, Dask scheduler, nannies)", "Dask worker"
    print("\nlargest sampled RSS while each stage ran (flow process / both workers), MiB:")
    for stage, held in by_stage.items():
        print(f"  {stage}: {held.get(flow, 0):,.0f} / {held.get(workers, 0):,.0f}")


if __name__ == "__main__":
    main()
