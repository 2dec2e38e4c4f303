"""Fuzzy dedup at scale: the `dedup_fuzzy` stage alone on N generated ~2,000-character documents.

    .venv/bin/python bench/dedup_scale.py 100000 400000 [1600000] [--workers 2] [--shard-docs 50000]

For each N, in a fresh child process (so peak RSS is per N) with a fresh LocalCluster of `--workers`
single-threaded worker processes:

1. Generates N documents as Parquet shards (`id`, `text`) in a temp dir. Text is words drawn from a
   Zipf-weighted synthetic vocabulary by a counter-based hash of (doc, word), so any document can be
   regenerated on its own and the whole thing is vectorised (numpy + Arrow `binary_join`). ~5% of
   documents are near-duplicates of an earlier original (5-15% of its words edited: half deleted,
   half inserted, in spans of 4-16 words, as a changed sentence or paragraph would be), ~1% exact
   copies. Each planted doc's true word-5-gram Jaccard with its source is computed (numpy sets).
2. Runs the real code path: `load_config` -> `open_context` -> `STAGES["read"].run(ctx, None)` ->
   `STAGES["dedup_fuzzy"].run(ctx, upstream)` (the stage's declaration, no Prefect flow).
3. Times the phases by wrapping, in this process only: `ctx.map` (signatures, bands, apply),
   `flows.stages.dedup_fuzzy.build_clusters` (whole corpus-wide step). A batch on the Dask path
   (`--clusters dask`, or more band rows than `IN_MEMORY_BAND_ROWS`) splits the step by wrapping
   `flows.stages.dedup_fuzzy.fuzzy_candidates` (shuffle + candidate edges), `verify_candidates`
   (verification) and `flows.parallel.components.connected_components` (label propagation rounds);
   keepers = the rest. A batch clustered in one task (`--clusters one-task`, the default below the
   bound) is replayed after the stage in this process on the same files, its steps timed: Parquet
   reads, candidate edges, verification, components, keepers.
   Verification's share of the stage is printed in wall time and in worker CPU time (a ratio within
   one run: comparable across runs even when other work shares the cores). Its effect: candidate and
   verified edges, each split into edges within a planted family (a document and its planted copies)
   and false positives (edges between unrelated documents).
   Signature docs/s per core is rows / stage-function seconds from the signature shards' stats.json
   (wall time: inflated when other work shares the cores); worker CPU seconds per phase (getrusage
   on every worker before and after) and the load average are printed beside it.
4. Reads the marks back and reports clusters and removed docs against what was planted.

Then, in the parent, the baseline: plain datasketch `MinHash(num_perm=112)` + `update_batch` per
document with Python word-5-gram shingles on 5,000 of the same documents, one core, beside
`tasks.dedup_fuzzy.signatures` on the same 5,000 in the same process.

A context opened outside the flow reports no progress artifact, so no Prefect API server is started.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

from bench.memory import peak_rss_mib  # noqa: E402

SEED = 20261122
VOCAB_SIZE = 60_000
TARGET_CHARS = 2000
NEAR_RATE, EXACT_RATE = 0.05, 0.01
ORIGINAL, NEAR, EXACT = 0, 1, 2
BASELINE_DOCS = 5000

# ------------------------------------------------------------------------------ generation

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a counter-based hash, so word j of doc d is a pure function of (d, j)."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform(doc: np.ndarray, salt: int) -> np.ndarray:
    return (mix(doc.astype(np.uint64) * np.uint64(1_000_003) + np.uint64(salt)) >> np.uint64(11)) / float(1 << 53)


class Vocab:
    def __init__(self, seed: int = SEED):
        rng = np.random.default_rng(seed)
        lengths = np.clip(rng.poisson(5.0, VOCAB_SIZE), 2, 14)
        letters = rng.integers(ord("a"), ord("z") + 1, lengths.sum(), dtype=np.uint8)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        words = pa.StringArray.from_buffers(VOCAB_SIZE, pa.py_buffer(offsets), pa.py_buffer(letters.tobytes()))
        # distinct words: the generated text's shingle sets are then its word-index 5-gram sets
        self.words = pc.unique(words)
        self.size = len(self.words)
        weights = 1.0 / (np.arange(self.size) + 20.0) ** 1.05  # Zipf-like, as word frequencies
        cdf = np.cumsum(weights) / weights.sum()
        # inverse CDF quantised to 2**22 steps: a table lookup instead of a binary search per word
        self.table = np.minimum(np.searchsorted(cdf, (np.arange(1 << 22) + 0.5) / (1 << 22)), self.size - 1).astype(
            np.int32
        )
        word_lengths = pc.utf8_length(self.words).to_numpy().astype(float)
        self.mean_words = TARGET_CHARS / (float((word_lengths * weights).sum() / weights.sum()) + 1.0)

    def draw(self, u: np.ndarray) -> np.ndarray:
        return self.table[(u * (1 << 22)).astype(np.int64)]

    def doc_words(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Word indices (flat) and word counts of original documents `docs`."""
        counts = np.round(self.mean_words * (0.9 + 0.2 * uniform(docs, 1))).astype(np.int64)
        starts = np.cumsum(counts) - counts
        j = np.arange(counts.sum(), dtype=np.int64) - np.repeat(starts, counts)
        key = np.repeat(docs.astype(np.uint64), counts) * np.uint64(1 << 20) + j.astype(np.uint64)
        return self.draw((mix(key ^ np.uint64(0xA5A5)) >> np.uint64(11)) / float(1 << 53)), counts

    def text(self, flat: np.ndarray, counts: np.ndarray) -> pa.Array:
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        return pc.binary_join(pa.ListArray.from_arrays(offsets, self.words.take(pa.array(flat))), " ")


