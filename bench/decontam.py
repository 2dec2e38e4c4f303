"""Decontamination recall, false positives and speed on real web pages with planted benchmark items.

    .venv/bin/python bench/decontam.py [--hosts 300] [--host-chars 2000] [--threads 2] [--device cpu|cuda]
        [--semantic-verbatim 200] [--threshold 0.60] [--index-dir DIR] [--no-semantic]

The README's figures: `--hosts 2000 --semantic-verbatim 2000 --threshold 0.60 --index-dir /tmp/idx`
(about 40 minutes on 2 CPU cores; the embedded index is reused from DIR on the next run).

Data (../shared/data/): the four benchmark files (GSM8K, HumanEval, MMLU, TruthfulQA: all loaded
into the index), the LLM-rephrased GSM8K and HumanEval items of Yang et al. 2023
(benchmarks/rephrased/, aligned by `source_item`), and host pages from web_raw/
(html_pages_wetlike.jsonl: WET-like pages with their menus and footers; cc_text_docs.jsonl: C4,
OSCAR, Dolma CC...). Hosts of at least 100 words are cut to their first `--host-chars` characters
at a line end. Each plant copies one host and inserts the item's text at a random line boundary, so
the item sits inside a longer page with text before and after it (a page quoting a test question).

- verbatim plants: the originals of every rephrased item, plus 300 MMLU and 300 TruthfulQA items
  (as a page would show them: GSM8K question + worked answer, HumanEval prompt + solution, MMLU
  question + choices, TruthfulQA question + best answer);
- paraphrase plants: every rephrased item;
- unplanted: the hosts themselves (false positives).

The semantic threshold is calibrated on negatives only, so it cannot be fitted to the paraphrases:
it is the cosine that `--target-fpr` of the calibration half of the unplanted hosts reaches; recall
and FPR are then reported on the other half and on all plants. Timings share 2 cores with other
engineers' tests: treat them as lower bounds.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tasks.decontam  # noqa: E402
from tasks import models  # noqa: E402
from tasks.decontam import DecontamParams, NgramParams, SemanticParams, build_index, detect, index_tables, load_index  # noqa: E402
from tasks.decontam.benchmarks import BenchmarkSpec  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BENCH = DATA / "benchmarks"
SEED = 0
say = functools.partial(print, flush=True)
SPECS = (
    BenchmarkSpec(name="gsm8k", layout="gsm8k", path=str(BENCH / "gsm8k_test.jsonl")),
    BenchmarkSpec(name="humaneval", layout="humaneval", path=str(BENCH / "humaneval_test.jsonl")),
    BenchmarkSpec(name="mmlu", layout="mmlu", path=str(BENCH / "mmlu_test.jsonl")),
    BenchmarkSpec(name="truthfulqa", layout="truthfulqa", path=str(BENCH / "truthfulqa.jsonl")),
)
REPHRASED = ("gsm8k_test_llm_rephrased.jsonl", "humaneval_llm_rephrased_python.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def hosts(limit: int, max_chars: int) -> list[str]:
    docs = read_jsonl(DATA / "web_raw" / "html_pages_wetlike.jsonl") + read_jsonl(DATA / "web_raw" / "cc_text_docs.jsonl")
    texts = []
    for doc in docs:
        text = doc["text"]
        if len(text.split()) < 100:
            continue
        cut = text.rfind("\n", 0, max_chars)
        texts.append(text[: cut if cut > 0 else max_chars])
    random.Random(SEED).shuffle(texts)
    return texts[:limit]


def shown(record: dict, layout: str) -> str:
    """An item as a page would show it."""
    if layout == "gsm8k":
        return f"{record['question']}\n{record['answer']}"
    if layout == "humaneval":
        return record["prompt"] + record["canonical_solution"]
    if layout == "mmlu":
        return "\n".join([record["question"], *(f"{k}. {c}" for k, c in zip("ABCD", record["choices"]))])
    return f"{record['question']}\n{record['best_answer']}"


def capped(specs: tuple[BenchmarkSpec, ...], cap: int) -> tuple[BenchmarkSpec, ...]:
    """The specs with at most `cap` items each (a seeded sample kept in a temporary file); the
    rephrased items' originals are always kept, so their paraphrases can be matched."""
    if not cap:
        return specs
    keep = {r["source_item"] for name in REPHRASED for r in read_jsonl(BENCH / "rephrased" / name)}
    out = []
    for spec in specs:
        records = read_jsonl(Path(spec.path))
        if len(records) > cap:
            rest = [r for r in records if r["id"] not in keep]
            records = [r for r in records if r["id"] in keep] + random.Random(SEED).sample(rest, max(cap - len(keep), 0))
        path = Path(tempfile.mkdtemp()) / Path(spec.path).name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        out.append(spec.model_copy(update={"path": str(path)}))
    return tuple(out)


def plant(host: str, item: str, rng: random.Random) -> str:
    lines = host.split("\n")
    at = rng.randrange(1, len(lines) + 1)
    return "\n".join(lines[:at] + [item] + lines[at:])


