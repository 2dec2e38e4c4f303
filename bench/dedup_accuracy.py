"""Fuzzy dedup accuracy: recall by Jaccard and by edit rate, and precision, of Winnow's layouts and
verification rules against FineWeb's 14 x 8 without verification, and against datatrove itself.

    .venv/bin/python bench/dedup_accuracy.py [--seeds 8] [--docs 15000] [--plant-share 0.1] [--no-corpus]

Every configuration runs the stage's own functions in memory, as `winnow run` does per phase:
normalize -> signatures -> band_rows -> candidate_edges -> verify_edges -> label_components ->
choose_keepers. Configurations whose cutoff the stage would not derive (the cutoff before issue #15,
an exact-Jaccard check of borderline pairs) filter the candidate edges here by the same count of
agreeing MinHash values that `verify_edges` uses.

1. Dev set (../shared/data/dedup/, SOURCES.md "dedup/"): 400 distinct real pages and 200 variants
   with 5-15% of their words inserted or deleted, boilerplate header/footer often replaced. Scored
   as issue #15 does: a (variant, original) pair is caught when one side is removed, by the truth
   file's Jaccard band; precision = removed documents that truly have a duplicate. Averaged over
   MinHash seeds 1..--seeds (the expected figure for unseen data of this kind; seed 1 is what a
   run with the default seed does), datatrove (one run: its hashing has no seed choice here).
2. Planted corpus: --docs documents of bench/corpus.py (real web paragraphs; ~3% exact copies and
   many partial overlaps of one page), and a variant of --plant-share of them with 5-15% of their
   words edited as the dev set's are (scattered runs of 1-6 words, or one to three spans). Recall
   per edit-rate band (one side removed) and per Jaccard band; precision = removed documents whose
   keeper is of their planted family or shares >= 0.5 exact Jaccard with them (NEAR_DUPLICATE).
   datatrove's MinHash (bench/datatrove_minhash.py) runs on the same documents when /tmp/dtvenv
   exists (see bench/datatrove_baseline.py to make it), else is skipped with a message.
3. Star edges (each bucket member to its smallest position, what the stage does) against all pairs
   per bucket, under the default: true pairs lost when a bucket's head is a mere template sibling.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasketch.lsh import _optimal_param

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from tasks import dedup_fuzzy as fz  # noqa: E402
from tasks.normalize import NormalizeParams  # noqa: E402
from tasks.normalize import run as normalize  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dedup"
DATATROVE_PYTHON = Path("/tmp/dtvenv/bin/python")
J_BANDS = (("J>=0.7", 0.7, 1.01), ("0.5-0.7", 0.5, 0.7), ("J<0.5", 0.0, 0.5))
EDIT_BANDS = ((0.05, 0.075), (0.075, 0.10), (0.10, 0.125), (0.125, 0.15))
NEAR_DUPLICATE = 0.5  # a natural (unplanted) removal counts as right at this exact Jaccard to its keeper
say = functools.partial(print, flush=True)


@dataclass(frozen=True)
class Config:
    """A layout (params) and a verification rule: the stage's own, or, for rules the stage would not
    derive, `min_matches` agreeing values or (`exact_between`) exact Jaccard >= threshold for
    candidates with [lo, hi) agreeing values, applied to edges and, unless `check_keepers` is off, to
    each removed document and its keeper (as `choose_keepers` does)."""

    name: str
    params: fz.DedupFuzzyParams
    min_matches: int | None = None
    exact_between: tuple[int, int] | None = None
    check_keepers: bool = True

    @property
    def stage_rule(self) -> bool:
        return self.min_matches is None and self.exact_between is None


def agreeing(jaccard: float, params: fz.DedupFuzzyParams) -> int:
    """The agreeing MinHash values that make an estimated Jaccard >= `jaccard`."""
    return math.ceil(jaccard * params.num_perm - 1e-9)


def configs() -> list[Config]:
    default, target = fz.DedupFuzzyParams(), fz.DedupFuzzyParams().threshold
    midpoint = (1 / 14) ** (1 / 8)
    fineweb_verified = fz.DedupFuzzyParams(bands=14, rows=8, threshold=midpoint)
    spread = math.sqrt(target * (1 - target) / default.num_perm)  # the estimate's standard error at the target
    count = functools.partial(agreeing, params=default)
    bands, rows = _optimal_param(target, default.num_perm, 0.5, 0.5)
    layout = "x".join(map(str, default.layout))
    return [
        Config("FineWeb: 14x8, verify=false", fz.DedupFuzzyParams(bands=14, rows=8, verify=False)),
        Config("before #15: 14x8, estimate >= 0.719", fineweb_verified, count(midpoint), check_keepers=False),
        Config(f"14x8, threshold 0.719 (>= {fineweb_verified.min_matches})", fineweb_verified),
        Config(
            f"before #15: threshold 0.7 ({bands}x{rows}, >= 0.7)",
            fz.DedupFuzzyParams(bands=bands, rows=rows),
            count(target),
            check_keepers=False,
        ),
        Config(f"default: 0.7 -> {layout}, >= {default.min_matches}", default),
        Config(
            f"{layout}, >= {default.min_matches}, keepers unchecked", default, default.min_matches, check_keepers=False
        ),
        Config(f"{layout}, >= t - 3 se ({count(target - 3 * spread)})", default, count(target - 3 * spread)),
        Config(
            f"{layout}, exact J >= t within t +- 2 se",
            default,
            exact_between=(count(target - 2 * spread), count(target + 2 * spread)),
        ),
        Config(
            "threshold 0.8 -> {}x{}, >= {}".format(
                *fz.DedupFuzzyParams(threshold=0.8).layout, fz.DedupFuzzyParams(threshold=0.8).min_matches
            ),
            fz.DedupFuzzyParams(threshold=0.8),
        ),
    ]


# ------------------------------------------------------------------------------ the stage in memory


def row_of(positions) -> np.ndarray:
    return np.array([int(p.rsplit("\t", 1)[1]) for p in positions], np.int64)


def shingle_sets(texts: pa.ChunkedArray) -> list[set[int]]:
    hashes, offsets = fz.shingle_hashes(texts, fz.DedupFuzzyParams())
    return [set(hashes[lo:hi].tolist()) for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def signature_matrix(sigs: pa.Table, params: fz.DedupFuzzyParams) -> np.ndarray:
    return sigs.column("minhash").combine_chunks().flatten().to_numpy().reshape(-1, params.num_perm)


def passes(config: Config, matrix: np.ndarray, sets: list[set[int]], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A bench-only verification rule on pairs of rows."""
    agree = (matrix[a] == matrix[b]).sum(axis=1)
    if config.exact_between is None:
        return agree >= config.min_matches
    lo, hi = config.exact_between
    keep = agree >= hi
    for i in np.flatnonzero((agree >= lo) & (agree < hi)).tolist():
        keep[i] = jaccard(sets[a[i]], sets[b[i]]) >= config.params.threshold
    return keep


