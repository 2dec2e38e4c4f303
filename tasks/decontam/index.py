"""The contamination index: every benchmark item's n-gram hashes (and embeddings), built once.

Built from the registry by `build_index`, saved as two Parquet tables (`items`, `ngrams`) in the
artifact store under a key of the benchmark files' fingerprints and these parameters, and loaded
once per process by `load_index` (a Dask worker keeps it across shards, like `tasks.models`).

Short segments (fewer than `n` words) are indexed as one n-gram of all their words when they have at
least `min_words`: NeMo Curator's task n-grams range from 8 (`min_ngram_size`) to 13 words, GPT-3's
13-gram filter is the upper end (Brown et al. 2020, App. C). Shorter segments ("Nothing happens")
would match ordinary prose and are left out (counted in `Index.stats`).

Frequent n-grams: GPT-3 and NeMo Curator (`max_matches=10`) ignore n-grams found in more than 10
*training* documents as common phrases. That count needs the whole corpus before any shard can be
decided, which breaks per-shard caching and incremental re-curation, and it would spare exactly the
benchmark items copied across many pages. We drop instead the n-grams shared by more than
`max_items_per_ngram` *benchmark items*: templates such as MMLU's "which of the following is" +
shared context are common phrases by construction, and that count is known when the index is built.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from tasks.decontam.benchmarks import BenchmarkSpec, load_items
from tasks.decontam.ngrams import ngram_hashes, word_hashes, words
from tasks.decontam.semantic import Lexicon, SemanticParams, embed, item_lexicon
from tasks.errors import StoreError

ITEMS, NGRAMS, SEGMENTS = "items.parquet", "ngrams.parquet", "segments.parquet"


class NgramParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(13, ge=1, description="Words per n-gram (GPT-3's 13, Brown et al. 2020 App. C).")
    # NeMo Curator's tasks use min_ngram_size=8 for items shorter than 13 words.
    min_words: int = Field(8, ge=1, description="Segments shorter than n but at least this long are one n-gram.")
    max_items_per_ngram: int = Field(
        10, ge=1, description="n-grams in more benchmark items than this are template text and not indexed."
    )
    # GPT-3 marks an example dirty on any 13-gram collision.
    min_matches: int = Field(1, ge=1, description="Matching n-grams needed to mark a document contaminated.")


@dataclass(frozen=True)
class Index:
    items: pa.Table  # benchmark, item_id, text, n_ngrams[, embedding]; row = item number
    hashes: np.ndarray  # sorted uint64 n-gram hashes (an n-gram of several items repeats)
    item_of: np.ndarray  # int32 item number of each hash
    segment_of: np.ndarray  # int32 segment number of each hash (segments of all items, in order)
    segment_ngrams: np.ndarray  # int32 distinct n-grams of each segment
    lengths: tuple[int, ...]  # n-gram lengths present (n, and the short segments' lengths)
    stats: dict

    def entries_of(self, gram: int) -> tuple[np.ndarray, np.ndarray]:
        """(item numbers, segment numbers) holding n-gram `gram` (one or several)."""
        left = np.searchsorted(self.hashes, np.uint64(gram), "left")
        right = np.searchsorted(self.hashes, np.uint64(gram), "right")
        return self.item_of[left:right], self.segment_of[left:right]

    def benchmark_rows(self) -> dict[str, tuple[int, int]]:
        """Each benchmark's item numbers, lo..hi: `build_index` numbers items benchmark by benchmark."""
        names = self.items.column("benchmark").to_pylist()
        rows: dict[str, tuple[int, int]] = {}
        for number, name in enumerate(names):
            rows[name] = (rows.get(name, (number, number))[0], number + 1)
        return rows

    @functools.cached_property
    def lexicon(self) -> Lexicon:
        """The items' words for the semantic prefilter, built on first use (once per loaded index)."""
        return item_lexicon([words(text) for text in self.items.column("text").to_pylist()])

    def embeddings(self, device: str, column: str = "embedding"):
        """The items' embeddings by one encoder (`embedding`: the English one, `embedding_multilingual`)."""
        import torch

        if column not in self.items.column_names:
            return None
        flat = self.items.column(column).combine_chunks().values.to_numpy()
        return torch.from_numpy(flat.reshape(self.items.num_rows, -1).copy()).to(device)


def segment_grams(segment: str, params: NgramParams) -> dict[int, int]:
    """Distinct n-gram hashes of one segment -> their length in words."""
    hashes = word_hashes(words(segment))
    n = params.n if len(hashes) >= params.n else len(hashes)
    return dict.fromkeys(ngram_hashes(hashes, n).tolist(), n) if n >= params.min_words else {}