def roles(docs: np.ndarray) -> np.ndarray:
    u = uniform(docs, 2)
    role = np.where(u < NEAR_RATE, NEAR, np.where(u < NEAR_RATE + EXACT_RATE, EXACT, ORIGINAL))
    role[docs == 0] = ORIGINAL
    return role


def sources(docs: np.ndarray) -> np.ndarray:
    """An earlier original for every doc (planted ones only use it): follow until original."""
    src = np.floor(uniform(docs, 3) * docs).astype(np.int64)
    pending = roles(src) != ORIGINAL
    while pending.any():
        src[pending] = np.floor(uniform(src[pending], 3) * src[pending]).astype(np.int64)
        pending[pending] = roles(src[pending]) != ORIGINAL
    return src


def spans_mask(counts: np.ndarray, budget: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flat mask over docs of `counts` tokens covering ~`budget` tokens per doc in spans of 4-16,
    plus (flat span starts, span lengths) for insertion use."""
    n_spans = np.maximum(1, np.round(budget / 10.0)).astype(np.int64)
    span_doc = np.repeat(np.arange(counts.size), n_spans)
    span_len = np.clip(np.round(budget[span_doc] / n_spans[span_doc] * rng.uniform(0.6, 1.4, span_doc.size)), 4, 16)
    span_len = np.minimum(span_len.astype(np.int64), counts[span_doc] - 1)
    starts = np.cumsum(counts) - counts
    begin = starts[span_doc] + np.floor(rng.random(span_doc.size) * (counts[span_doc] - span_len)).astype(np.int64)
    delta = np.zeros(counts.sum() + 1, np.int64)
    np.add.at(delta, begin, 1)
    np.add.at(delta, begin + span_len, -1)
    return np.cumsum(delta[:-1]) > 0, (span_doc, span_len)


def edit(vocab: Vocab, flat: np.ndarray, counts: np.ndarray, rng: np.random.Generator):
    """Near-duplicates: delete then insert ~rate/2 of the words each, in spans."""
    rate = rng.uniform(0.05, 0.15, counts.size)
    half = rate * counts / 2
    deleted, _ = spans_mask(counts, half, rng)
    doc_of = np.repeat(np.arange(counts.size), counts)
    flat, doc_of = flat[~deleted], doc_of[~deleted]
    counts = np.bincount(doc_of, minlength=counts.size).astype(np.int64)
    # insertions: spans of random words after random kept tokens
    n_spans = np.maximum(1, np.round(half / 10.0)).astype(np.int64)
    span_doc = np.repeat(np.arange(counts.size), n_spans)
    span_len = np.clip(np.round(half[span_doc] / n_spans[span_doc] * rng.uniform(0.6, 1.4, span_doc.size)), 4, 16)
    starts = np.cumsum(counts) - counts
    at = starts[span_doc] + np.floor(rng.random(span_doc.size) * counts[span_doc]).astype(np.int64)
    extra = np.zeros(flat.size, np.int64)
    np.add.at(extra, at, span_len.astype(np.int64))
    reps = 1 + extra
    out = np.repeat(flat, reps)
    first = np.zeros(out.size, bool)
    first[np.cumsum(reps) - reps] = True
    out[~first] = vocab.draw(rng.random(int((~first).sum())))
    new_counts = np.bincount(np.repeat(doc_of, reps), minlength=counts.size).astype(np.int64)
    return out, new_counts, rate


def shingle_sets(flat: np.ndarray, counts: np.ndarray, n: int = 5) -> list[np.ndarray]:
    """Word-index 5-gram keys per doc (unique), for exact Jaccard of planted pairs."""
    key = np.zeros(flat.size, np.uint64)
    padded = np.concatenate([flat.astype(np.uint64), np.zeros(n, np.uint64)])
    with np.errstate(over="ignore"):
        for j in range(n):
            key = key * np.uint64(VOCAB_SIZE + 1) + padded[j : j + flat.size]  # exact for 5 x 16 bits
    ends = np.cumsum(counts)
    return [np.unique(key[e - c : e - n + 1]) for c, e in zip(counts.tolist(), ends.tolist())]


def exact_jaccard(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(a))
    for i, (x, y) in enumerate(zip(a, b)):
        inter = np.intersect1d(x, y, assume_unique=True).size
        out[i] = inter / (x.size + y.size - inter)
    return out


def generate_shard(args: tuple[int, int, int, str]) -> dict:
    """Shard `index` of docs [lo, hi): writes <dir>/shard-XXXXX.parquet and returns its truth."""
    index, lo, hi, out_dir = args
    vocab = Vocab()
    rng = np.random.default_rng([SEED, index])
    docs = np.arange(lo, hi, dtype=np.int64)
    role = roles(docs)
    base = np.where(role == ORIGINAL, docs, sources(docs))
    flat, counts = vocab.doc_words(base)  # exact copies and near-dup bases: their source's words
    near = np.flatnonzero(role == NEAR)
    starts = np.cumsum(counts) - counts
    take = (
        np.concatenate([np.arange(s, s + c) for s, c in zip(starts[near].tolist(), counts[near].tolist())])
        if near.size
        else np.zeros(0, np.int64)
    )
    edited, edited_counts, rate = edit(vocab, flat[take], counts[near], rng)
    jaccard = exact_jaccard(shingle_sets(flat[take], counts[near]), shingle_sets(edited, edited_counts))
    # splice the edited docs back in
    keep_tok = np.ones(flat.size, bool)
    keep_tok[take] = False
    doc_of = np.repeat(np.arange(docs.size), counts)[keep_tok]
    all_doc = np.concatenate([doc_of, np.repeat(near, edited_counts)])
    all_tok = np.concatenate([flat[keep_tok], edited])
    order = np.argsort(all_doc, kind="stable")
    counts = counts.copy()
    counts[near] = edited_counts
    texts = vocab.text(all_tok[order], counts)
    ids = pc.cast(pa.array(docs), pa.string())
    path = f"{out_dir}/shard-{index:05d}.parquet"
    pq.write_table(pa.table({"id": ids, "text": texts}), path, compression="zstd")
    truth_j = np.full(docs.size, np.nan)
    truth_j[near] = jaccard
    truth_j[role == EXACT] = 1.0
    return {
        "role": role,
        "source": np.where(role == ORIGINAL, -1, base),
        "jaccard": truth_j,
        "chars": int(pc.sum(pc.utf8_length(texts)).as_py()),
        "rate": rate,
    }


def generate(n: int, shard_docs: int, out_dir: str, workers: int) -> dict:
    jobs = [(i, lo, min(lo + shard_docs, n), out_dir) for i, lo in enumerate(range(0, n, shard_docs))]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(generate_shard, jobs))
    return {
        "role": np.concatenate([p["role"] for p in parts]),
        "source": np.concatenate([p["source"] for p in parts]),
        "jaccard": np.concatenate([p["jaccard"] for p in parts]),
        "chars": sum(p["chars"] for p in parts),
        "shards": len(jobs),
    }


# ------------------------------------------------------------------------------ one N


class Timer:
    """Wall time of each wrapped call, by label, in call order."""

    def __init__(self, progress: bool = True):
        self.events: list[tuple[str, float]] = []
        self.progress = progress

    def wrap(self, label, fn):
        def timed(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                name = label(*a, **kw) if callable(label) else label
                self.events.append((name, time.perf_counter() - start))
                if self.progress:
                    print(f"  .. {name} done in {time.perf_counter() - start:.1f} s", flush=True)

        return timed

    def total(self, label: str) -> float:
        return sum(s for name, s in self.events if name == label)

    def count(self, label: str) -> int:
        return sum(1 for name, _ in self.events if name == label)


def worker_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds the workers spent during each wrapped call (all threads: the stage function,
    Parquet I/O, Dask): less sensitive than wall time to other work sharing the cores."""

    def __init__(self, client):
        self.client = client
        self.seconds: dict[str, float] = {}

    def now(self) -> float:
        return sum(self.client.run(worker_cpu_seconds).values())

    def wrap(self, label, fn):
        def metered(*a, **kw):
            start = self.now()
            try:
                return fn(*a, **kw)
            finally:
                name = label(*a, **kw) if callable(label) else label
                self.seconds[name] = self.seconds.get(name, 0.0) + self.now() - start

        return metered


def parquet_rows(path: str) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(Path(path).rglob("*.parquet")))


