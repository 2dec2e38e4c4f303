"""MinHash signature throughput per core on ~2,000-character documents, and what verification costs.

    .venv/bin/python bench/dedup_signatures.py [--docs 8000] [--repeat 3]

Documents are real web pages (`../shared/data/web_raw/html_pages_wetlike.jsonl`) cut into 2,000-character
chunks. The process is pinned to one core and Arrow to one thread, so the figures are docs/s per core.

- baseline: plain datasketch as its README shows it: a Python shingle list per document (normalize
  with `re`, word 5-grams joined and encoded) and `MinHash.update_batch` per document (sha1_hash32).
- bulk: the same shingles through `MinHash.bulk`.
- winnow: `tasks.dedup_fuzzy.signatures` end to end (vectorised shingling, datasketch MinHash).
- stage: signatures + band_rows + candidate_edges (+ verify_edges) on the corpus with planted copies,
  to decide whether verification is worth its cost (< 20% of the stage: on by default).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasketch import MinHash

from tasks import dedup_fuzzy as fz

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "web_raw" / "html_pages_wetlike.jsonl"
_PUNCT = re.compile(r"[^\w\s]+")


def chunked_docs(n: int, size: int = 2000) -> list[str]:
    docs = []
    with DATA.open() as f:
        for line in f:
            text = json.loads(line)["text"]
            docs += [text[i : i + size] for i in range(0, len(text) - size // 2, size)]
    while len(docs) < n:
        docs += docs
    return docs[:n]


def python_shingles(text: str, n: int = 5) -> list[bytes]:
    words = _PUNCT.sub(" ", text.lower()).split()
    return [" ".join(words[i : i + n]).encode() for i in range(max(len(words) - n + 1, 1))]


def baseline(docs: list[str]) -> None:
    for text in docs:
        m = MinHash(num_perm=112, seed=1)
        m.update_batch(python_shingles(text))


def bulk(docs: list[str]) -> None:
    MinHash.bulk([python_shingles(text) for text in docs], num_perm=112, seed=1)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def planted(docs: list[str], rng: np.random.Generator) -> list[str]:
    """Every fifth document gets a copy with ~5% of its words deleted."""
    out = list(docs)
    for text in docs[::5]:
        words = text.split()
        keep = rng.random(len(words)) > 0.05
        out.append(" ".join(w for w, k in zip(words, keep) if k))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    pa.set_cpu_count(1)

    docs = chunked_docs(args.docs)
    table = pa.table({"text": docs})
    params = fz.DedupFuzzyParams()
    n_base = min(len(docs), 2000)
    rates = {
        "baseline (update_batch per doc, Python shingles)": n_base
        / best_of(args.repeat, lambda: baseline(docs[:n_base])),
        "datasketch MinHash.bulk, Python shingles": n_base / best_of(args.repeat, lambda: bulk(docs[:n_base])),
        "winnow signatures (end to end)": len(docs) / best_of(args.repeat, lambda: fz.signatures(table, params, "s")),
    }
    print(f"{len(docs)} docs, mean {np.mean([len(d) for d in docs]):.0f} chars, 1 core")
    for name, rate in rates.items():
        print(f"  {name:52s} {rate:9,.0f} docs/s")

    corpus = pa.table({"text": planted(docs, np.random.default_rng(0))})
    start = time.perf_counter()
    sigs = fz.signatures(corpus, params, "s")
    t_sig = time.perf_counter() - start
    start = time.perf_counter()
    edges = fz.candidate_edges(fz.band_rows(sigs, params))
    t_lsh = time.perf_counter() - start
    start = time.perf_counter()
    verified = fz.verify_edges(edges, sigs, params)
    t_verify = time.perf_counter() - start
    start = time.perf_counter()
    fz.label_components(verified)
    t_cc = time.perf_counter() - start
    total = t_sig + t_lsh + t_verify + t_cc
    print(
        f"stage on {corpus.num_rows} docs: signatures {t_sig:.2f}s, banding+edges {t_lsh:.3f}s, "
        f"verify {t_verify:.4f}s ({100 * t_verify / total:.2f}% of stage), components {t_cc:.3f}s"
    )
    print(
        f"  candidate edges {edges.num_rows}, after verify {verified.num_rows} "
        f"({'x'.join(map(str, params.layout))} bands, >= {params.min_matches} of {params.num_perm} values agree)"
    )


if __name__ == "__main__":
    main()
