"""Semantic dedup at scale: what the stage costs beside its encoder, and what a new threshold costs.

    .venv/bin/python bench/dedup_semantic_scale.py 50000 200000 [--workers 2] [--encoder-docs 1000]

The encoder's cost is per document, so it is measured once, on real text: `--encoder-docs` news and
web documents of the dev sets through `tasks.dedup_semantic.embed` (the packaged MiniLM, one thread,
as one single-threaded Dask worker runs it), in documents/s.

Then for each N, in a fresh child process with a fresh LocalCluster of `--workers` single-threaded
workers (so peak RSS is per N), the real stage (`STAGES["dedup_semantic"]`, no Prefect flow) runs on N
generated documents whose embedding phase is replaced by a synthetic one: 384-dimensional unit vectors,
a topic's centre plus noise (a topic's documents sit at cosine ~0.4 to each other), and 3% planted
copies (their source's vector plus a little noise, cosine ~0.95). Everything after the embeddings is
the stage's own code: k-means on the bounded sample, assignment, nearest neighbours per bucket,
decisions, marks. Printed per N:
- the seconds of the embedding phase (synthetic: its I/O only), of the corpus-wide step (k-means,
  neighbours, decisions) and of the marks, with the corpus-wide step plus the marks as a share of
  what the encoder would take on these workers for N documents (#30's target: <= 25%);
- the planted copies found and the other documents removed;
- a rerun at a new threshold, and one with a density prune, against the cold stage with the encoder's
  time (#30's target: <= 5%);
- peak RSS per worker and of this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])  # workers import bench
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

from bench.decontam import read_jsonl  # noqa: E402
from bench.memory import peak_rss_mib  # noqa: E402

DIM = 384  # MiniLM's
DOCS_PER_TOPIC = 200
COPY_SHARE = 0.03
TOPIC_NOISE, COPY_NOISE = 1.2, 0.25  # noise norm against a unit centre: cosines ~0.4 within a topic, ~0.95 to a copy


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def vector(doc: int, n: int) -> np.ndarray:
    """Document `doc`'s synthetic embedding: its topic's centre plus noise, or its source's plus a little."""
    source = copy_source(doc, n)
    if source is not None:
        return unit(vector(source, n) + COPY_NOISE * unit(np.random.default_rng([doc, 1]).normal(size=DIM)))
    topic = doc % max(n // DOCS_PER_TOPIC, 1)
    centre = unit(np.random.default_rng([topic, 0]).normal(size=DIM))
    return unit(centre + TOPIC_NOISE * unit(np.random.default_rng([doc, 2]).normal(size=DIM)))


def copy_source(doc: int, n: int) -> int | None:
    """The earlier document a planted copy copies: the last 3% of ids copy one of the first half."""
    first_copy = n - int(COPY_SHARE * n)
    return None if doc < first_copy else (doc * 7919) % (n // 2)


def synthetic_embed(table: pa.Table, params, shard_name: str) -> pa.Table:
    """The embedding phase's output (EMBEDDING_SCHEMA) from each document's id, no encoder."""
    import tasks.dedup_semantic as sem
    from tasks.clusters import position

    ids = table.column("id").to_pylist()
    n = int(ids[0].split("/")[0]) if ids else 0
    vectors = np.stack([vector(int(i.split("/")[1]), n) for i in ids]).astype(np.float32) if ids else None
    return pa.table(
        [
            pa.array([position(shard_name, row) for row in range(len(ids))], pa.string()),
            pa.array([100] * len(ids), pa.int64()),
            pa.nulls(len(ids), pa.float64()),
            pa.array([sem.ENGLISH] * len(ids), pa.string()),
            pa.array(list(vectors) if ids else [], pa.list_(pa.float32())),
        ],
        schema=sem.EMBEDDING_SCHEMA,
    )


def encoder_docs_per_s(data: Path, n_docs: int) -> float:
    import torch

    import tasks.dedup_semantic as sem

    torch.set_num_threads(1)
    rows = [
        r["text"]
        for name in ("news_en_dev.jsonl", "html_pages_wetlike.jsonl")
        for r in read_jsonl(data / "web_raw" / name)
    ]
    table = pa.table({"text": rows[:n_docs], "lang": ["en"] * min(n_docs, len(rows))})
    params = sem.DedupSemanticParams().embedding_params()
    sem.embed(table.slice(0, 8), params, "warm")
    start = time.process_time()
    sem.embed(table, params, "s")
    return table.num_rows / (time.process_time() - start)


def timed_run(stage, ctx, upstream):
    """The stage's ref, and seconds per map (by stage name), of the corpus-wide step and in all."""
    import flows.stages.dedup_semantic as stage_module

    seconds: dict[str, float] = {}
    real_map, real_build = ctx.map, stage_module.build_clusters

    def timed_map(name, *a, **kw):
        start = time.perf_counter()
        try:
            return real_map(name, *a, **kw)
        finally:
            seconds[name] = seconds.get(name, 0) + time.perf_counter() - start

    def timed_build(*a, **kw):
        start = time.perf_counter()
        try:
            return real_build(*a, **kw)
        finally:
            seconds["corpus-wide"] = time.perf_counter() - start

    ctx.map = timed_map
    timed = dataclasses.replace(stage, corpus=dataclasses.replace(stage.corpus, build_clusters=timed_build))
    start = time.perf_counter()
    ref = timed.run(ctx, upstream)
    seconds["stage"] = time.perf_counter() - start
    return ref, seconds


def run_one(n: int, args) -> dict:
    from distributed import Client

    from flows.config import load_config
    from flows.engine.context import open_context
    from flows.parallel.cluster import local_cluster
    from flows.stages import STAGES

    declared = STAGES["dedup_semantic"]
    synthetic = dataclasses.replace(declared.phases[0], fn=synthetic_embed, reads=lambda params: ("id", "text"))
    stage = dataclasses.replace(declared, phases=(synthetic,))
    with tempfile.TemporaryDirectory(prefix="winnow-semdedup-scale-", dir=args.tmp) as tmp:
        os.makedirs(f"{tmp}/input")
        for start in range(0, n, args.shard_docs):
            ids = [f"{n}/{doc}" for doc in range(start, min(start + args.shard_docs, n))]
            pq.write_table(pa.table({"id": ids, "text": ["x"] * len(ids)}), f"{tmp}/input/part-{start:09d}.parquet")
        with (
            local_cluster(args.workers) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            figures: dict = {"n": n}
            for label, extra in (
                ("cold", []),
                ("threshold 0.9", ["dedup_semantic.threshold=0.9"]),
                ("density prune 0.8", ["dedup_semantic.prune=density", "dedup_semantic.keep_share=0.8"]),
            ):
                cfg = load_config(
                    overrides=[
                        f"input.paths=[{tmp}/input]",
                        f"output={tmp}/out",
                        f"run.cluster.address={cluster.scheduler_address}",
                        "dedup_semantic.enabled=true",
                        *extra,
                    ]
                )
                with open_context(cfg) as ctx:
                    upstream = STAGES["read"].run(ctx, None)
                    ref, seconds = timed_run(stage, ctx, upstream)
                    removed = [
                        t.column("id").to_pylist()
                        for shard in ref.shards
                        if (t := ctx.store.read_rejected("dedup_semantic", shard, ["id"])) is not None
                    ]
                removed = [int(i.split("/")[1]) for ids in removed for i in ids]
                planted = n - (n - int(COPY_SHARE * n))
                found = sum(copy_source(d, n) is not None for d in removed)
                figures[label] = {
                    "seconds": {k: round(v, 2) for k, v in seconds.items()},
                    "planted_found": f"{found}/{planted}",
                    "other_removed": len(removed) - found,
                }
            figures["peak_rss_worker_mib"] = [round(v) for v in client.run(peak_rss_mib).values()]
            figures["peak_rss_flow_mib"] = round(peak_rss_mib())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="*")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-docs", type=int, default=10_000)
    parser.add_argument("--encoder-docs", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one N, JSON out
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args)), flush=True)
        return
    rate = encoder_docs_per_s(args.data, args.encoder_docs)
    print(
        f"encoder (packaged MiniLM, 256 tokens, one thread): {rate:.1f} documents/s "
        f"on {args.encoder_docs} dev documents"
    )
    for n in args.n_docs:
        command = [
            sys.executable,
            __file__,
            "--one",
            str(n),
            "--workers",
            str(args.workers),
            "--shard-docs",
            str(args.shard_docs),
        ]
        if args.tmp:
            command += ["--tmp", args.tmp]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"N = {n} failed:\n{done.stderr[-5000:]}")
        out = done.stdout
        figures = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        encoder_s = n / (rate * args.workers)
        cold = figures["cold"]["seconds"]
        after = cold["corpus-wide"] + cold["dedup_semantic"]
        print(f"\n=== N = {n:,} ({args.workers} workers x 1 thread)")
        print(f"  encoder for N documents at the measured rate: {encoder_s:,.0f} s")
        print(
            f"  cold: embedding phase (synthetic, I/O only) {cold['dedup_semantic.embeddings']:.1f} s; "
            "corpus-wide step "
            f"{cold['corpus-wide']:.1f} s; marks {cold['dedup_semantic']:.1f} s; after the embeddings "
            f"{after:.1f} s = {100 * after / encoder_s:.1f}% of the encoder's time"
        )
        print(
            f"  planted copies found {figures['cold']['planted_found']}, "
            f"other documents removed {figures['cold']['other_removed']}"
        )
        cold_total = encoder_s + cold["stage"] - cold["dedup_semantic.embeddings"]
        for label in ("threshold 0.9", "density prune 0.8"):
            s = figures[label]["seconds"]["stage"]
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in figures[label]["seconds"].items() if k != "stage")
            print(
                f"  rerun, {label}: {s:.1f} s = {100 * s / cold_total:.2f}% of the cold stage with its encoder "
                f"({cold_total:,.0f} s): {parts}"
            )
        print(
            f"  peak RSS per worker {figures['peak_rss_worker_mib']} MiB; "
            f"this process {figures['peak_rss_flow_mib']} MiB"
        )


if __name__ == "__main__":
    main()
