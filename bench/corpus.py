"""Build a benchmark corpus of any size from the real web pages in `shared/data/web_raw/`.

Every `bench/` script measures on the same documents: `build_corpus(n_docs, directory)` writes
`part-00000.jsonl` ... with `id`, `text`, `url`, recombining the paragraphs (non-empty lines; the
pages are WET-like extractions, one paragraph or menu item per line) of
`html_pages_wetlike.jsonl` (1,456 multilingual pages, nav lines included) and `cc_text_docs.jsonl`
(427 OSCAR-style documents in many languages). Each document is 3-12 paragraphs: usually a
contiguous run from one page (coherent text, its boilerplate and all), sometimes paragraphs drawn
from anywhere (mixed); about 3% are exact copies of an earlier document under a new id. The same
arguments give byte-identical files. Nothing is printed.

Usage (from the repo root, any Python 3.11; 200,000 documents take ~3.5 s on one core):
    python -c "from pathlib import Path; from bench.corpus import build_corpus as b; b(200_000, Path('/tmp/c'))"
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

WEB_RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "web_raw"
LINGUA = WEB_RAW.parent / "langid" / "lingua_langid_eval.jsonl"
SOURCES = ("html_pages_wetlike.jsonl", "cc_text_docs.jsonl")
PARAGRAPHS_PER_DOC = (3, 12)
MIXED_SHARE = 0.2  # documents whose paragraphs come from random pages
DUPLICATE_SHARE = 0.03  # documents that repeat an earlier one exactly


def _load_pages(web_raw: Path) -> list[tuple[str | None, list[str]]]:
    """(url, paragraphs) per source page with at least one non-empty line, in file order."""
    pages = []
    for name in SOURCES:
        with open(web_raw / name, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                paragraphs = [p.strip() for p in record["text"].split("\n") if p.strip()]
                if paragraphs:
                    pages.append((record.get("url"), paragraphs))
    return pages


def build_corpus(n_docs: int, directory: Path, n_shards: int = 8, seed: int = 0) -> list[Path]:
    """Write `n_docs` documents as `n_shards` JSONL shards of contiguous id ranges; return their paths.

    Args:
        n_docs: documents to write (>= 0).
        directory: output folder, created if missing; existing shards of the same names are replaced.
        n_shards: number of `part-NNNNN.jsonl` files (>= 1); some are empty when n_shards > n_docs.
        seed: seeds the one `random.Random`; same arguments, same bytes.

    Returns:
        The shard paths in order.

    Raises:
        ValueError: n_docs < 0 or n_shards < 1.
    """
    if n_docs < 0 or n_shards < 1:
        raise ValueError(f"need n_docs >= 0 and n_shards >= 1, got n_docs={n_docs}, n_shards={n_shards}")
    rng = random.Random(seed)
    pages = _load_pages(WEB_RAW)
    flat = [(page, k) for page, (_, paragraphs) in enumerate(pages) for k in range(len(paragraphs))]
    low, high = PARAGRAPHS_PER_DOC
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"part-{s:05d}.jsonl" for s in range(n_shards)]
    recipes: list[tuple[int, tuple[tuple[int, int], ...]]] = []  # (url page, (page, paragraph)...) per doc
    files = [open(path, "w", encoding="utf-8", newline="\n") for path in paths]
    try:
        for i in range(n_docs):
            roll = rng.random()
            if recipes and roll < DUPLICATE_SHARE:
                recipe = recipes[rng.randrange(len(recipes))]
            elif roll < DUPLICATE_SHARE + MIXED_SHARE:
                picks = tuple(flat[rng.randrange(len(flat))] for _ in range(rng.randint(low, high)))
                recipe = (picks[0][0], picks)
            else:
                page = flat[rng.randrange(len(flat))][0]  # pages weighted by length: few accidental repeats
                n_paragraphs = len(pages[page][1])
                k = min(rng.randint(low, high), n_paragraphs)
                start = rng.randint(0, n_paragraphs - k)
                recipe = (page, tuple((page, j) for j in range(start, start + k)))
            recipes.append(recipe)
            text = "\n".join(pages[page][1][j] for page, j in recipe[1])
            record = {"id": f"bench-{i:08d}", "text": text, "url": pages[recipe[0]][0]}
            files[i * n_shards // n_docs].write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        for f in files:
            f.close()
    return paths


def lingua_documents(per_doc: int, languages: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """Good text in 75 languages: lingua's Leipzig-corpora sentences (`../shared/data/langid`),
    `per_doc` consecutive ones a document, one a line, as (language, text); `languages`: only these."""
    sentences = defaultdict(list)
    for line in LINGUA.open(encoding="utf-8"):
        record = json.loads(line)
        if record["kind"] == "sentence" and (languages is None or record["lang"] in languages):
            sentences[record["lang"]].append(record["text"])
    return [
        (lang, "\n".join(texts[i : i + per_doc]))
        for lang, texts in sentences.items()
        for i in range(0, len(texts) - per_doc + 1, per_doc)
    ]
