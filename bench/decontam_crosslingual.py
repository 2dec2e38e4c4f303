"""Cross-lingual decontamination: translated benchmark items planted in pages of their language, false
positives on non-English pages, per-benchmark thresholds of the multilingual encoder, and its cost.

    .venv/bin/python bench/decontam_crosslingual.py [--page-words 300] [--per-language 1000]
        [--target-fpr 0.005] [--threads 2] [--cache DIR] [--window-words 64 --stride-words 32] [--inline]

About 20 minutes on 2 CPU cores the first time (the index embeds 16,342 items with the multilingual
encoder, the scan ~25,000 windows); both are cached in DIR, keyed by their inputs, so a rerun with
other thresholds takes seconds. Everything goes through the stage's code: `build_index`, `scan` (the
cached embedding phase, documents routed by `lang`) and `detect`; thresholds through
`tasks.decontam.calibrate`.

Data (../shared/data/, see SOURCES.md), all four benchmark files in one index (GSM8K, HumanEval, MMLU,
TruthfulQA):
- plants: MGSM's human translations of the first 250 GSM8K test problems (benchmarks/translated/,
  de es fr ja zh), each inserted at a random line boundary of a page of its language; a plant counts as
  found only when a flag names its GSM8K item;
- pages (hosts and negatives): the non-English pages of web_raw/html_pages_wetlike.jsonl (by
  `html_lang`) and web_raw/cc_text_docs.jsonl (by `lang`), and for every language of
  langid/lingua_langid_eval.jsonl pages of 10 of its web sentences, one per line (the only Chinese and
  Japanese text beyond a handful of pages); at most `--per-language` pages per language, cut at a line
  end to `--page-words` words (a character of an unsegmented script counts half, as the windows do).
  Pages without a language label are left out. Labels are the sources' own, standing in for `langid`.

Thresholds: per benchmark, the cosine that at most target-fpr / #benchmarks of the calibration pages
(the even-numbered ones) reach, never below `DecontamCalibration.floor`; FPR on the odd half and recall
on the plants at those, then at the shipped defaults (`MULTILINGUAL_CALIBRATED_THRESHOLDS`), then
calibrated on all pages (printed last, for the defaults). 95% upper bounds are Clopper-Pearson.
"""

from __future__ import annotations

import argparse
import collections
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tasks.decontam  # noqa: E402
from bench.decontam import SPECS, read_jsonl, scanned, upper95  # noqa: E402
from tasks import models  # noqa: E402
from tasks.decontam import DecontamParams, MultilingualParams, SemanticParams, detect, load_index  # noqa: E402
from tasks.decontam.calibrate import DecontamCalibration, calibrate  # noqa: E402
from tasks.decontam.index import build_index, index_tables  # noqa: E402
from tasks.decontam.semantic import MULTILINGUAL_CALIBRATED_THRESHOLDS, embed  # noqa: E402
from tasks.text import KIND_TOKEN_RE  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BENCH = DATA / "benchmarks"
SEED = 0
LANGUAGES = ("de", "es", "fr", "ja", "zh")
say = functools.partial(print, flush=True)


def cut(text: str, words: int) -> str:
    """`text` up to the last line end before `words` words (characters of unsegmented scripts: half)."""
    total = 0.0
    for match in KIND_TOKEN_RE.finditer(text):
        total += 0.5 if match.group("character") else 1.0
        if total > words:
            end = text.rfind("\n", 0, match.start())
            return text[: end if end > 0 else match.start()]
    return text


def pages(per_language: int, words: int, per_page: int = 10) -> list[tuple[str, str]]:
    """(lang, page) of every non-English source page, at most `per_language` per language."""
    found: list[tuple[str, str]] = []
    for doc in read_jsonl(DATA / "web_raw" / "html_pages_wetlike.jsonl"):
        found.append(((doc["html_lang"] or "")[:2].lower(), doc["text"]))
    for doc in read_jsonl(DATA / "web_raw" / "cc_text_docs.jsonl"):
        found.append((doc["lang"], doc["text"]))
    sentences = collections.defaultdict(list)
    for row in read_jsonl(DATA / "langid" / "lingua_langid_eval.jsonl"):
        if row["kind"] == "sentence":
            sentences[row["lang"]].append(row["text"])
    for lang, rows in sorted(sentences.items()):
        found += [(lang, "\n".join(rows[i : i + per_page])) for i in range(0, len(rows), per_page)]
    rng, by_lang = random.Random(SEED), collections.defaultdict(list)
    rng.shuffle(found)
    for lang, text in found:
        if lang and lang != "en" and len(by_lang[lang]) < per_language and len(text.split()) >= 20:
            by_lang[lang].append(cut(text, words))
    return [(lang, text) for lang in sorted(by_lang) for text in by_lang[lang]]


