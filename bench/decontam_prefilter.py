"""The semantic search's lexical prefilter (`decontam.semantic.prefilter`): windows it spares the
encoder, paraphrases it keeps, and what it costs.

    .venv/bin/python bench/decontam_prefilter.py [--hosts 1000] [--threads 2] [--no-embed]

Same data and plants as bench/decontam.py (its helpers): 990 news articles and 1,000 web pages (cut to
2,000 characters) as negatives, the 742 LLM paraphrases of Yang et al. 2023 planted into web pages.
The lexicon is built over all four benchmarks' items (16,342), as a run against them would. Per
setting it prints the share of windows that would be embedded, and for the plants the share whose
planted region keeps a window. With embeddings (the default; ~5 minutes on 2 CPU cores) it embeds
every window of the plants once and scores them against the GSM8K and HumanEval items (each window
keeps its best item per benchmark, so the other benchmarks do not change these two): a plant is
found when a window over its region names its source item at the benchmark's threshold, with and
without the prefilter.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from decontam import DATA, SPECS, hosts, plants, read_jsonl, say

from tasks import models
from tasks.decontam import SemanticParams
from tasks.decontam.benchmarks import load_items
from tasks.decontam.ngrams import word_spans, words
from tasks.decontam.semantic import (
    embed,
    item_lexicon,
    lexical_candidates,
    nearest_items,
    window_ranges,
)

SETTINGS = ((0.2, 3), (0.3, 2), (0.3, 3), (0.4, 3), (0.5, 3))


def cut(texts: list[str], params: SemanticParams) -> list[dict]:
    """Every window of every text: document, character bounds, words."""
    out = []
    for d, text in enumerate(texts):
        spans, tokens = word_spans(text), words(text)
        for first, stop in window_ranges(len(spans), params.window_words, params.stride_words):
            out.append({"doc": d, "start": spans[first][0], "end": spans[stop - 1][1], "words": tokens[first:stop]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-embed", action="store_true", help="window shares only, no recall")
    args = parser.parse_args()
    models.set_torch_threads(args.threads)
    params = SemanticParams(enabled=True)

    items = [item for spec in SPECS for item in load_items(spec)]
    started = time.perf_counter()
    lexicon = item_lexicon([words(item.semantic_text) for item in items])
    say(
        f"lexicon of {len(items):,} items: {len(lexicon.vocab):,} words, "
        f"built in {time.perf_counter() - started:.1f} s"
    )

    host_texts = hosts(args.hosts, 2000)
    _, paraphrase = plants(host_texts)
    rephrased = {
        r["source_item"]: r["text"]
        for name in ("gsm8k_test_llm_rephrased.jsonl", "humaneval_llm_rephrased_python.jsonl")
        for r in read_jsonl(DATA / "benchmarks" / "rephrased" / name)
    }
    sets = {
        "news": [d["text"] for d in read_jsonl(DATA / "web_raw" / "news_en_dev.jsonl")],
        "web": host_texts,
        "paraphrase plants": [t for t, _ in paraphrase],
    }
    windows = {name: cut(texts, params) for name, texts in sets.items()}
    plant_windows = windows["paraphrase plants"]
    regions = []  # per plant: (start, end) of the planted text
    for text, source in paraphrase:
        at = text.find(rephrased[source])
        regions.append((at, at + len(rephrased[source])))
    over_plant = np.array(
        [w["start"] < regions[w["doc"]][1] and w["end"] > regions[w["doc"]][0] for w in plant_windows]
    )

    masks = {}
    for share, min_words in SETTINGS:
        shares = []
        for name, ws in windows.items():
            started = time.perf_counter()
            keep = lexical_candidates([w["words"] for w in ws], lexicon, share, min_words)
            seconds = time.perf_counter() - started
            shares.append(f"{name} {keep.mean():.1%} of {len(ws):,} ({len(sets[name]) / seconds:,.0f} docs/s)")
            masks[share, min_words, name] = keep
        kept = masks[share, min_words, "paraphrase plants"] & over_plant
        regions_kept = len({plant_windows[i]["doc"] for i in np.flatnonzero(kept)})
        say(
            f"prefilter {share} / {min_words} words: windows embedded: {'; '.join(shares)}; "
            f"plants whose region keeps a window: {regions_kept / len(paraphrase):.1%}"
        )
    if args.no_embed:
        return

    wanted = [spec for spec in SPECS if spec.name in ("gsm8k", "humaneval")]
    item_rows = [item for spec in wanted for item in load_items(spec)]
    groups, lo = [], 0
    for spec in wanted:
        n = sum(1 for item in item_rows if item.benchmark == spec.name)
        groups.append((lo, lo + n))
        lo += n
    item_emb = embed([item.semantic_text for item in item_rows], params, "cpu")
    started = time.perf_counter()
    texts = sets["paraphrase plants"]
    queries = embed([texts[w["doc"]][w["start"] : w["end"]] for w in plant_windows], params, "cpu")
    seconds = time.perf_counter() - started
    best, nearest = nearest_items(queries, item_emb, groups, params.item_block)
    say(
        f"\nembedded {len(plant_windows):,} plant windows in {seconds:.0f} s "
        f"({len(plant_windows) / seconds:.1f} windows/s)"
    )
    item_ids = [item.item_id for item in item_rows]
    group_of = {spec.name: g for g, spec in enumerate(wanted)}
    sources = [s for _, s in paraphrase]
    hit = np.array(
        [
            any(
                item_ids[nearest[i, g]] == sources[w["doc"]]
                and best[i, g] >= params.threshold_for(spec.name, spec.layout)
                for spec in wanted
                for g in [group_of[spec.name]]
            )
            for i, w in enumerate(plant_windows)
        ]
    )

    def recall(mask: np.ndarray) -> float:
        return len({plant_windows[i]["doc"] for i in np.flatnonzero(hit & mask)}) / len(paraphrase)

    say(f"paraphrase recall without prefilter: {recall(np.ones(len(plant_windows), bool)):.1%}")
    for share, min_words in SETTINGS:
        mask = masks[share, min_words, "paraphrase plants"]
        say(
            f"  with prefilter {share} / {min_words} words: {recall(mask):.1%} "
            f"(encoder time on news at {len(plant_windows) / seconds:.1f} windows/s: "
            f"{masks[share, min_words, 'news'].sum() / (len(plant_windows) / seconds):.0f} s of "
            f"{len(windows['news']) / (len(plant_windows) / seconds):.0f} s)"
        )


if __name__ == "__main__":
    main()
