"""Main-content extraction quality and speed, and WARC parsing speed: the measurements behind the
`extract` stage's default extractor and the `read` stage's WARC library.

    .venv/bin/python bench/extraction.py [--limit N] [--skip-warc]

Extraction: ../shared/data/web_raw/html_labeled_pages.jsonl.gz holds the HTML of 990 real pages and
boilerplate_labels.jsonl, per page, snippets a good extractor keeps (`must_keep`) and removes
(`must_remove`). This is trafilatura's own evaluation set (tests/evaldata.json), so it may favour
trafilatura. A snippet counts as kept when it appears in the output after collapsing whitespace on
both sides. Speed is CPU time of one process (per core): docs/s and MB/s of HTML (UTF-8 bytes).

WARC: records/s of warcio and fastwarc over the raw_formats Common Crawl sample, repeated to ~20 MB,
reading every record's payload (what the read stage does).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.extract import ExtractParams, extract_text  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "web_raw"
PAGES = DATA / "html_labeled_pages.jsonl.gz"
LABELS = DATA / "boilerplate_labels.jsonl"
WARC_SAMPLE = DATA / "raw_formats" / "dolma_sample-0000.warc.gz"
_SPACE = re.compile(r"\s+")

CONFIGS = {
    "trafilatura": ExtractParams(extractor="trafilatura"),
    "trafilatura fast": ExtractParams(extractor="trafilatura", fast=True),
    "resiliparse": ExtractParams(extractor="resiliparse"),
}


def squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def load_labeled(limit: int | None = None) -> list[tuple[dict, dict]]:
    """(page, labels) pairs for every page that has labels, in the labels file's order."""
    with gzip.open(PAGES, "rt", encoding="utf-8") as f:
        pages = {page["id"]: page for page in map(json.loads, f)}
    pairs = []
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        labels = json.loads(line)
        if labels["id"] in pages:
            pairs.append((pages[labels["id"]], labels))
    return pairs[:limit] if limit else pairs


def score(outputs: list[str], labeled: list[tuple[dict, dict]]) -> tuple[float, float]:
    """(share of must-keep snippets kept, share of must-remove snippets removed)."""
    kept = keep_total = removed = remove_total = 0
    for text, (_, labels) in zip(outputs, labeled):
        flat = squash(text)
        for snippet in labels["must_keep"]:
            keep_total += 1
            kept += squash(snippet) in flat
        for snippet in labels["must_remove"]:
            remove_total += 1
            removed += squash(snippet) not in flat
    return kept / max(keep_total, 1), removed / max(remove_total, 1)


def bench_extractors(labeled: list[tuple[dict, dict]]) -> None:
    html_mb = sum(len(page["html"].encode()) for page, _ in labeled) / 1e6
    print(f"{len(labeled)} labeled pages, {html_mb:.1f} MB of HTML")
    print(
        f"{'extractor':18} {'must-keep kept':>15} {'must-remove removed':>20} {'empty':>6} "
        f"{'docs/s/core':>12} {'MB/s/core':>10}"
    )
    for name, params in CONFIGS.items():
        start = time.process_time()
        outputs = [extract_text(page["html"], params) for page, _ in labeled]
        seconds = time.process_time() - start
        keep, remove = score(outputs, labeled)
        empty = sum(not text for text in outputs)
        print(
            f"{name:18} {keep:>14.1%} {remove:>20.1%} {empty:>6} "
            f"{len(labeled) / seconds:>12.1f} {html_mb / seconds:>10.2f}"
        )


def bench_warc() -> None:
    from fastwarc.warc import ArchiveIterator as FastIterator
    from warcio.archiveiterator import ArchiveIterator as WarcioIterator

    sample = WARC_SAMPLE.read_bytes()
    data = sample * max(1, 20_000_000 // len(sample))

    def warcio_read() -> int:
        n = 0
        for record in WarcioIterator(gzip.GzipFile(fileobj=io.BytesIO(data))):
            record.raw_stream.read()
            n += 1
        return n

    def fastwarc_read() -> int:
        n = 0
        for record in FastIterator(io.BytesIO(data), parse_http=True):
            record.reader.read()
            n += 1
        return n

    print(f"\nWARC parsing, {len(data) / 1e6:.0f} MB gzip ({WARC_SAMPLE.name} repeated), every payload read")
    for name, fn in (("warcio (read stage)", warcio_read), ("fastwarc", fastwarc_read)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            n = fn()
            best = min(best, time.perf_counter() - start)
        print(f"{name:20} {n / best:>10,.0f} records/s {len(data) / 1e6 / best:>7.1f} MB/s (gzip)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N labeled pages")
    parser.add_argument("--skip-warc", action="store_true", help="skip the WARC parsing benchmark")
    args = parser.parse_args()
    bench_extractors(load_labeled(args.limit))
    if not args.skip_warc:
        bench_warc()


if __name__ == "__main__":
    main()