def plants(negatives: list[tuple[str, str]], inline: bool = False) -> list[tuple[str, str, str]]:
    """(lang, page with a translated GSM8K problem inserted at a line boundary, source item id); `inline`:
    spliced into the middle of the page's longest line instead, so it shares its block with other text
    (the case line windows do not isolate)."""
    rng = random.Random(SEED)
    hosts = collections.defaultdict(list)
    for lang, text in negatives:
        hosts[lang].append(text)
    out = []
    for lang in LANGUAGES:
        for record in read_jsonl(BENCH / "translated" / f"mgsm_{lang}.jsonl"):
            lines = rng.choice(hosts[lang]).split("\n")
            if inline:
                at = max(range(len(lines)), key=lambda i: len(lines[i]))
                line = lines[at]
                cut = line.find(" ", len(line) // 2)
                cut = len(line) // 2 if cut < 0 else cut
                lines[at] = f"{line[:cut]} {record['text']} {line[cut:]}"
            else:
                at = rng.randrange(1, len(lines) + 1)
                lines = lines[:at] + [record["text"]] + lines[at:]
            out.append((lang, "\n".join(lines), record["source_item"]))
    return out


def cached_index(cache: Path, params: DecontamParams) -> str:
    """The index of all four benchmarks with the multilingual embeddings, built once into `cache` (the
    English encoder's embeddings are not needed: every page here takes the multilingual path)."""
    key = hashlib.sha256(json.dumps([tasks.decontam.VERSION, *map(str, params.index_params())]).encode()).hexdigest()
    directory = cache / f"index-crosslingual-{key[:16]}"
    if not (directory / "_SUCCESS").exists():
        started = time.perf_counter()
        index = build_index(SPECS, params.ngram, SemanticParams(enabled=False))
        texts = index.items.column("text").to_pylist()
        emb = embed(texts, params.semantic.multilingual).cpu().numpy().astype(np.float32)
        items = index.items.append_column(
            "embedding_multilingual", pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1])
        )
        directory.mkdir(parents=True, exist_ok=True)
        tables = index_tables(index)
        meta = tables["items.parquet"].schema.metadata
        tables["items.parquet"] = items.replace_schema_metadata(meta)
        for name, table in tables.items():
            pq.write_table(table, directory / name)
        (directory / "_SUCCESS").touch()
        seconds = time.perf_counter() - started
        say(f"index: {len(texts):,} items embedded in {seconds:.0f} s ({len(texts) / seconds:.1f} items/s)")
    return str(directory)


def rate(k: int, n: int) -> str:
    return f"{k / max(n, 1):6.2%} ({k}/{n}, 95% upper {upper95(k, n):.2%})"


def with_thresholds(params: DecontamParams, thresholds: dict[str, float]) -> DecontamParams:
    multilingual = params.semantic.multilingual.model_copy(update={"thresholds": thresholds})
    return params.model_copy(update={"semantic": params.semantic.model_copy(update={"multilingual": multilingual})})