def recorded(calls: list, fn):
    """`fn`, each call's arguments appended to `calls`."""

    def recording(*a, **kw):
        calls.append((a, kw))
        return fn(*a, **kw)

    return recording


def replay_one_task(store, build_calls: list, tmp: str) -> dict | None:
    """The stage's one-task clustering (`clusters_in_one_task`) again, in this process on the same
    files, each step timed; its candidate and verified edges too. None when the stage took the Dask path."""
    import flows.stages.dedup_fuzzy as dedup
    from flows.engine.store import ArtifactStore
    from tasks import dedup_fuzzy as fz

    (ctx, params, signatures, entries, _), _ = build_calls[-1]
    band_paths, indexed = ctx.paths(signatures[1]), [e.path for e in entries]
    if dedup.band_row_count(store, params, band_paths, indexed) > dedup.IN_MEMORY_BAND_ROWS:
        return None
    signature_paths = dict(zip((s.name for s in signatures[0].shards), ctx.paths(signatures[0])))
    signature_paths |= {entry.name: entry.path for entry in entries}
    timer, edges = Timer(progress=False), {}

    def kept(label, fn):
        def keeping(*a, **kw):
            edges[label] = out = fn(*a, **kw)
            return out

        return keeping

    steps = {
        (ArtifactStore, "read_table"): "Parquet reads",
        (fz, "candidate_edges"): "candidate edges",
        (fz, "verify_edges"): "verify",
        (fz, "label_components"): "components",
        (fz, "choose_keepers"): "keepers",
        (ArtifactStore, "write_table"): "write",
    }
    originals = {key: getattr(*key) for key in steps}
    try:
        for (owner, name), label in steps.items():
            fn = originals[(owner, name)]
            if name in ("candidate_edges", "verify_edges"):
                fn = kept(name, fn)
            setattr(owner, name, timer.wrap(label, fn))
        start = time.perf_counter()
        dedup.clusters_in_one_task(band_paths, indexed, signature_paths, params, store.url, f"{tmp}/replay.parquet")
        total = time.perf_counter() - start
    finally:
        for (owner, name), fn in originals.items():
            setattr(owner, name, fn)
    figures = {label: timer.total(label) for label in dict.fromkeys(steps.values())}
    figures["the rest (concat, filters, member join)"] = total - sum(figures.values())
    edges.setdefault("verify_edges", edges["candidate_edges"])  # verify=false: every candidate stays
    return figures | edges