def keepers(edges: pa.Table, sigs: pa.Table, params: fz.DedupFuzzyParams) -> dict[int, int]:
    """Removed row -> its keeper's row."""
    clusters = fz.choose_keepers(fz.cluster_members(fz.label_components(edges), sigs, params), params)
    rows, kept = row_of(clusters.column("position").to_pylist()), row_of(clusters.column("keeper").to_pylist())
    return {int(r): int(k) for r, k in zip(rows, kept) if r != k}


def run_config(config: Config, sigs: pa.Table, sets: list[set[int]]) -> dict[int, int]:
    params = config.params
    edges = fz.candidate_edges(fz.band_rows(sigs, params))
    if config.stage_rule:
        return keepers(fz.verify_edges(edges, sigs, params) if params.verify else edges, sigs, params)
    matrix = signature_matrix(sigs, params)
    src, dst = row_of(edges.column("src").to_pylist()), row_of(edges.column("dst").to_pylist())
    removed = keepers(
        edges.filter(pa.array(passes(config, matrix, sets, src, dst))),
        sigs,
        params.model_copy(update={"verify": False}),
    )  # keepers unchecked: checked here if asked
    if not config.check_keepers or not removed:
        return removed
    rows, kept = np.array(list(removed)), np.array(list(removed.values()))
    return {int(r): int(k) for r, k, ok in zip(rows, kept, passes(config, matrix, sets, rows, kept)) if ok}


