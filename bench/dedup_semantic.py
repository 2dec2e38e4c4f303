"""Semantic dedup on the dev sets, before the stage exists: can a whole-document embedding tell
rewritten copies and paraphrases from distinct documents on one topic? (#30, step 1)

    .venv/bin/python bench/dedup_semantic.py [--data ../shared/data] [--gsm8k-form worked|final]

The documents go through what reaches a dedup stage: `langid`, and `clean`'s text transform (C4 line
removal; no document is dropped, so every pair is scored). Each is embedded as the decontam stage's
multilingual path does: English by the packaged MiniLM, the other languages the packaged USE covers
by USE, the rest not at all (such a document is never removed). Only documents embedded in the same
space are compared. A document is removed when an earlier one is at or above the cosine threshold
(SemDeDup, Abbas et al. 2023, without its k-means: every pair is compared here).

- Rewritten copies: `dedup/near_dup_dev*` pairs whose word-5-gram Jaccard (after cleaning) is below
  fuzzy dedup's target (0.7, measured with its own shingles), which fuzzy dedup leaves.
- Paraphrases: each GSM8K and HumanEval item and its LLM paraphrase (`benchmarks/rephrased/`). A GSM8K
  item is "Question: ...\\nAnswer: ..." with its worked answer (`worked`), or with the final answer
  only, as the paraphrases are written (`final`).
- Distinct documents: `web_raw/news_en_dev.jsonl` and `html_pages_wetlike.jsonl`. A pair at word-5-gram
  Jaccard at or above that target is left to fuzzy dedup and not counted; any other removal is a false one.

Then the same at one cosine, with pairs compared only inside k-means clusters (`tasks.dedup_semantic`,
as the stage will): what clusters of a given size lose against comparing every pair.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tasks.clean  # noqa: E402
import tasks.langid  # noqa: E402
from bench.decontam import read_jsonl, upper95  # noqa: E402
from tasks.dedup_fuzzy import DedupFuzzyParams, shingle_jaccard  # noqa: E402
from tasks.dedup_semantic.geometry import assign, fit_centroids, n_clusters, nearest_earlier  # noqa: E402
from tasks.models.encoders import PACKAGED_MINILM, PACKAGED_USE, USE_LANGUAGES, encode, load_encoder  # noqa: E402

THRESHOLDS = (0.78, 0.80, 0.82, 0.84, 0.85, 0.86, 0.88, 0.90, 0.92)
FUZZY = DedupFuzzyParams()  # pairs at or above its target Jaccard never reach a semantic stage
MAX_TOKENS = 256


def corpus(data: Path, gsm8k_form: str) -> tuple[dict[str, str], list, list, list]:
    docs, rewrites, paraphrases = {}, [], []
    for row in read_jsonl(data / "dedup/near_dup_dev.jsonl"):
        docs[f"nd:{row['id']}"] = row["text"]
    for row in read_jsonl(data / "dedup/near_dup_dev_truth.jsonl"):
        if row["role"] == "near_duplicate":
            rewrites.append((f"nd:{row['near_duplicate_of']}", f"nd:{row['id']}"))
    gsm8k = {row["id"]: row for row in read_jsonl(data / "benchmarks/gsm8k_test.jsonl")}
    for row in read_jsonl(data / "benchmarks/rephrased/gsm8k_test_llm_rephrased.jsonl"):
        item = gsm8k[row["source_item"]]
        answer = item["answer"] if gsm8k_form == "worked" else "\n#### " + item["answer"].rsplit("####", 1)[-1].strip()
        docs[f"gsm:{item['id']}"] = f"Question: {item['question']}\nAnswer: {answer}"
        docs[f"gsm-r:{row['id']}"] = row["text"]
        paraphrases.append((f"gsm:{item['id']}", f"gsm-r:{row['id']}"))
    humaneval = {row["id"]: row for row in read_jsonl(data / "benchmarks/humaneval_test.jsonl")}
    for row in read_jsonl(data / "benchmarks/rephrased/humaneval_llm_rephrased_python.jsonl"):
        item = humaneval[row["source_item"]]
        docs[f"he:{item['id']}"] = item["prompt"] + item["canonical_solution"]
        docs[f"he-r:{row['id']}"] = row["text"]
        paraphrases.append((f"he:{item['id']}", f"he-r:{row['id']}"))
    distinct = []
    for name in ("web_raw/news_en_dev.jsonl", "web_raw/html_pages_wetlike.jsonl"):
        for row in read_jsonl(data / name):
            docs[f"distinct:{row['id']}"] = row["text"]
            distinct.append(f"distinct:{row['id']}")
    return docs, rewrites, paraphrases, distinct


def fuzzy_jaccard(texts: dict[str, str]) -> Callable[[str, str], float]:
    """The Jaccard dedup_fuzzy would measure for two documents (its own shingling), once per pair."""

    @cache
    def jaccard(a: str, b: str) -> float:
        return shingle_jaccard([texts[a]], [texts[b]], FUZZY)[0]

    return jaccard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--gsm8k-form", choices=("worked", "final"), default="worked")
    parser.add_argument("--cosine", type=float, default=0.85, help="the cut the clustered runs use")
    parser.add_argument("--cluster-sizes", type=int, nargs="*", default=[50, 200, 1000])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    docs, rewrites, paraphrases, distinct = corpus(args.data, args.gsm8k_form)
    keys = list(docs)
    table = pa.table({"id": keys, "text": [docs[k] for k in keys]})
    table = tasks.langid.run(table, tasks.langid.LangidParams(min_score=0.0)).kept
    table = tasks.clean.measure(table, tasks.clean.CleanParams()).kept  # C4 line removal; drops nothing
    texts = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))
    jaccard = fuzzy_jaccard(texts)
    langs = dict(zip(table.column("id").to_pylist(), table.column("lang").to_pylist()))
    space = {}
    for key, lang in langs.items():
        base = (lang or "").split("_")[0]
        space[key] = "minilm" if base == "en" else "use" if base in USE_LANGUAGES else None
    vectors: dict[str, np.ndarray] = {}
    for name, encoder_id in (("minilm", PACKAGED_MINILM), ("use", PACKAGED_USE)):
        members = [k for k in keys if space[k] == name]
        encoder = load_encoder(encoder_id, "cpu")
        start = time.process_time()
        embedded = np.asarray(encode(encoder, [texts[k] for k in members], MAX_TOKENS, 8))
        seconds = time.process_time() - start
        print(f"{name}: {len(members)} documents, {len(members) / seconds:.1f} docs/s on one thread")
        vectors |= dict(zip(members, embedded))
    uncovered = sum(space[k] is None for k in keys)
    print(f"not embedded (no encoder covers their language): {uncovered} of {len(keys)}\n")

    def cosine(a: str, b: str) -> float:
        if space[a] is None or space[a] != space[b]:
            return -1.0
        return float(vectors[a] @ vectors[b])

    low = [(a, b) for a, b in rewrites if jaccard(a, b) < FUZZY.threshold]
    rewrite_cos = np.array([cosine(a, b) for a, b in low])
    gsm_cos = np.array([cosine(a, b) for a, b in paraphrases if a.startswith("gsm:")])
    he_cos = np.array([cosine(a, b) for a, b in paraphrases if a.startswith("he:")])
    by_space: dict[str, list[str]] = {}
    for key in distinct:
        if space[key]:
            by_space.setdefault(space[key], []).append(key)
    similar_pairs = []
    for members in by_space.values():
        matrix = np.stack([vectors[k] for k in members])
        sims = np.triu(matrix @ matrix.T, 1)
        for i, j in np.argwhere(sims >= min(THRESHOLDS)):
            a, b = members[i], members[j]
            if jaccard(a, b) < FUZZY.threshold:
                similar_pairs.append((float(sims[i, j]), a, b))
    n = len(distinct)
    print(
        f"rewritten copies below Jaccard {FUZZY.threshold}: {len(low)}; paraphrase pairs: GSM8K {len(gsm_cos)} "
        f"({args.gsm8k_form} answers), HumanEval {len(he_cos)}; distinct documents: {n}\n"
    )
    print("| cosine >= | rewrites | GSM8K paraphrases | HumanEval paraphrases | distinct removed | 95% upper |")
    print("|---:|---:|---:|---:|---:|---:|")
    for threshold in THRESHOLDS:
        removed = {b for cos, a, b in similar_pairs if cos >= threshold}  # the later of each pair
        k = len(removed)
        print(
            f"| {threshold:.2f} | {np.mean(rewrite_cos >= threshold):.3f} | {np.mean(gsm_cos >= threshold):.3f} | "
            f"{np.mean(he_cos >= threshold):.3f} | {k} ({k / n:.2%}) | {upper95(k, n):.2%} |"
        )
    clustered(keys, space, vectors, jaccard, low, paraphrases, distinct, args.cosine, args.cluster_sizes)
    print("\ndistinct pairs at cosine >= 0.85 (the later one would be removed):")
    for cos, a, b in sorted(similar_pairs, reverse=True):
        if cos >= 0.85:
            print(f"  {cos:.3f} {a} | {b}: {texts[a][:70]!r} | {texts[b][:70]!r}")


def group(key: str) -> str:
    """The dev set a document belongs to: rewrites, paraphrases or distinct documents."""
    prefix = key.split(":", 1)[0]
    return "paraphrase" if prefix in ("gsm", "gsm-r", "he", "he-r") else prefix


def clustered(keys, space, vectors, jaccard, rewrites, paraphrases, distinct, cosine, cluster_sizes) -> None:
    """Removals when each space is cut into k-means clusters of about `size` documents and documents
    are compared with those before them in their cluster only (`size` 0: one cluster, every pair). A
    removal counts for a dev set when its nearest earlier neighbour is in the same set."""
    print(f"\nat cosine >= {cosine}, pairs compared inside k-means clusters of about this many documents:")
    print("| cluster size | clusters | rewrites | GSM8K | HumanEval | distinct removed |")
    print("|---:|---:|---:|---:|---:|---:|")
    distinct_set = set(distinct)
    for size in [0, *cluster_sizes]:
        removed, n_total_clusters = set(), 0
        for name in ("minilm", "use"):
            members = [k for k in keys if space[k] == name]
            matrix = np.stack([vectors[k] for k in members])
            k = 1 if size == 0 else n_clusters(len(members), size)
            labels = np.zeros(len(members), dtype=np.int32)
            if k > 1:
                labels, _ = assign(matrix, fit_centroids(matrix, k, seed=0, iterations=25))
            n_total_clusters += len(set(labels.tolist()))
            for label in set(labels.tolist()):
                rows = np.flatnonzero(labels == label)
                best, of = nearest_earlier(matrix[rows])
                for row, score, neighbour in zip(rows, best, of):
                    if score < cosine:
                        continue
                    doc, other = members[row], members[rows[neighbour]]
                    if group(doc) != group(other):
                        continue  # the dev sets share pages (near_dup_dev's originals are web pages)
                    if doc in distinct_set and jaccard(doc, other) >= FUZZY.threshold:
                        continue  # fuzzy dedup's pair
                    removed.add(doc)
        found = [any(d in removed for d in pair) for pair in rewrites]
        gsm = [any(d in removed for d in pair) for pair in paraphrases if pair[0].startswith("gsm:")]
        he = [any(d in removed for d in pair) for pair in paraphrases if pair[0].startswith("he:")]
        false = len(removed & distinct_set)
        print(
            f"| {size or 'all pairs'} | {n_total_clusters} | {np.mean(found):.3f} | {np.mean(gsm):.3f} | "
            f"{np.mean(he):.3f} | {false} ({false / len(distinct):.2%}) |"
        )


if __name__ == "__main__":
    main()
