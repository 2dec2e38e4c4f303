"""Language-ID accuracy of the `langid` stage's model by text length, on lingua's labeled test data.

    .venv/bin/python bench/langid_accuracy.py [--model PATH]

../shared/data/langid/lingua_langid_eval.jsonl: 75 languages x (200 sentences, 50 word pairs,
50 single words). Prints top-1 accuracy per kind, the share above the stage's default min_score, and
the languages with the lowest sentence accuracy. Labels are ISO 639-1, as lid.176's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks import models  # noqa: E402
from tasks.langid import LangidParams  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "langid" / "lingua_langid_eval.jsonl"
SAME_LANGUAGE = {"nb": "no"}  # lingua labels Norwegian Bokmal nb; lid.176 labels Norwegian no


def evaluate(model_path: str, data: Path = DATA) -> dict[str, dict]:
    """Per kind: n, accuracy, share kept by the default min_score, and accuracy per language."""
    records = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
    model = models.load_fasttext(model_path)
    labels, scores = models.fasttext_top_labels(model, [r["text"] for r in records])
    floor = LangidParams().min_score
    known = {label.removeprefix("__label__") for label in model.get_labels()}
    by_kind: dict[str, Counter] = defaultdict(Counter)
    by_lang: dict[str, Counter] = defaultdict(Counter)
    for record, label, score in zip(records, labels, scores):
        gold = SAME_LANGUAGE.get(record["lang"], record["lang"])
        correct = label == gold
        by_kind[record["kind"]].update(n=1, correct=correct, kept=score >= floor)
        if gold in known:
            by_kind[record["kind"]].update(n_known=1, correct_known=correct)
        if record["kind"] == "sentence":
            by_lang[record["lang"]].update(n=1, correct=correct)
    return {
        kind: {
            "n": c["n"],
            "accuracy": c["correct"] / c["n"],
            "kept_by_min_score": c["kept"] / c["n"],
            "accuracy_known": c["correct_known"] / c["n_known"],
            "n_known": c["n_known"],
            "per_language": {lang: lc["correct"] / lc["n"] for lang, lc in by_lang.items()}
            if kind == "sentence"
            else {},
        }
        for kind, c in by_kind.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="fastText LID model (default: lid.176.ftz)")
    args = parser.parse_args()
    start = time.perf_counter()
    results = evaluate(args.model or models.default_lid_path())
    print(f"{'kind':<12}{'n':>7}{'accuracy':>10}{'on model languages':>20}{'kept (score>=0.5)':>19}")
    for kind in ("sentence", "word-pair", "single-word"):
        r = results[kind]
        print(
            f"{kind:<12}{r['n']:>7,}{r['accuracy']:>10.1%}{r['accuracy_known']:>13.1%} of {r['n_known']:<5,}"
            f"{r['kept_by_min_score']:>18.1%}"
        )
    worst = sorted(results["sentence"]["per_language"].items(), key=lambda kv: kv[1])[:8]
    print("lowest sentence accuracy: " + ", ".join(f"{lang} {acc:.0%}" for lang, acc in worst))
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