def embed_items(texts: list[str], encoder) -> np.ndarray:
    """The items' normalized embeddings by one encoder's params (`embed`), as float32 numpy."""
    return embed(texts, encoder).cpu().numpy().astype(np.float32)


def build_index(
    benchmarks: tuple[BenchmarkSpec, ...],
    params: NgramParams,
    semantic: SemanticParams,
    embed_all: Callable[[list[str], Any], np.ndarray] = embed_items,
) -> Index:
    """The n-gram and embedding index of the benchmarks' items. `embed_all(texts, encoder params)`
    embeds the items (the caller may spread it over workers: thousands of items per encoder)."""
    items = [item for spec in benchmarks for item in load_items(spec)]
    segments = [
        (number, segment_grams(segment, params)) for number, item in enumerate(items) for segment in item.segments
    ]
    owners: dict[int, set[int]] = defaultdict(set)
    for number, grams in segments:
        for gram in grams:
            owners[gram].add(number)
    common = {g for g, who in owners.items() if len(who) > params.max_items_per_ngram}
    segments = [(number, {g: n for g, n in grams.items() if g not in common}) for number, grams in segments]
    rows = sorted((g, number, seg, n) for seg, (number, grams) in enumerate(segments) for g, n in grams.items())
    hashes = np.array([r[0] for r in rows], np.uint64)
    item_of = np.array([r[1] for r in rows], np.int32)
    segment_of = np.array([r[2] for r in rows], np.int32)
    length = np.array([r[3] for r in rows], np.int16)
    distinct: list[set[int]] = [set() for _ in items]
    for number, grams in segments:
        distinct[number].update(grams)
    n_ngrams = np.array([len(d) for d in distinct], np.int32)
    segment_ngrams = np.array([len(grams) for _, grams in segments], np.int32)
    table = pa.table(
        {
            "benchmark": pa.array([i.benchmark for i in items], pa.string()),
            "item_id": pa.array([i.item_id for i in items], pa.string()),
            "text": pa.array([i.semantic_text for i in items], pa.string()),
            "n_ngrams": pa.array(n_ngrams, pa.int32()),
        }
    )
    encoders = {"embedding": semantic, "embedding_multilingual": semantic.multilingual}
    for column, encoder in encoders.items():
        if semantic.enabled and encoder.enabled and items:  # the multilingual path rides on the search
            emb = embed_all([i.semantic_text for i in items], encoder)
            table = table.append_column(column, pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1]))
    stats = {
        "items": len(items),
        "items_unindexed": int((n_ngrams == 0).sum()),
        "ngrams": int(len(np.unique(hashes))),
        "ngrams_common_dropped": len(common),
    }
    return Index(table, hashes, item_of, segment_of, segment_ngrams, tuple(sorted(set(length.tolist()))), stats)


def index_tables(index: Index) -> dict[str, pa.Table]:
    """The index as the Parquet tables `load_index` reads; stats ride in the items table's metadata."""
    ngrams = pa.table(
        {
            "hash": pa.array(index.hashes, pa.uint64()),
            "item": pa.array(index.item_of, pa.int32()),
            "segment": pa.array(index.segment_of, pa.int32()),
        }
    )
    meta = {b"lengths": json.dumps(index.lengths).encode(), b"stats": json.dumps(index.stats).encode()}
    segments = pa.table({"n_ngrams": pa.array(index.segment_ngrams, pa.int32())})
    return {ITEMS: index.items.replace_schema_metadata(meta), NGRAMS: ngrams, SEGMENTS: segments}


@functools.lru_cache(maxsize=4)
def load_index(url: str) -> Index:
    """The index saved under `url` (a directory, local or fsspec), read once per process."""
    fs, root = fsspec.core.url_to_fs(url)
    try:
        items = pq.read_table(f"{root}/{ITEMS}", filesystem=fs)
        ngrams = pq.read_table(f"{root}/{NGRAMS}", filesystem=fs)
        segments = pq.read_table(f"{root}/{SEGMENTS}", filesystem=fs)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"{url}: unreadable decontamination index ({exc}); delete it and rerun") from exc
    meta = items.schema.metadata or {}
    return Index(
        items.replace_schema_metadata(None),
        ngrams.column("hash").to_numpy(),
        ngrams.column("item").to_numpy(),
        ngrams.column("segment").to_numpy(),
        segments.column("n_ngrams").to_numpy(),
        tuple(json.loads(meta[b"lengths"])),
        json.loads(meta[b"stats"]),
    )
