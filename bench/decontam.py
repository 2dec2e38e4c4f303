"""Decontamination on real pages: recall on planted items, false positives on topical news and web pages,
per-benchmark thresholds calibrated on negatives, and what the threshold check costs.

    .venv/bin/python bench/decontam.py [--hosts 1000] [--host-chars 2000] [--semantic-verbatim 300]
        [--target-fpr 0.005] [--threads 2] [--device cpu|cuda] [--cache DIR]

The README's figures: `--cache /tmp/decontam-bench` (about 25 minutes on 2 CPU cores the first time:
the index embeds 16,342 items and the scan ~40,700 windows; both are cached in DIR, keyed by their
inputs, so a rerun with other thresholds takes seconds).

Data (../shared/data/, see SOURCES.md): all four benchmark files in one index (GSM8K, HumanEval,
MMLU, TruthfulQA); the LLM-rephrased GSM8K and HumanEval items of Yang et al. 2023 (benchmarks/
rephrased/, aligned by `source_item`); topical negatives: web_raw/news_en_dev.jsonl (990 Reuters,
Wikinews, GUM and Wikipedia articles on the subjects MMLU asks about, none sharing a 13-gram with
MMLU); web pages: html_pages_wetlike.jsonl and cc_text_docs.jsonl, pages of at least 100 words cut
to `--host-chars` at a line end. Each plant copies one web page and inserts an item at a random line
boundary (a page quoting a test question):
- verbatim plants: the originals of every rephrased item, plus 300 MMLU and 300 TruthfulQA items, as
  a page shows them (GSM8K question + worked answer, HumanEval prompt + solution, MMLU question +
  labelled choices, TruthfulQA question + best answer); the embedding scan runs on
  `--semantic-verbatim` of them spread over the four benchmarks (n-grams alone find all of them);
- paraphrase plants: every rephrased item; a plant counts as found only when the flag names its item.

Everything goes through the stage's own code: `scan` (the cached embedding phase) and `detect`.
Thresholds: a benchmark's calibrated cosine is the one that at most target-fpr / #benchmarks of the
calibration documents reach against it (the even-numbered news articles and web pages), never below
the global `semantic.threshold`; FPR and recall are reported at those thresholds on the other (odd)
half and on the plants, then at the shipped defaults (`CALIBRATED_THRESHOLDS`, set from this script's
calibration on all negatives, printed last). 95% upper bounds are Clopper-Pearson.

Second checks of each embedding candidate, measured on the same windows (990 news articles, 742
paraphrase plants) with throwaway scripts over cached window embeddings, and not kept; per-benchmark
thresholds alone reach 0.5% FPR at 95.0% recall:
- best item cosine minus the k-th best (k = 2..32) as the score: at 1% news FPR, 43% recall at best;
- the item's own neighbourhood (cosine >= max(0.60, the item's n-th nearest item + d)): 8.7% FPR at
  83% recall (n = 1), 11.7% at 91% (n = 10, d = 0.05): GSM8K items all look alike, so it hits paraphrases;
- IDF-weighted share of the item's words within 32 words of the window, on cosine >= 0.60: 4.2% at 90.6%;
- token-level BERTScore recall of the item against the window (MiniLM token embeddings), on cosine
  >= 0.60: 2.8% at 86.9%; on top of per-benchmark thresholds it cut news FPs from 7 to 5 for 1-4
  points of recall.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import beta

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tasks.decontam  # noqa: E402
from tasks import models  # noqa: E402
from tasks.decontam import (  # noqa: E402
    DecontamParams,
    MultilingualParams,
    SemanticParams,
    build_index,
    detect,
    index_tables,
    load_index,
    scan,
)
from tasks.decontam.benchmarks import BenchmarkSpec  # noqa: E402
from tasks.decontam.calibrate import best_per_benchmark  # noqa: E402
from tasks.decontam.semantic import CALIBRATED_THRESHOLDS, nearest_items  # noqa: E402

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
    docs = read_jsonl(DATA / "web_raw" / "html_pages_wetlike.jsonl") + read_jsonl(
        DATA / "web_raw" / "cc_text_docs.jsonl"
    )
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


def cached_index(cache: Path, semantic: SemanticParams) -> str:
    """The embedded index of all four benchmarks, built once into `cache`."""
    key = hashlib.sha256(
        json.dumps(
            [tasks.decontam.VERSION, *map(str, DecontamParams(benchmarks=SPECS, semantic=semantic).index_params())]
        ).encode()
    ).hexdigest()[:16]
    directory = cache / f"index-{key}"
    if not (directory / "_SUCCESS").exists():
        started = time.perf_counter()
        index = build_index(SPECS, DecontamParams().ngram, semantic)
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in index_tables(index).items():
            pq.write_table(table, directory / name)
        (directory / "_SUCCESS").touch()
        say(
            f"index: {index.items.num_rows:,} items, {index.stats['ngrams']:,} n-grams, built in "
            f"{time.perf_counter() - started:.0f} s ({models.default_device()})"
        )
    return str(directory)


def scanned(
    name: str,
    texts: list[str],
    params: DecontamParams,
    index_url: str,
    cache: Path,
    langs: list[str] | None = None,
) -> tuple[pa.Table, float | None]:
    """`texts` (with their `langs`, which route them to an encoder) through the stage's scan phase, cached
    by texts, languages and scan parameters; (table, seconds or None)."""
    keyed = [tasks.decontam.VERSION, params.scan_params().model_dump_json(), texts]
    key = hashlib.sha256(json.dumps(keyed if langs is None else [*keyed, langs]).encode()).hexdigest()[:16]
    path = cache / f"scan-{name}-{key}.parquet"
    columns = {"id": [str(i) for i in range(len(texts))], "text": texts}
    table = pa.table(columns if langs is None else {**columns, "lang": langs})
    if path.exists():
        return pq.read_table(path), None
    started = time.perf_counter()
    out = scan(table, params.scan_params(), index_url)
    seconds = time.perf_counter() - started
    pq.write_table(out, path)
    return out, seconds


def upper95(k: int, n: int) -> float:
    return 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))


def rate(flags: np.ndarray) -> str:
    k, n = int(flags.sum()), len(flags)
    return f"{k / n:6.2%} ({k}/{n}, 95% upper {upper95(k, n):.2%})"


def calibrate(negatives: list[dict[str, np.ndarray]], target_fpr: float, floor: float) -> dict[str, float]:
    """Per benchmark: the cosine reached by at most target_fpr / #benchmarks of the negatives, >= floor."""
    names = list(negatives[0])
    share = target_fpr / len(names)
    pooled = {name: np.concatenate([n[name] for n in negatives]) for name in names}
    return {
        name: round(max(floor, float(np.quantile(pooled[name], 1 - share, method="higher")) + 1e-4), 4)
        for name in names
    }