def evaluate(label: str, params: DecontamParams, index, negatives: pa.Table, plants: dict, show: bool = False):
    say(f"\n{label}: " + ", ".join(f"{n} {t:.2f}" for n, t in params.semantic_thresholds("multilingual").items()))
    out = detect(negatives, params, index)
    flagged = [b is not None for b in out.column("contam_benchmark").to_pylist()]
    langs = out.column("lang").to_pylist()
    paths = out.column("contam_semantic_path").to_pylist()
    embedded = [p == "multilingual" for p in paths]
    false = sum(f and e for f, e in zip(flagged, embedded))
    say(f"  FPR, pages embedded by the multilingual path: {rate(false, sum(embedded))}")
    flagged_langs = collections.Counter(lang for lang, f in zip(langs, flagged) if f)
    if flagged_langs:
        say(f"    flagged by language: {dict(flagged_langs.most_common())}")
    if show:
        item_text = dict(zip(index.items.column("item_id").to_pylist(), index.items.column("text").to_pylist()))
        for lang, spans in zip(langs, out.column("contam_spans").to_pylist()):
            if spans:
                top = max(spans, key=lambda s: s["score"])
                say(
                    f"    [{lang}] {top['method']} {top['score']:.3f} {' '.join(top['text'].split())[:120]!r}\n"
                    f"      | {top['item_id']}: {' '.join(item_text[top['item_id']].split())[:120]!r}"
                )
    found = detect(plants["scanned"], params, index).column("contam_items").to_pylist()
    per = collections.defaultdict(list)
    for lang, source, items in zip(plants["langs"], plants["sources"], found):
        per[lang].append(source in items)
    say("  recall: " + ", ".join(f"{lang} {np.mean(v):.1%} ({sum(v)}/{len(v)})" for lang, v in per.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--page-words", type=int, default=300)
    parser.add_argument("--per-language", type=int, default=1000)
    parser.add_argument("--target-fpr", type=float, default=0.005)
    parser.add_argument("--window-words", type=int, default=64)
    parser.add_argument("--stride-words", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--inline", action="store_true", help="plants spliced into a line, not a line of their own")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/winnow-decontam-bench"))
    args = parser.parse_args()
    models.set_torch_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    multilingual = MultilingualParams(enabled=True, window_words=args.window_words, stride_words=args.stride_words)
    params = DecontamParams(
        benchmarks=SPECS, semantic=SemanticParams(enabled=True, multilingual=multilingual), action="flag"
    )
    index_url = cached_index(args.cache, params)
    index = load_index(index_url)

    negatives = pages(args.per_language, args.page_words)
    planted = plants(negatives, args.inline)
    sets = {
        "pages": ([lang for lang, _ in negatives], [text for _, text in negatives]),
        "plants": ([lang for lang, _, _ in planted], [text for _, text, _ in planted]),
    }
    scans = {}
    for name, (langs, texts) in sets.items():
        table, seconds = scanned(name, texts, params, index_url, args.cache, langs)
        scans[name] = table
        paths = collections.Counter(table.column("contam_semantic_path").to_pylist())
        windows = sum(map(len, table.column("contam_windows").to_pylist())) // len(SPECS)
        speed = f"scanned in {seconds:.0f} s, {windows / seconds:.1f} windows/s" if seconds else "scan cached"
        shape = f"{len(texts)} pages, {len(set(langs))} languages, paths {dict(paths)}"
        say(f"{name}: {shape}; {windows:,} windows, {speed}")
    routes = zip(sets["pages"][0], scans["pages"].column("contam_semantic_path").to_pylist())
    uncovered = sorted({lang for lang, path in routes if path is None})
    say(f"not embedded (outside the encoder's languages): {len(uncovered)} languages, e.g. {uncovered[:12]}")
    plant_set = {"scanned": scans["plants"], "langs": sets["plants"][0], "sources": [s for _, _, s in planted]}

    how = DecontamCalibration(target_fpr=args.target_fpr)
    windows = scans["pages"].column("contam_windows").to_pylist()
    paths = scans["pages"].column("contam_semantic_path").to_pylist()
    even = calibrate(windows[::2], paths[::2], index, how)["multilingual"]
    say(f"\ncalibrated on the even half ({even['documents']} pages, {args.target_fpr:.2%}): {even['thresholds']}")
    odd = scans["pages"].take(np.arange(1, scans["pages"].num_rows, 2))
    evaluate(
        "held-out (odd) half, thresholds from the even half",
        with_thresholds(params, even["thresholds"]),
        index,
        odd,
        plant_set,
    )
    evaluate(
        "shipped defaults (MULTILINGUAL_CALIBRATED_THRESHOLDS), all pages",
        params,
        index,
        scans["pages"],
        plant_set,
        show=True,
    )
    best = calibrate(windows, paths, index, how)["multilingual"]
    say(f"\ncalibrated on all pages (shipped: {MULTILINGUAL_CALIBRATED_THRESHOLDS}): {best}")


if __name__ == "__main__":
    main()
