"""PII detection: span-level precision and recall per entity type on the dev set, false redactions on
real web and news pages against a labelled sample, and the cost of `clean` plus PII against today's.

    .venv/bin/python bench/pii.py [--data ../shared/data] [--cost-docs 2000] [--list-web] [--ner-model M]

- Dev set: presidio-research's synthetic sentences (`pii/presidio_synth_dev.jsonl`). A found span is
  right when it overlaps a gold span its type maps to; "exact" counts those with the same boundaries.
  Gold types no detector covers (PERSON, STREET_ADDRESS, ...) are listed with their counts.
- Web pages: every span found on `web_raw/news_en_dev.jsonl`, `html_pages_wetlike.jsonl` and
  `cc_text_docs.jsonl` is looked up in `bench/pii_web_labels.json` (written by reading each one:
  `--list-web` prints the spans to label). A page is falsely redacted when one of its spans is labelled
  not PII; unlabelled spans are printed and fail the run, so a detector change cannot hide behind
  stale labels.
- With `--ner-model` (a spaCy pipeline, installed or a directory): `person` against the gold PERSON
  spans and `location` against STREET_ADDRESS and GPE, the same way, and the recognizer's docs/s.
- Cost: one thread, `clean` (both phases) then the PII detection of today's types (e-mail and IP) or
  of the default types, on the same documents in one process; docs/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tasks.clean  # noqa: E402
import tasks.pii  # noqa: E402
from bench.decontam import read_jsonl, upper95  # noqa: E402
from tasks.pii import PiiParams, find  # noqa: E402

LABELS = ROOT / "bench" / "pii_web_labels.json"
GOLD_TYPES = {  # presidio-research entity type -> Winnow's
    "EMAIL_ADDRESS": "email",
    "IP_ADDRESS": "ip_address",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "payment_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
}
WEB_FILES = ("web_raw/news_en_dev.jsonl", "web_raw/html_pages_wetlike.jsonl", "web_raw/cc_text_docs.jsonl")
CONTEXT = 30
MIN_REPORTED = 20  # types with fewer gold spans are reported as counts, not rates


def dev_scores(rows: list[dict], params: PiiParams) -> None:
    tp, fp, fn, exact, uncovered = Counter(), Counter(), Counter(), Counter(), Counter()
    misses: dict[str, list[str]] = {}
    false: dict[str, list[str]] = {}
    for row in rows:
        text = row["text"]
        gold = [(GOLD_TYPES.get(s["entity_type"]), s["start"], s["end"]) for s in row["spans"]]
        for s in row["spans"]:
            if s["entity_type"] not in GOLD_TYPES:
                uncovered[s["entity_type"]] += 1
        found = find(text, params)
        for span in found:
            match = [g for g in gold if g[0] == span.type and g[1] < span.end and span.start < g[2]]
            if match:
                tp[span.type] += 1
                exact[span.type] += any(g[1] == span.start and g[2] == span.end for g in match)
            else:
                fp[span.type] += 1
                false.setdefault(span.type, []).append(text[span.start : span.end])
        for kind, start, end in gold:
            if kind and not any(s.type == kind and s.start < end and start < s.end for s in found):
                fn[kind] += 1
                misses.setdefault(kind, []).append(text[start:end])
    print(f"dev set: {len(rows)} sentences\n")
    print("| type | gold | found | precision | recall | exact boundaries |\n|---|---:|---:|---:|---:|---:|")
    for kind in GOLD_TYPES.values():
        n_gold, n_found = tp[kind] + fn[kind], tp[kind] + fp[kind]
        recall_hits = n_gold - fn[kind]
        if n_gold >= MIN_REPORTED:
            precision = f"{tp[kind] / n_found:.3f}" if n_found else "-"
            recall = f"{recall_hits / n_gold:.3f}"
        else:
            precision = f"{tp[kind]}/{n_found}"
            recall = f"{recall_hits}/{n_gold}"
        print(f"| {kind} | {n_gold} | {n_found} | {precision} | {recall} | {exact[kind]}/{tp[kind]} |")
    print("\nnot covered (need a model):", ", ".join(f"{k} {n}" for k, n in uncovered.most_common()))
    for kind, values in misses.items():
        print(f"missed {kind}: {values[:12]}")
    for kind, values in false.items():
        print(f"false {kind}: {values[:12]}")


def web_pages(data: Path) -> list[dict]:
    pages = []
    for name in WEB_FILES:
        pages += read_jsonl(data / name)
    return pages


def web_scores(pages: list[dict], params: PiiParams, list_all: bool) -> None:
    labels = json.loads(LABELS.read_text()) if LABELS.exists() else {}
    flagged_pages, false_pages, unlabelled, by_type = 0, 0, [], Counter()
    for page in pages:
        text = page["text"]
        spans = find(text, params)
        if not spans:
            continue
        flagged_pages += 1
        is_false = False
        for span in spans:
            value = text[span.start : span.end]
            key = f"{span.type}\t{value}"
            label = labels.get(key)
            by_type[(span.type, label)] += 1
            if list_all or label is None:
                context = text[max(0, span.start - CONTEXT) : span.end + CONTEXT].replace("\n", " ")
                unlabelled.append((key, page.get("id"), context))
            is_false |= label == "not_pii"
        false_pages += is_false
    n = len(pages)
    print(f"\nweb and news pages: {n}; with a span found: {flagged_pages}")
    for (kind, label), count in sorted(by_type.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  {kind:15} {label or 'UNLABELLED':10} {count}")
    print(
        f"pages with a false redaction: {false_pages} of {n} ({false_pages / n:.2%}; "
        f"95% upper bound {upper95(false_pages, n):.2%}, Clopper-Pearson)"
    )
    if unlabelled:
        for key, doc_id, context in unlabelled:
            print(f"  {'LIST' if list_all else 'UNLABELLED'} {json.dumps(key)} {doc_id}: ...{context}...")
        if not list_all:
            raise SystemExit(f"{len(unlabelled)} spans have no label in {LABELS.relative_to(ROOT)}")


def cost(pages: list[dict], n_docs: int) -> None:
    import torch

    torch.set_num_threads(1)
    texts = [p["text"] for p in pages]
    texts = (texts * (n_docs // len(texts) + 1))[:n_docs]
    table = pa.table({"id": [str(i) for i in range(n_docs)], "text": texts})
    clean = tasks.clean.CleanParams()
    today = PiiParams(types=("email", "ip_address"))
    default = PiiParams()
    tasks.pii.run(table.slice(0, 50), default)  # imports and pattern compilation, outside the clock
    timings = {}
    for name, params in (("today", today), ("default", default), ("today ", today), ("default ", default)):
        start = time.process_time()
        kept = tasks.clean.run(table, clean).kept
        tasks.pii.run(kept, params)
        timings.setdefault(name.strip(), []).append(time.process_time() - start)
    best = {name: min(values) for name, values in timings.items()}
    print(f"\ncost, one thread, {n_docs} documents ({sum(map(len, texts)) / 1e6:.1f} MB), best of two:")
    for name, seconds in best.items():
        print(f"  clean + PII ({name} types): {seconds:.2f} s CPU, {n_docs / seconds:,.0f} docs/s")
    print(f"  default / today: {best['default'] / best['today']:.3f}x the time")


def ner_scores(rows: list[dict], model: str) -> None:
    import torch

    torch.set_num_threads(1)
    params = PiiParams(types=("person", "location"), ner_model=model)
    gold_of = {"person": ("PERSON",), "location": ("STREET_ADDRESS", "GPE")}
    texts = [row["text"] for row in rows]
    tasks.pii.detect(pa.table({"text": texts[:5]}), params)  # load the pipeline outside the clock
    start = time.process_time()
    found = tasks.pii.detect(pa.table({"text": texts}), params).kept.column(tasks.pii.FOUND_COLUMN).to_pylist()
    seconds = time.process_time() - start
    print(f"\nNER backend {model!r}: {len(rows) / seconds:,.0f} sentences/s on one thread")
    print("| type | gold types | gold | found | precision | recall |\n|---|---|---:|---:|---:|---:|")
    for kind, gold_types in gold_of.items():
        n_gold = hits = n_found = right = 0
        for row, spans in zip(rows, found):
            gold = [(s["start"], s["end"]) for s in row["spans"] if s["entity_type"] in gold_types]
            mine = [(s["start"], s["end"]) for s in spans if s["type"] == kind]
            n_gold, n_found = n_gold + len(gold), n_found + len(mine)
            hits += sum(any(a < e and s < b for s, e in mine) for a, b in gold)
            right += sum(any(a < e and s < b for a, b in gold) for s, e in mine)
        precision = right / n_found if n_found else float("nan")
        print(f"| {kind} | {', '.join(gold_types)} | {n_gold} | {n_found} | {precision:.3f} | {hits / n_gold:.3f} |")
    for gold_type in ("PERSON", "STREET_ADDRESS", "GPE"):
        kind = "person" if gold_type == "PERSON" else "location"
        spans_of = [[(s["start"], s["end"]) for s in spans if s["type"] == kind] for spans in found]
        gold = [
            (i, s["start"], s["end"])
            for i, row in enumerate(rows)
            for s in row["spans"]
            if s["entity_type"] == gold_type
        ]
        hits = sum(any(a < e and s < b for s, e in spans_of[i]) for i, a, b in gold)
        print(f"  recall of {gold_type}: {hits}/{len(gold)} ({hits / len(gold):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cost-docs", type=int, default=2000)
    parser.add_argument("--list-web", action="store_true", help="print every span found on the web pages")
    parser.add_argument("--ner-model", help="also score person and location with this spaCy pipeline")
    args = parser.parse_args()
    params = PiiParams()
    rows = read_jsonl(args.data / "pii" / "presidio_synth_dev.jsonl")
    dev_scores(rows, params)
    if args.ner_model:
        ner_scores(rows, args.ner_model)
    pages = web_pages(args.data)
    web_scores(pages, params, args.list_web)
    if args.cost_docs:
        cost(pages, args.cost_docs)


if __name__ == "__main__":
    main()