def run_one(n: int, args) -> None:
    from distributed import Client

    import flows.parallel.components
    import flows.stages.dedup_fuzzy as dedup
    from flows.config import load_config
    from flows.engine.context import open_context
    from flows.parallel.cluster import local_cluster
    from flows.stages import STAGES

    timer = Timer()
    declared = STAGES["dedup_fuzzy"]
    SIGNATURES, BANDS = (phase.name for phase in declared.phases)
    phase = ["other"]
    spilled: dict[str, list[int]] = {"candidates": [], "verify": [], "components": []}  # rows per spill, by phase
    edge_sets: dict[str, pa.Table] = {}  # read back as spilled: the work dir is removed after the step
    real_spill = flows.parallel.components.spill

    def in_phase(label, fn):
        def phased(*a, **kw):
            phase.append(label)
            try:
                return fn(*a, **kw)
            finally:
                phase.pop()

        return phased

    def spill(client, frame, spill_dir, *a, **kw):
        before = set(Path(spill_dir).glob("round-*")) if Path(spill_dir).exists() else set()
        out = real_spill(client, frame, spill_dir, *a, **kw)
        new = set(Path(spill_dir).glob("round-*")) - before
        spilled.setdefault(phase[-1], []).append(sum(parquet_rows(str(p)) for p in new))
        if spill_dir.endswith(("/candidates", "/edges")):
            edge_sets[phase[-1]] = pa.concat_tables(
                [pq.read_table(f, columns=["src", "dst"]) for p in new for f in sorted(p.rglob("*.parquet"))]
            )
        return out

    flows.parallel.components.spill = spill
    if args.clusters != "auto":
        dedup.IN_MEMORY_BAND_ROWS = 0 if args.clusters == "dask" else 1 << 62
    build_calls = []
    dedup.fuzzy_candidates = timer.wrap("candidates", in_phase("candidates", dedup.fuzzy_candidates))
    dedup.verify_candidates = timer.wrap("verify", in_phase("verify", dedup.verify_candidates))
    flows.parallel.components.connected_components = timer.wrap(
        "components", in_phase("components", flows.parallel.components.connected_components)
    )

    with tempfile.TemporaryDirectory(prefix="winnow-dedup-scale-", dir=args.tmp) as tmp:
        start = time.perf_counter()
        os.makedirs(f"{tmp}/input")
        truth = generate(n, args.shard_docs, f"{tmp}/input", args.workers)
        gen_s = time.perf_counter() - start
        input_mb = sum(p.stat().st_size for p in Path(tmp, "input").iterdir()) / 1e6
        print(
            f"\n=== N = {n:,}: {truth['shards']} shards of <= {args.shard_docs:,} docs, "
            f"{truth['chars'] / n:,.0f} chars/doc, {input_mb:,.0f} MB Parquet, generated in {gen_s:.1f} s "
            f"({args.workers} processes)",
            flush=True,
        )

        with (
            local_cluster(args.workers) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            cfg = load_config(
                overrides=[
                    f"input.paths=[{tmp}/input]",
                    f"output={tmp}/out",
                    f"run.cluster.address={cluster.scheduler_address}",
                ]
            )
            with open_context(cfg) as ctx:
                start = time.perf_counter()
                upstream = STAGES["read"].run(ctx, None)
                read_s = time.perf_counter() - start
                rss_before = client.run(peak_rss_mib)
                cpu = CpuMeter(client)
                ctx.map = cpu.wrap(lambda stage, *a, **kw: stage, timer.wrap(lambda stage, *a, **kw: stage, ctx.map))
                build = cpu.wrap("build", timer.wrap("build", recorded(build_calls, dedup.build_clusters)))
                fuzzy = dataclasses.replace(
                    declared, corpus=dataclasses.replace(declared.corpus, build_clusters=build)
                )
                dedup.verify_candidates = cpu.wrap("verify", dedup.verify_candidates)
                load_before = os.getloadavg()[0]
                start = time.perf_counter()
                final = fuzzy.run(ctx, upstream)
                stage_s = time.perf_counter() - start
                load_after = os.getloadavg()[0]
                worker_rss = client.run(peak_rss_mib)
                flow_rss = peak_rss_mib()
                store = ctx.store
                sig_stats = [
                    json.loads(p.read_text()) for p in Path(store.root, SIGNATURES, "shards").glob("*/stats.json")
                ]
                band_stats = [
                    json.loads(p.read_text()) for p in Path(store.root, BANDS, "shards").glob("*/stats.json")
                ]
                kept = pa.concat_tables(
                    [
                        store.read_view("dedup_fuzzy", s, ["id", "dup_cluster", "dup_cluster_size"])
                        for s in final.shards
                    ]
                )
                rejected = pa.concat_tables(
                    [
                        t
                        for s in final.shards
                        if (t := store.read_rejected("dedup_fuzzy", s, ["id", "dup_cluster"])) is not None
                    ]
                )
                ids_by_shard = {
                    s.name: pc.cast(store.read_view("read", s, ["id"]).column("id"), pa.int64()).to_numpy()
                    for s in upstream.shards
                }

            one_task = replay_one_task(store, build_calls, tmp)
            if one_task is not None:
                edge_sets.update(candidates=one_task.pop("candidate_edges"), verify=one_task.pop("verify_edges"))

        # ---- figures
        sig_rows = sum(s["rows_in"] for s in sig_stats)
        sig_sec = sum(s["seconds"] for s in sig_stats)
        band_sec = sum(s["seconds"] for s in band_stats)
        band_rows = sum(s["rows_kept"] for s in band_stats)
        build = timer.total("build")
        cand_s, verify_s, cc_s = timer.total("candidates"), timer.total("verify"), timer.total("components")
        cc_rounds = max(0, len(spilled["components"]) - 1)
        c = cpu.seconds
        stage_cpu = c[SIGNATURES] + c[BANDS] + c["build"] + c["dedup_fuzzy"]
        print(
            f"read stage (not timed as dedup): {read_s:.1f} s wall; load average 1 min: {load_before:.2f} "
            f"before the stage, {load_after:.2f} after ({args.workers} workers on {os.cpu_count()} cores)"
        )
        print(
            f"worker CPU s: signatures {c[SIGNATURES]:.1f} ({sig_rows / c[SIGNATURES]:,.0f} docs per "
            f"worker CPU-s), bands {c[BANDS]:.1f}, clusters {c['build']:.1f}, apply {c['dedup_fuzzy']:.1f}"
        )
        print(
            f"signatures:  {timer.total(SIGNATURES):7.1f} s wall; {sig_rows / sig_sec:,.0f} docs/s per core "
            f"({sig_rows:,} docs in {sig_sec:.1f} core-s of stage function)"
        )
        print(f"band rows:   {timer.total(BANDS):7.1f} s wall ({band_rows:,} rows, {band_sec:.1f} core-s)")
        n_candidates = spilled["candidates"][0] if spilled["candidates"] else 0
        if one_task is not None:
            print(
                f"clusters:    {build:7.1f} s wall, one task on a worker; replayed in this process: "
                + " + ".join(f"{step} {sec:.2f} s" for step, sec in one_task.items())
                + f" ({edge_sets['candidates'].num_rows:,} candidate edges, {edge_sets['verify'].num_rows:,} verified)"
            )
        else:
            print(
                f"clusters:    {build:7.1f} s wall = shuffle+candidate edges {cand_s:.1f} s ({n_candidates:,} edges) "
                f"+ verify {verify_s:.1f} s ({spilled['verify'][-1] if spilled['verify'] else n_candidates:,} edges) "
                f"+ components {cc_s:.1f} s ({cc_rounds} rounds, "
                f"{spilled['components'][-1] if spilled['components'] else 0:,} "
                f"nodes) + keepers {build - cand_s - verify_s - cc_s:.1f} s"
            )
        print(f"apply:       {timer.total('dedup_fuzzy'):7.1f} s wall")
        print(
            f"total stage: {stage_s:7.1f} s wall ({n / stage_s:,.0f} docs/s wall on {args.workers} workers); "
            f"worker CPU {stage_cpu:.1f} s"
        )
        verify_cpu = c.get("verify", 0.0)
        print(
            f"verify share: {100 * verify_s / stage_s:.1f}% of stage wall ({verify_s:.1f} of {stage_s:.1f} s), "
            f"{100 * verify_cpu / stage_cpu:.1f}% of stage worker CPU ({verify_cpu:.1f} of {stage_cpu:.1f} s)"
        )

        # ---- accuracy vs planted
        ids = pc.cast(
            pa.concat_arrays([kept.column("id").combine_chunks(), rejected.column("id").combine_chunks()]), pa.int64()
        ).to_numpy()
        clusters = pa.concat_arrays(
            [kept.column("dup_cluster").combine_chunks(), rejected.column("dup_cluster").combine_chunks()]
        )
        removed = np.zeros(n, bool)
        removed[pc.cast(rejected.column("id"), pa.int64()).to_numpy()] = True
        order = np.empty(n, np.int64)
        order[ids] = np.arange(ids.size)
        cluster_of = clusters.take(pa.array(order))
        role, src, jac = truth["role"], truth["source"], truth["jaccard"]
        planted = np.flatnonzero(role != ORIGINAL)
        same = pc.equal(cluster_of.take(pa.array(planted)), cluster_of.take(pa.array(src[planted]))).to_numpy(
            zero_copy_only=False
        )
        found = np.zeros(n, bool)
        found[planted] = same
        family = np.where(role == ORIGINAL, np.arange(n), src)

        def edge_truth(edges: pa.Table) -> tuple[int, int]:
            """(edges within a planted family, edges between unrelated documents)."""
            ends = []
            for column in ("src", "dst"):
                parts = pc.split_pattern(edges.column(column), "\t", max_splits=1)
                shard = pc.list_element(parts, 0).to_numpy(zero_copy_only=False)
                row = pc.cast(pc.list_element(parts, 1), pa.int64()).to_numpy()
                doc = np.empty(row.size, np.int64)
                for name in np.unique(shard):
                    doc[shard == name] = ids_by_shard[name][row[shard == name]]
                ends.append(family[doc])
            same = int((ends[0] == ends[1]).sum())
            return same, edges.num_rows - same

        if "candidates" in edge_sets:
            cand_same, cand_false = edge_truth(edge_sets["candidates"])
            if "verify" in edge_sets:
                ver_same, ver_false = edge_truth(edge_sets["verify"])
                print(
                    f"verify effect: {edge_sets['candidates'].num_rows:,} candidate edges -> "
                    f"{edge_sets['verify'].num_rows:,} verified; false positives (unrelated ends) {cand_false:,} -> "
                    f"{ver_false:,} (cut {cand_false - ver_false:,}); within planted families {cand_same:,} -> "
                    f"{ver_same:,} (cut {cand_same - ver_same:,}: pairs under the threshold)"
                )
        n_clusters = int(pc.sum(pc.greater(kept.column("dup_cluster_size"), 1)).as_py() or 0)
        planted_clusters = np.unique(src[planted]).size
        print(
            f"clusters: {n_clusters:,} (planted {planted_clusters:,}); removed {int(removed.sum()):,} docs "
            f"(planted {planted.size:,}: {int((role == NEAR).sum()):,} near-dups + "
            f"{int((role == EXACT).sum()):,} exact); "
            f"removed originals (false positives): {int((removed & (role == ORIGINAL)).sum()):,}"
        )

        def recall(mask) -> str:
            k = int(mask.sum())
            return f"{found[mask].mean():.3f} of {k:,}" if k else "n/a"

        print(
            f"recall (planted doc clustered with its source): exact copies {recall(role == EXACT)}; near-dups "
            f"{recall(role == NEAR)} overall, J>=0.8 {recall((role == NEAR) & (jac >= 0.8))}, "
            f"0.72<=J<0.8 {recall((role == NEAR) & (jac >= 0.72) & (jac < 0.8))}, "
            f"J<0.72 {recall((role == NEAR) & (jac < 0.72))}"
            f" (true word-5-gram Jaccard of planted near-dups: median {np.nanmedian(jac[role == NEAR]):.2f})"
        )
        print(
            "peak RSS per worker (MiB): "
            + ", ".join(f"{v:,.0f}" for v in worker_rss.values())
            + " (after read: "
            + ", ".join(f"{v:,.0f}" for v in rss_before.values())
            + ")"
            + f"; flow process {flow_rss:,.0f}",
            flush=True,
        )
        print(
            f"summary: N={n:,} verify {verify_s:.1f} s of stage {stage_s:.1f} s wall = "
            f"{100 * verify_s / stage_s:.1f}% "
            f"(worker CPU {100 * verify_cpu / stage_cpu:.1f}%); peak RSS per worker "
            f"{max(worker_rss.values()):,.0f} MiB; load average {load_before:.1f} -> {load_after:.1f}",
            flush=True,
        )


# ------------------------------------------------------------------------------ baseline


def baseline() -> dict[str, float]:
    from datasketch import MinHash

    from bench.dedup_signatures import python_shingles
    from tasks import dedup_fuzzy as fz

    with tempfile.TemporaryDirectory(prefix="winnow-dedup-base-") as tmp:
        generate_shard((0, 0, 50_000, tmp))
        texts = pq.read_table(f"{tmp}/shard-00000.parquet").column("text")
    sample = texts.take(
        pa.array(np.sort(np.random.default_rng(SEED).choice(len(texts), BASELINE_DOCS, replace=False)))
    )
    docs = sample.to_pylist()

    def plain():
        for text in docs:
            m = MinHash(num_perm=112, seed=1)
            m.update_batch(python_shingles(text))

    def winnow():
        fz.signatures(pa.table({"text": sample}), fz.DedupFuzzyParams(), "s")

    rates = {}
    for name, fn in (("datasketch", plain), ("winnow", winnow)):
        best = min(timed(fn) for _ in range(3))
        rates[name] = BASELINE_DOCS / best
    print(f"\n=== baseline, this process, one core, {BASELINE_DOCS:,} of the same docs (best of 3):")
    print(
        f"plain datasketch MinHash(num_perm=112) + update_batch, Python word 5-gram shingles: "
        f"{rates['datasketch']:,.0f} docs/s"
    )
    print(
        f"tasks.dedup_fuzzy.signatures on the same docs: {rates['winnow']:,.0f} docs/s "
        f"({rates['winnow'] / rates['datasketch']:.1f}x)"
    )
    return rates


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="+")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-docs", type=int, default=50_000)
    parser.add_argument("--tmp", default=None, help="parent of the temp dirs (default: $TMPDIR)")
    parser.add_argument(
        "--clusters",
        choices=("auto", "one-task", "dask"),
        default="auto",
        help="how the stage builds clusters: by its bound (auto), in one task, or on Dask whatever the size",
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child: one N
    args = parser.parse_args()

    if args.one:
        run_one(args.n_docs[0], args)
        return
    stage_rates, summaries = {}, []
    for n in args.n_docs:  # a child process per N: its peak RSS and its cluster are its own
        cmd = [
            sys.executable,
            __file__,
            str(n),
            "--one",
            "--workers",
            str(args.workers),
            "--shard-docs",
            str(args.shard_docs),
            "--clusters",
            args.clusters,
        ] + (["--tmp", args.tmp] if args.tmp else [])
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:
            for line in child.stdout:  # tee: shown as it comes, parsed for the summary
                sys.stdout.write(line)
                sys.stdout.flush()
                if line.startswith("summary:"):
                    summaries.append(line)
                if line.startswith("signatures:"):
                    stage_rates[n] = float(line.split(";")[1].split("docs/s")[0].replace(",", ""))
        if child.returncode:
            sys.exit(f"N={n}: child exited {child.returncode}")
    print("\n=== verification's share of the stage, per N:")
    sys.stdout.writelines(summaries)
    rates = baseline()
    for n, rate in stage_rates.items():
        print(
            f"N={n:,}: stage signatures {rate:,.0f} docs/s per core = "
            f"{rate / rates['datasketch']:.1f}x plain datasketch"
        )


if __name__ == "__main__":
    main()
