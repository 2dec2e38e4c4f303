"""What the dataset card adds to `write`, at 50,000 documents (#34).

    .venv/bin/python bench/dataset_card.py [--docs 50000] [--shards 8] [--card out/data/../README.md]

`write` materializes each shard's documents as Parquet; the card adds two things and reads nothing:
- per shard, the documents per `lang` and per `license`, counted on the table `write` already holds;
- once, the card's text, from the run's funnel, sections and inputs.
Both are timed here beside the Parquet writing they ride on, in one process on one core, on
generated documents (~2,000 characters, 30 languages). The stages and results are a real run's card's
(`--card`, default: the demo's current version, if it ran), else stand-ins of their size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.engine.store import write_parquet  # noqa: E402
from flows.report.card import Source, StageCard, dataset_card  # noqa: E402

LANGS = [f"l{i:02d}" for i in range(30)]


def shard(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(5000)])
    texts = [" ".join(rng.choice(words, 350)) for _ in range(rows)]
    licenses = rng.choice(["cc-by-4.0", "cc-by-sa-3.0", None, None, None, None], rows).tolist()
    return pa.table(
        {
            "id": [f"{seed}-{i}" for i in range(rows)],
            "text": texts,
            "lang": rng.choice(LANGS, rows),
            "license": licenses,
        }
    )


def real_run(card: Path) -> tuple[list[StageCard], list[str]]:
    """The stages and results of a card a real run wrote (its tables parsed back), else stand-ins of
    the same size as the demo's: 14 stages, 20 kB of results."""
    if card.is_file():
        text = card.read_text()
        results = [text.split("## Results", 1)[1].split("## Languages", 1)[0]]
        rows = [
            line.split("|")[1:-1]
            for line in text.split("## Processing", 1)[1].split("## Results", 1)[0].splitlines()
            if line.startswith("| ")
        ]
        stages = [
            StageCard(name.strip(), 1, int(d_in.replace(",", "")), int(d_out.replace(",", "")), {}, {"threshold": 0.7})
            for name, _, d_in, d_out, _ in rows[1:]
        ]
        return stages, results
    stages = [StageCard(f"stage{i}", 1, 50_000, 50_000, {"a:b": 3}, {"threshold": 0.7}) for i in range(14)]
    return stages, ["### Section\n\n" + "| a | b |\n" * 2000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--card", type=Path, default=ROOT / ".winnow" / "demo" / "out" / "data" / ".." / "README.md")
    args = parser.parse_args()
    tables = [shard(args.docs // args.shards, seed) for seed in range(args.shards)]
    write_s = count_s = 0.0
    languages: dict[str, int] = {}
    licenses: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, table in enumerate(tables):
            start = time.process_time()
            with open(f"{tmp}/{i}.parquet", "wb") as f:
                write_parquet(table, f)
            write_s += time.process_time() - start
            start = time.process_time()
            for column, counts in (("lang", languages), ("license", licenses)):
                for row in pc.value_counts(table.column(column)).to_pylist():
                    counts[row["values"] or ""] = counts.get(row["values"] or "", 0) + row["counts"]
            count_s += time.process_time() - start
        stages, results = real_run(args.card.resolve())
        sources = [Source(f"part-{i}.jsonl.gz", 10_000_000, f"size=10000000;md5={i}") for i in range(args.shards)]
        start = time.process_time()
        text = dataset_card(
            title="bench",
            version="v",
            previous=None,
            rows=args.docs,
            sources=sources,
            stages=stages,
            results=results,
            languages=languages,
            limits=[("pii", "not detected: person, location")],
            licenses=licenses,
        )
        Path(f"{tmp}/README.md").write_text(text)
        card_s = time.process_time() - start
    print(f"{args.docs:,} documents in {args.shards} shards, one core:")
    print(f"  Parquet writing (what `write` does anyway): {write_s:.3f} s")
    print(f"  documents per language and per licence, on the tables in memory: {count_s * 1000:.1f} ms")
    print(f"  the card's text ({len(text):,} characters) and its file: {card_s * 1000:.1f} ms")
    print(
        f"  the card on top of write: {(count_s + card_s) * 1000:.1f} ms = {100 * (count_s + card_s) / write_s:.2f}%"
    )


if __name__ == "__main__":
    main()
