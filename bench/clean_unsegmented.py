"""Word rules in languages written without spaces (issue #16): which of them mean something once
those scripts are tokenised by character (tasks/clean/doc.py), measured on real text.

    .venv/bin/python bench/clean_unsegmented.py [--per-doc 10] [--baseline 7d06f1b]

Two sets, each per language: prose documents built from lingua's Leipzig-corpora sentences
(../shared/data/langid/lingua_langid_eval.jsonl, `--per-doc` sentences a document, one a line; good
text, so every drop there is a false positive), and the real web documents of ../shared/data/web_raw
in those languages (cc_text_docs.jsonl: OSCAR/mC4 samples; html_pages_wetlike.jsonl: pages with their
boilerplate, langid's label). Segmented languages run alongside as the reference (hi, mr, te, fa: words
holding combining marks or zero-width joiners).
For every rule whose words depend on segmentation, it prints the share of documents the rule would
drop at its default threshold and the median value, where it judges the language. Last, the
docs/s of `clean` on one core on the unsegmented documents of both sets, this tree against
`--baseline` (whitespace words there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tasks.clean as clean  # noqa: E402
from bench.clean_calibration import compare_speed  # noqa: E402
from bench.corpus import lingua_documents  # noqa: E402
from tasks.clean.doc import base_language  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
UNSEGMENTED = ("zh", "ja", "th", "km", "lo", "my", "bo")
SEGMENTED = ("en", "de", "fr", "ko", "hi", "mr", "te", "fa")  # the last four: words with combining marks, joiners
WORD_RULES = [
    code
    for code, rule in clean.RULES.items()
    if code.split(":")[1]
    in (
        "word_count",
        "mean_word_length",
        "symbol_word_ratio",
        "alpha_words_ratio",
        "stop_word_count",
        "top_2gram_char_frac",
        "top_3gram_char_frac",
        "top_4gram_char_frac",
        "dup_5gram_char_frac",
        "dup_7gram_char_frac",
        "dup_10gram_char_frac",
        "list_ratio",
    )
]


def web_documents() -> list[tuple[str, str]]:
    docs = []
    for line in open(DATA / "web_raw" / "cc_text_docs.jsonl", encoding="utf-8"):
        record = json.loads(line)
        if base_language(record["lang"]) in UNSEGMENTED + SEGMENTED:
            docs.append((base_language(record["lang"]), record["text"]))
    for line in open(DATA / "web_raw" / "html_pages_wetlike.jsonl", encoding="utf-8"):
        record = json.loads(line)
        if base_language(record["html_lang"]) in UNSEGMENTED:
            docs.append((base_language(record["html_lang"]), record["text"]))
    return docs


def report(name: str, docs: list[tuple[str, str]]) -> None:
    params = clean.CleanParams()
    table = pa.table({"text": [text for _, text in docs], "lang": [lang for lang, _ in docs]})
    signals = clean.measure(table, params).kept
    langs = [lang for lang, _ in docs]
    print(f"\n## {name}: {len(docs)} documents")
    order = [lang for lang in UNSEGMENTED + SEGMENTED if lang in langs]
    print("rule".ljust(40) + "".join(f"{lang:>14}" for lang in order))
    print("documents".ljust(40) + "".join(f"{langs.count(lang):>14}" for lang in order))
    for code in WORD_RULES:
        column = signals.column(clean.signal_column(code)).to_pylist()
        cells = []
        for lang in order:
            p = params.for_language(lang)
            family = getattr(p, code.split(":")[0])
            rows = [i for i, doc_lang in enumerate(langs) if doc_lang == lang]
            if not clean.judges(clean.RULES[code], lang, p):
                cells.append("not judged")
                continue
            values = np.array([column[i] for i in rows], dtype=np.float32)
            dropped = (~clean.RULES[code].keeps(values, family)).mean()
            cells.append(f"{dropped:6.0%} {statistics.median(values):6.3g}")
        print(code.ljust(40) + "".join(f"{cell:>14}" for cell in cells))
    print("cells: share dropped at the default threshold, median value (not judged: nor measured)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-doc", type=int, default=10)
    parser.add_argument("--baseline", default="7d06f1b", help="commit whose tasks/clean the speed is compared with")
    args = parser.parse_args()
    prose, web = lingua_documents(args.per_doc, UNSEGMENTED + SEGMENTED), web_documents()
    report(f"lingua prose, {args.per_doc} sentences a document", prose)
    report("real web documents (cc_text_docs, html pages)", web)
    unsegmented = [(lang, text) for lang, text in prose + web if lang in UNSEGMENTED]
    print(f"\n## clean (measure + decide) on the {len(unsegmented)} unsegmented documents, one core, best of 3 x 2:")
    with tempfile.TemporaryDirectory() as tmp:
        table = pa.table({"text": [text for _, text in unsegmented], "lang": [lang for lang, _ in unsegmented]})
        compare_speed(Path(tmp), table, args.baseline)


if __name__ == "__main__":
    main()