def plants(host_texts: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(document, source item id) for verbatim and paraphrase plants."""
    rng = random.Random(SEED)
    records = {spec.name: {r["id"]: r for r in read_jsonl(Path(spec.path))} for spec in SPECS}
    rephrased = [r for name in REPHRASED for r in read_jsonl(BENCH / "rephrased" / name)]
    layout_of = {"gsm8k": "gsm8k", "HumanEval": "humaneval"}
    verbatim, paraphrase = [], []
    for r in rephrased:
        layout = layout_of[r["source_item"].split("-")[0]]
        original = records[layout][r["source_item"]]
        verbatim.append((plant(rng.choice(host_texts), shown(original, layout), rng), r["source_item"]))
        paraphrase.append((plant(rng.choice(host_texts), r["text"], rng), r["source_item"]))
    for name in ("mmlu", "truthfulqa"):
        for record in rng.sample(list(records[name].values()), 300):
            verbatim.append((plant(rng.choice(host_texts), shown(record, name), rng), record["id"]))
    return verbatim, paraphrase


def scan(texts: list[str], params: DecontamParams, index) -> tuple[pa.Table, float]:
    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})
    started = time.perf_counter()
    out = detect(table, params, index)
    return out, time.perf_counter() - started


def ngram_flags(out: pa.Table, sources: list[str] | None = None) -> np.ndarray:
    spans = out.column("contam_spans").to_pylist()
    flags = [any(s["method"] == "ngram" for s in doc) for doc in spans]
    if sources is not None:  # a hit counts only when it names the planted item
        flags = [f and src in out.column("contam_items")[i].as_py() for i, (f, src) in enumerate(zip(flags, sources))]
    return np.array(flags)


def best_windows(texts: list[str], semantic: SemanticParams, index, device: str) -> tuple[np.ndarray, list[str], list[str], float]:
    """Best cosine per document, the id of its best item and that window's text (threshold-free, for
    calibration), from the stage's own window scan."""
    ids = index.items.column("item_id").to_pylist()
    started = time.perf_counter()
    scanned = tasks.decontam.window_scores(texts, index, semantic, device)
    seconds = time.perf_counter() - started
    tops = [max(doc, key=lambda w: w["score"]) if doc else None for doc in scanned]
    best = np.array([w["score"] if w else -1.0 for w in tops], np.float32)
    best_item = [ids[w["item"]] if w else "" for w in tops]
    best_window = [text[w["start"] : w["end"]] if w else "" for text, w in zip(texts, tops)]
    return best, best_item, best_window, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--host-chars", type=int, default=2000)
    parser.add_argument("--semantic-verbatim", type=int, default=200, help="verbatim plants the semantic stage scans")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--window-words", type=int, default=SemanticParams().window_words)
    parser.add_argument("--stride-words", type=int, default=SemanticParams().stride_words)
    parser.add_argument("--target-fpr", type=float, default=0.005)
    parser.add_argument("--threshold", type=float, default=None, help="report at this cosine instead of the calibrated one")
    parser.add_argument("--no-semantic", action="store_true", help="n-gram stage only (minutes less on CPU)")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="keep the embedded index here and reuse it on the next run (embedding every item takes minutes on CPU)")
    parser.add_argument("--semantic-items", type=int, default=0,
                        help="cap items per benchmark in the semantic index (0: all); a seeded sample, for slow CPUs")
    args = parser.parse_args()
    models.set_torch_threads(args.threads)
    device = args.device or models.default_device()
    semantic = SemanticParams(enabled=True, window_words=args.window_words, stride_words=args.stride_words)
    params = DecontamParams(benchmarks=SPECS, semantic=semantic.model_copy(update={"enabled": False}), action="flag")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    index = build_index(SPECS, NgramParams(), params.semantic)
    ngram_build = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n_items = index.items.num_rows
    index_bytes = index.hashes.nbytes + index.item_of.nbytes + index.items.nbytes
    say(f"index: {n_items:,} items, {index.stats['ngrams']:,} n-grams, {index.stats['items_unindexed']} items too short "
          f"to index, {index.stats['ngrams_common_dropped']} template n-grams dropped")
    say(f"index build: n-grams {ngram_build:.1f} s (peak traced {traced_peak / 2**20:.0f} MiB, index {index_bytes / 2**20:.0f} MiB)")
    started = time.perf_counter()
    if args.index_dir and (args.index_dir / "_SUCCESS").exists():
        embedded = load_index(str(args.index_dir))
    else:
        embedded = build_index(capped(SPECS, 0 if args.no_semantic else args.semantic_items), NgramParams(),
                               semantic.model_copy(update={"enabled": not args.no_semantic}))
        if args.index_dir:
            args.index_dir.mkdir(parents=True, exist_ok=True)
            for name, table in index_tables(embedded).items():
                pq.write_table(table, args.index_dir / name)
            (args.index_dir / "_SUCCESS").touch()
    full_build = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    say(f"n-grams + embeddings of {embedded.items.num_rows:,} items {full_build:.1f} s on {device}; process peak RSS {rss_after / 1024:.0f} MiB "
          f"(before: {rss_before / 1024:.0f} MiB)")

    host_texts = hosts(args.hosts, args.host_chars)
    verbatim, paraphrase = plants(host_texts)
    half = len(host_texts) // 2
    calib, held = host_texts[:half], host_texts[half:]

    results, windows_of = {}, {}
    for name, docs in (("unplanted", [(t, None) for t in host_texts]), ("verbatim", verbatim), ("paraphrase", paraphrase)):
        texts = [t for t, _ in docs]
        sources = [s for _, s in docs] if name != "unplanted" else None
        out, seconds = scan(texts, params, index)
        keep = 0 if args.no_semantic else len(texts) if name != "verbatim" else min(args.semantic_verbatim, len(texts))
        best, best_item, best_window, sem_seconds = best_windows(texts[:keep], semantic, embedded, device) if keep else (
            np.full(len(texts), -1.0), [None] * len(texts), [None] * len(texts), float("nan"))
        results[name] = (ngram_flags(out, sources), best, best_item, sources)
        windows_of[name] = best_window
        words = sum(len(t.split()) for t in texts)
        say(f"{name}: {len(texts)} docs ({words / len(texts):.0f} words avg): n-gram stage {len(texts) / seconds:,.0f} docs/s; "
            f"semantic stage on {keep}: {keep / sem_seconds:,.1f} docs/s ({device})")

    unplanted_flags, unplanted_best, _, _ = results["unplanted"]
    calibrated = float(np.quantile(unplanted_best[:half], 1 - args.target_fpr, method="higher")) + 1e-6
    say(f"\nsemantic threshold (cosine reached by {args.target_fpr:.1%} of the {half} calibration hosts): {calibrated:.4f}")
    threshold = calibrated if args.threshold is None else args.threshold
    say(f"figures below at threshold {threshold:.4f}")
    say(f"{'set':<22}{'n-gram':>10}{'semantic':>10}{'both':>10}")
    for name in ("verbatim", "paraphrase"):
        flags, best, best_item, sources = results[name]
        sem = (best >= threshold) & np.array([b == s for b, s in zip(best_item, sources)])
        scanned = flags[: len(sem)]  # semantic figures over the plants it scanned
        say(f"{name + ' recall':<22}{flags.mean():>10.1%}{sem.mean():>10.1%}{(scanned | sem).mean():>10.1%}"
            f"   (semantic and both over {len(sem)} plants)")
        if name == "verbatim":
            by_bench = {}
            for flag, s in zip(flags, sources):
                by_bench.setdefault(s.split("-")[0], []).append(flag)
            say("  n-gram verbatim recall by benchmark: " + ", ".join(f"{k} {np.mean(v):.1%} ({len(v)})" for k, v in by_bench.items()))
            by_bench = {}
            for hit, flag, s in zip(sem, scanned, sources):
                by_bench.setdefault(s.split("-")[0], []).append(hit | flag)
            say("  both stages, verbatim recall by benchmark: " + ", ".join(f"{k} {np.mean(v):.1%} ({len(v)})" for k, v in by_bench.items()))
        else:
            for bench_name in ("gsm8k", "HumanEval"):
                mask = np.array([s.startswith(bench_name) for s in sources])
                say(f"  {bench_name} paraphrase recall: n-gram {flags[mask].mean():.1%}, semantic {sem[mask].mean():.1%}, "
                      f"both {(flags | sem)[mask].mean():.1%} ({mask.sum()})")
    for label, part in (("FPR calibration half", slice(0, half)), ("FPR held-out half", slice(half, None))):
        sem_fp = unplanted_best[part] >= threshold
        ng_fp = unplanted_flags[part]
        say(f"{label:<22}{ng_fp.mean():>10.2%}{sem_fp.mean():>10.2%}{(ng_fp | sem_fp).mean():>10.2%}")
    say(f"(held-out hosts: {len(held)}; calibration hosts: {len(calib)})")
    say("unplanted best cosine percentiles 50/90/99/max: "
          + " / ".join(f"{q:.3f}" for q in np.quantile(unplanted_best, [0.5, 0.9, 0.99, 1.0])))
    _, _, unplanted_items, _ = results["unplanted"]
    item_text = dict(zip(embedded.items.column("item_id").to_pylist(), embedded.items.column("text").to_pylist()))
    say("\nunplanted hosts at or above the threshold, highest first (window | item):")
    for d in np.argsort(-unplanted_best)[: int((unplanted_best >= threshold).sum())][:10]:
        say(f"  {unplanted_best[d]:.3f} {' '.join(windows_of['unplanted'][d].split())[:160]!r}\n"
            f"        | {unplanted_items[d]}: {' '.join(item_text[unplanted_items[d]].split())[:160]!r}")
    para_best = results["paraphrase"][1]
    say("paraphrase best cosine percentiles 5/10/20/50: " + " / ".join(f"{q:.3f}" for q in np.quantile(para_best, [0.05, 0.1, 0.2, 0.5])))


if __name__ == "__main__":
    main()