def evaluate(label: str, params: DecontamParams, index, sets: dict, held: slice, show: bool = False) -> None:
    """FPR on the `held` negatives and recall on the plants, through `detect`; `show` prints the
    false positives (strongest span beside its item)."""
    say(f"\n{label}: " + ", ".join(f"{name} {t:.3f}" for name, t in params.semantic_thresholds().items()))
    for name in ("news", "web"):
        negatives = sets[name]["scanned"]
        out = detect(negatives.take(np.arange(negatives.num_rows)[held]), params, index)
        flagged = np.array([b is not None for b in out.column("contam_benchmark").to_pylist()])
        semantic_only = np.array(
            [bool(s) and all(x["method"] == "semantic" for x in s) for s in out.column("contam_spans").to_pylist()]
        )
        say(f"  FPR {name:<5} {rate(flagged)}; embedding-only {semantic_only.sum()}")
        if show:
            item_text = dict(zip(index.items.column("item_id").to_pylist(), index.items.column("text").to_pylist()))
            for spans in (s for s in out.column("contam_spans").to_pylist() if s):
                top = max(spans, key=lambda x: x["score"])
                say(
                    f"    {top['method']} {top['score']:.3f} {' '.join(top['text'].split())[:140]!r}\n"
                    f"      | {top['item_id']}: {' '.join(item_text[top['item_id']].split())[:140]!r}"
                )
    for name in ("verbatim", "paraphrase"):
        out = detect(sets[name]["scanned"], params, index)
        found = np.array(
            [src in items for src, items in zip(sets[name]["sources"], out.column("contam_items").to_pylist())]
        )
        by = {}
        for f, src in zip(found, sets[name]["sources"]):
            by.setdefault(src.split("-")[0].lower(), []).append(f)
        say(
            f"  recall {name:<10} {found.mean():6.1%} ({found.sum()}/{len(found)}): "
            + ", ".join(f"{k} {np.mean(v):.1%} ({len(v)})" for k, v in by.items())
        )


