"""What the multilingual path costs on the bench corpus: which windows each encoder embeds, and the scan's
wall with the path on and off, side by side in one process.

    .venv/bin/python bench/decontam_cost.py [--docs 50000] [--sample 240] [--threads 2] [--cache DIR]

The corpus is bench/corpus.py's (real multilingual web pages), labelled by the `langid` stage's own
function. Window counts are exact over all `--docs` documents (`window_ranges` for the English path,
`segment_windows` for the multilingual one). The scan (`tasks.decontam.scan`, all four benchmarks
indexed, encoders warm) runs on the first `--sample` documents with the multilingual path on, then off
(every document through MiniLM, as before the path existed), and the 50k-document wall of each is that
sample's seconds per window times the corpus's windows: a full scan of 50k documents on 2 CPU cores
takes hours either way, which is why it is a GPU job.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pj

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tasks.langid  # noqa: E402
from bench.corpus import build_corpus  # noqa: E402
from bench.decontam import SPECS, cached_index  # noqa: E402
from tasks import models  # noqa: E402
from tasks.decontam import (  # noqa: E402
    DecontamParams,
    MultilingualParams,
    SemanticParams,
    scan,
)
from tasks.decontam.ngrams import word_spans  # noqa: E402
from tasks.decontam.semantic import ENGLISH, MULTILINGUAL, segment_windows, window_ranges  # noqa: E402

say = functools.partial(print, flush=True)


def labelled(n_docs: int, directory: Path) -> pa.Table:
    tables = [pj.read_json(path) for path in build_corpus(n_docs, directory)]
    table = pa.concat_tables([t.select(["id", "text"]) for t in tables])
    return tasks.langid.run(table, tasks.langid.LangidParams(min_score=0.0)).kept


def window_counts(table: pa.Table, multilingual: MultilingualParams, english: SemanticParams) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for lang, text in zip(table.column("lang").to_pylist(), table.column("text").to_pylist()):
        path = multilingual.embeds(lang)
        if path == ENGLISH:
            counts[ENGLISH] += len(window_ranges(len(word_spans(text)), english.window_words, english.stride_words))
        elif path == MULTILINGUAL:
            counts[MULTILINGUAL] += len(segment_windows(text, multilingual))
        else:
            counts["none"] += len(window_ranges(len(word_spans(text)), english.window_words, english.stride_words))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--sample", type=int, default=240)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/winnow-decontam-bench"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    models.set_torch_threads(args.threads)
    work = Path(tempfile.mkdtemp())
    table = labelled(args.docs, work / "corpus")
    on = SemanticParams(enabled=True, multilingual=MultilingualParams(enabled=True))
    off = SemanticParams(enabled=True, multilingual=MultilingualParams(enabled=False))
    langs = collections.Counter(table.column("lang").to_pylist())
    say(f"{table.num_rows:,} documents, {len(langs)} languages; top: {dict(langs.most_common(8))}")
    with_path = window_counts(table, on.multilingual, on)
    before = sum(window_counts(table, MultilingualParams(enabled=True, english=tuple(langs)), off).values())
    total = sum(with_path.values())
    say(
        f"windows with the path: English encoder {with_path[ENGLISH]:,} ({with_path[ENGLISH] / total:.1%}), "
        f"multilingual {with_path[MULTILINGUAL]:,} ({with_path[MULTILINGUAL] / total:.1%}), "
        f"not embedded {with_path['none']:,} (counted as English-path windows); "
        f"before the path: {before:,} windows, all through the English encoder"
    )

    index_dir = cached_index(args.cache, on)  # both encoders' item embeddings; ~14 minutes the first time
    sample = table.slice(0, args.sample)
    sample_langs = sample.column("lang").to_pylist()
    groups = {
        path: sample.filter(pa.array([on.multilingual.embeds(lang) == path for lang in sample_langs]))
        for path in (ENGLISH, MULTILINGUAL)
    }
    rates = {}  # seconds per window: English pages by MiniLM, the others by USE and (before) by MiniLM
    for label, group, semantic in (
        ("English pages, English encoder", groups[ENGLISH], off),
        ("other pages, multilingual encoder", groups[MULTILINGUAL], on),
        ("other pages, English encoder (before)", groups[MULTILINGUAL], off),
    ):
        params = DecontamParams(benchmarks=SPECS, semantic=semantic).scan_params()
        scan(group.slice(0, 2), params, str(index_dir))  # the encoder loaded, not timed
        started = time.perf_counter()
        scanned = scan(group, params, str(index_dir))
        seconds = time.perf_counter() - started
        windows = sum(map(len, scanned.column("contam_windows").to_pylist())) // len(SPECS)
        rates[label] = seconds / windows
        speed = f"{windows:,} windows in {seconds:.0f} s: {windows / seconds:.1f} windows/s"
        say(f"{label}: {group.num_rows} documents, {speed}")
    other_before = before - with_path[ENGLISH]
    english_hours = with_path[ENGLISH] * rates["English pages, English encoder"] / 3600
    on_hours = english_hours + with_path[MULTILINGUAL] * rates["other pages, multilingual encoder"] / 3600
    off_hours = english_hours + other_before * rates["other pages, English encoder (before)"] / 3600
    say(
        f"the scan over {table.num_rows:,} documents at those rates, 2 cores: with the path {on_hours:.1f} h "
        f"(English pages {english_hours:.1f} h), before it {off_hours:.1f} h"
    )


if __name__ == "__main__":
    main()