def datatrove(ids: list[str], texts: list[str]) -> dict[int, int] | None:
    """datatrove's removed rows -> keeper rows, or None without /tmp/dtvenv."""
    if not DATATROVE_PYTHON.exists():
        say(f"datatrove: skipped ({DATATROVE_PYTHON} not found; bench/datatrove_baseline.py says how to make it)")
        return None
    with tempfile.TemporaryDirectory(prefix="winnow-dt-minhash-") as tmp:
        path = Path(tmp, "docs.jsonl")
        path.write_text(
            "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in zip(ids, texts))
        )
        out = subprocess.run(
            [str(DATATROVE_PYTHON), str(ROOT / "bench" / "datatrove_minhash.py"), str(path), f"{tmp}/work"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    row = {doc_id: i for i, doc_id in enumerate(ids)}
    return {row[r]: row[k] for r, k in json.loads(out)["removed"].items()}


def normalized(ids: list[str], texts: list[str]) -> pa.Table:
    return normalize(pa.table({"id": ids, "text": texts}), NormalizeParams()).kept


# ------------------------------------------------------------------------------ 1. dev set


def dev_set(seeds: int) -> None:
    docs = [json.loads(line) for line in (DEV / "near_dup_dev.jsonl").open()]
    truth = {r["id"]: r for r in map(json.loads, (DEV / "near_dup_dev_truth.jsonl").open())}
    ids, texts = [d["id"] for d in docs], [d["text"] for d in docs]
    table = normalized(ids, texts)
    row = {doc_id: i for i, doc_id in enumerate(ids)}
    pairs = [
        (row[r["id"]], row[r["near_duplicate_of"]], r["edit"]["jaccard_5gram_to_original"])
        for r in truth.values()
        if r["role"] == "near_duplicate"
    ]
    has_duplicate = np.array([truth[i]["cluster_size"] > 1 for i in ids])
    sets = shingle_sets(table.column("text"))

    def score(removed: dict[int, int]) -> list[float]:
        gone = np.zeros(len(ids), bool)
        gone[list(removed)] = True
        recall = [np.mean([gone[a] or gone[b] for a, b, j in pairs if lo <= j < hi]) for _, lo, hi in J_BANDS]
        return [has_duplicate[gone].mean() if gone.any() else 1.0, *recall, float(gone.sum())]

    say(
        f"\n=== 1. dev set: {len(ids)} docs, {len(pairs)} variant/original pairs "
        f"({', '.join(f'{name}: {sum(lo <= j < hi for *_, j in pairs)}' for name, lo, hi in J_BANDS)}); "
        f"mean of MinHash seeds 1..{seeds} (seed 1 in brackets)"
    )
    say(
        f"{'configuration':44s} {'precision':>15s} "
        + " ".join(f"{name:>15s}" for name, *_ in J_BANDS)
        + f" {'removed':>8s}"
    )
    all_seeds = {seed: fz.signatures(table, fz.DedupFuzzyParams(seed=seed), "s0") for seed in range(1, seeds + 1)}
    for config in configs():
        runs = np.array(
            [
                score(run_config(replace(config, params=config.params.model_copy(update={"seed": seed})), sigs, sets))
                for seed, sigs in all_seeds.items()
            ]
        )
        mean = runs.mean(axis=0)
        say(
            f"{config.name:44s} "
            + " ".join(f"{m:8.3f} ({f:.2f})" for m, f in zip(mean[:-1], runs[0][:-1]))
            + f" {mean[-1]:8.0f}"
        )
    if (removed := datatrove(ids, texts)) is not None:
        scored = score(removed)
        say(
            f"{'datatrove 0.10.1, FineWeb 14x8':44s} "
            + " ".join(f"{v:15.3f}" for v in scored[:-1])
            + f" {scored[-1]:8.0f}"
        )


# ------------------------------------------------------------------------------ 2. planted corpus


def variant(text: str, other_words: list[str], rng: random.Random) -> tuple[str, float, str]:
    """5-15% of the words inserted or deleted: scattered runs of 1-6 words, or one to three spans."""
    words = text.split(" ")
    rate, mode = rng.uniform(0.05, 0.15), rng.choice(("scattered", "scattered", "spans"))
    budget = max(1, round(rate * len(words)))
    spans = rng.randint(1, 3)
    runs = [] if mode == "scattered" else [budget // spans + (s < budget % spans) for s in range(spans)]
    while mode == "scattered" and sum(runs) < budget:
        runs.append(min(rng.randint(1, 6), budget - sum(runs)))
    for run in (r for r in runs if r):
        at = rng.randrange(max(1, len(words) - run))
        if rng.random() < 0.5 and len(words) > run + 5:
            del words[at : at + run]
        else:
            start = rng.randrange(max(1, len(other_words) - run))
            words[at:at] = other_words[start : start + run]
    return " ".join(words), sum(runs) / len(text.split(" ")), mode


def planted_corpus(n_docs: int, share: float) -> tuple[list[str], list[str], dict[int, tuple[int, float, str]]]:
    """bench/corpus.py documents plus variants; variant row -> (original row, edit rate, mode)."""
    with tempfile.TemporaryDirectory(prefix="winnow-dedup-acc-") as tmp:
        (path,) = build_corpus(n_docs, Path(tmp), n_shards=1)
        records = [json.loads(line) for line in path.open()]
    ids, texts = [r["id"] for r in records], [r["text"] for r in records]
    rng = random.Random(15)
    planted = {}
    for original in sorted(rng.sample(range(n_docs), round(share * n_docs))):
        donor = texts[rng.randrange(n_docs)].split(" ")
        text, rate, mode = variant(texts[original], donor, rng)
        planted[len(texts)] = (original, rate, mode)
        ids.append(f"variant-{original:08d}")
        texts.append(text)
    order = list(range(len(texts)))
    rng.shuffle(order)  # variants spread over the input order, so either side may be the keeper
    back = {old: new for new, old in enumerate(order)}
    planted = {back[v]: (back[o], rate, mode) for v, (o, rate, mode) in planted.items()}
    return [ids[i] for i in order], [texts[i] for i in order], planted


def corpus_bench(n_docs: int, share: float) -> None:
    ids, texts, planted = planted_corpus(n_docs, share)
    table = normalized(ids, texts)
    sets = shingle_sets(table.column("text"))
    family = list(range(len(ids)))
    for v, (o, _, _) in planted.items():
        family[v] = o
    pair_j = {v: jaccard(sets[v], sets[o]) for v, (o, _, _) in planted.items()}
    say(
        f"\n=== 2. planted corpus: {n_docs:,} bench/corpus.py docs + {len(planted):,} variants (5-15% of words "
        f"edited; {sum(m == 'scattered' for *_, m in planted.values())} scattered, "
        f"{sum(m == 'spans' for *_, m in planted.values())} spans); MinHash seed 1"
    )
    for lo, hi in EDIT_BANDS:
        js = [pair_j[v] for v, (_, rate, _) in planted.items() if lo <= rate < hi]
        say(
            f"  edit rate {lo:.3f}-{hi:.3f}: {len(js)} pairs, exact Jaccard median {np.median(js):.2f} "
            f"(10-90%: {np.percentile(js, 10):.2f}-{np.percentile(js, 90):.2f})"
        )

    def score(removed: dict[int, int]) -> tuple[list[float], list[float], list[float], float, int]:
        gone = np.zeros(len(ids), bool)
        gone[list(removed)] = True
        caught = {v: gone[v] or gone[o] for v, (o, _, _) in planted.items()}
        by_edit = [np.mean([caught[v] for v, (_, r, _) in planted.items() if lo <= r < hi]) for lo, hi in EDIT_BANDS]
        scattered = [
            np.mean([caught[v] for v, (_, r, m) in planted.items() if lo <= r < hi and m == "scattered"])
            for lo, hi in EDIT_BANDS
        ]
        by_j = [np.mean([caught[v] for v in planted if lo <= pair_j[v] < hi]) for _, lo, hi in J_BANDS]
        right = [family[r] == family[k] or jaccard(sets[r], sets[k]) >= NEAR_DUPLICATE for r, k in removed.items()]
        return by_edit, scattered, by_j, float(np.mean(right)) if right else 1.0, len(removed)

    sigs = fz.signatures(table, fz.DedupFuzzyParams(), "s0")
    results = {config.name: score(run_config(config, sigs, sets)) for config in configs()}
    if (removed := datatrove(ids, texts)) is not None:
        results["datatrove 0.10.1, FineWeb 14x8"] = score(removed)
    bands = " ".join(f"{f'{lo:.3f}-{hi:.3f}':>11s}" for lo, hi in EDIT_BANDS)
    say(
        f"{'recall by edit rate (scattered only)':44s} {bands}   {' '.join(f'{n:>8s}' for n, *_ in J_BANDS)} "
        f"{'precision':>9s} {'removed':>7s}"
    )
    for name, (by_edit, scattered, by_j, precision, n_removed) in results.items():
        say(
            f"{name:44s} "
            + " ".join(f"{a:.3f} ({s:.2f})" for a, s in zip(by_edit, scattered))
            + "   "
            + " ".join(f"{j:8.3f}" for j in by_j)
            + f" {precision:9.4f} {n_removed:7,}"
        )
    star_vs_all_pairs(sigs, sets, planted, pair_j)


# ------------------------------------------------------------------------------ 3. star edges


def all_pair_edges(bands: pa.Table) -> pa.Table:
    """Every pair of every bucket (what star edges stand in for), as EDGE_SCHEMA rows."""
    buckets: dict[tuple[int, int], list[str]] = {}
    for band, band_hash, pos in zip(*(bands.column(c).to_pylist() for c in ("band", "band_hash", "position"))):
        buckets.setdefault((band, band_hash), []).append(pos)
    pairs = {(b, a) for members in buckets.values() for a, b in itertools.combinations(sorted(members), 2)}
    return pa.table(
        {"src": [s for s, _ in sorted(pairs)], "dst": [d for _, d in sorted(pairs)]}, schema=fz.EDGE_SCHEMA
    )


def star_vs_all_pairs(sigs: pa.Table, sets: list[set[int]], planted: dict, pair_j: dict) -> None:
    params = fz.DedupFuzzyParams()
    bands = fz.band_rows(sigs, params)
    say(f"\n=== 3. star edges vs all pairs per bucket (default {'x'.join(map(str, params.layout))}, verified)")
    for name, edges in (("star edges", fz.candidate_edges(bands)), ("all pairs", all_pair_edges(bands))):
        removed = keepers(fz.verify_edges(edges, sigs, params), sigs, params)
        caught = [v in removed or o in removed for v, (o, _, _) in planted.items() if pair_j[v] >= params.threshold]
        say(
            f"{name:12s}: {edges.num_rows:,} candidate edges; planted pairs at J >= {params.threshold}: "
            f"{sum(caught)} of {len(caught)} caught; {len(removed):,} docs removed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--docs", type=int, default=15_000)
    parser.add_argument("--plant-share", type=float, default=0.1)
    parser.add_argument("--no-corpus", action="store_true", help="the dev set only")
    args = parser.parse_args()
    say("S-curves: P(removed) at Jaccard 0.3 ... 0.9")
    for config in configs():
        if config.stage_rule:
            curve = [fz.removal_probability(j, config.params) for j in np.arange(0.3, 0.91, 0.1)]
            say(f"  {config.name:44s} " + " ".join(f"{p:.3f}" for p in curve))
    dev_set(args.seeds)
    if not args.no_corpus:
        corpus_bench(args.docs, args.plant_share)


if __name__ == "__main__":
    main()