def check_cost(texts: list[str], params: DecontamParams, index_url: str, device: str) -> None:
    """What the per-benchmark check adds to the embedding stage: the encoder, the one-group similarity
    search it replaces, the per-benchmark search, and `detect` on the scanned windows (which also runs
    the n-gram search: an upper bound on applying the thresholds)."""
    from tasks.decontam.ngrams import word_spans
    from tasks.decontam.semantic import embed, windows

    semantic, index = params.semantic, load_index(index_url)
    bounds = [
        (d, s, e)
        for d, t in enumerate(texts)
        for s, e in windows(word_spans(t), semantic.window_words, semantic.stride_words)
    ]
    started = time.perf_counter()
    queries = embed([texts[d][s:e] for d, s, e in bounds], semantic, device)
    encoding = time.perf_counter() - started
    items = index.embeddings(device)
    timings = {}
    for label, groups in (
        ("one group", [(0, index.items.num_rows)]),
        ("per benchmark", list(index.benchmark_rows().values())),
    ):
        started = time.perf_counter()
        nearest_items(queries, items, groups, semantic.item_block)
        timings[label] = time.perf_counter() - started
    table = scan(pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}), params.scan_params(), index_url)
    started = time.perf_counter()
    detect(table, params, index)
    thresholding = time.perf_counter() - started
    extra = timings["per benchmark"] - timings["one group"] + thresholding
    say(
        f"\ncost on {len(texts)} pages ({len(bounds):,} windows, {device}): encoder {encoding:.1f} s, "
        f"item search one group {timings['one group']:.2f} s / per benchmark {timings['per benchmark']:.2f} s, "
        f"detect (n-grams, thresholds, spans) {thresholding:.2f} s: the check adds {extra:.2f} s = "
        f"{extra / (encoding + timings['one group']):.1%} of the embedding stage"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--host-chars", type=int, default=2000)
    parser.add_argument(
        "--semantic-verbatim", type=int, default=300, help="verbatim plants the embedding scan runs on"
    )
    parser.add_argument(
        "--target-fpr", type=float, default=0.005, help="calibration: share of negatives over any threshold"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/winnow-decontam-bench"))
    args = parser.parse_args()
    models.set_torch_threads(args.threads)
    device = args.device or models.default_device()
    args.cache.mkdir(parents=True, exist_ok=True)
    # English pages and the English encoder only: bench/decontam_crosslingual.py measures the multilingual path
    english = SemanticParams(enabled=True, multilingual=MultilingualParams(enabled=False))
    params = DecontamParams(benchmarks=SPECS, semantic=english, action="flag")
    index_url = cached_index(args.cache, params.semantic)
    index = load_index(index_url)

    host_texts = hosts(args.hosts, args.host_chars)
    verbatim, paraphrase = plants(host_texts)
    news = read_jsonl(DATA / "web_raw" / "news_en_dev.jsonl")
    spread = verbatim[:: max(1, len(verbatim) // args.semantic_verbatim)][: args.semantic_verbatim]  # every benchmark
    sets = {
        "news": {"texts": [d["text"] for d in news]},
        "web": {"texts": host_texts},
        "paraphrase": {"texts": [t for t, _ in paraphrase], "sources": [s for _, s in paraphrase]},
        "verbatim": {"texts": [t for t, _ in spread], "sources": [s for _, s in spread]},
    }
    for name, entry in sets.items():
        entry["scanned"], seconds = scanned(name, entry["texts"], params, index_url, args.cache)
        windows = sum(map(len, entry["scanned"].column("contam_windows").to_pylist())) // len(SPECS)
        speed = (
            f"scanned in {seconds:.0f} s: {len(entry['texts']) / seconds:.1f} docs/s, "
            f"{windows / seconds:.1f} windows/s"
            if seconds
            else "scan cached"
        )
        say(f"{name}: {len(entry['texts'])} docs, {windows:,} windows, {speed}")
    verbatim_ngrams = detect(
        pa.table({"id": [str(i) for i in range(len(verbatim))], "text": [t for t, _ in verbatim]}),
        params.model_copy(update={"semantic": params.semantic.model_copy(update={"enabled": False})}),
        index,
    )
    found = np.array(
        [s in items for (_, s), items in zip(verbatim, verbatim_ngrams.column("contam_items").to_pylist())]
    )
    say(f"n-gram search alone, all {len(verbatim)} verbatim plants: recall {found.mean():.1%}")

    best = {
        name: best_per_benchmark(sets[name]["scanned"].column("contam_windows").to_pylist(), index)
        for name in ("news", "web")
    }
    even = slice(0, None, 2)
    calib = calibrate(
        [{b: v[even] for b, v in best[n].items()} for n in ("news", "web")], args.target_fpr, params.semantic.threshold
    )
    say(f"\ncalibrated on the even half of news and web ({args.target_fpr:.2%} of them over any threshold): {calib}")
    evaluate(
        "held-out (odd) half, thresholds calibrated on the even half",
        params.model_copy(update={"semantic": params.semantic.model_copy(update={"thresholds": calib})}),
        index,
        sets,
        slice(1, None, 2),
    )
    evaluate("shipped defaults (CALIBRATED_THRESHOLDS), all documents", params, index, sets, slice(0, None), show=True)
    evaluate(
        "one global threshold (before: 0.60 for every benchmark), all documents",
        params.model_copy(
            update={
                "semantic": params.semantic.model_copy(
                    update={"thresholds": {s.name: params.semantic.threshold for s in SPECS}}
                )
            }
        ),
        index,
        sets,
        slice(0, None),
    )
    check_cost(sets["news"]["texts"][:40], params, index_url, device)
    suggested = calibrate(list(best.values()), args.target_fpr, params.semantic.threshold)
    say(f"\ncalibrated on all negatives (for CALIBRATED_THRESHOLDS; shipped: {CALIBRATED_THRESHOLDS}): {suggested}")


if __name__ == "__main__":
    main()
