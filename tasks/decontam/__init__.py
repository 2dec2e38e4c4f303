"""Benchmark decontamination: word n-gram overlap, then embedding neighbours for paraphrases.

A document is contaminated when it shares `ngram.min_matches` normalized 13-grams with a benchmark
item (GPT-3, Brown et al. 2020, App. C) or when one of its windows embeds within its benchmark's
cosine threshold of an item (paraphrases, Yang et al. 2023; thresholds per benchmark: see
`tasks.decontam.semantic`). Every document gets:

    contam_benchmark       benchmark of the strongest hit (most n-grams, else best cosine); null if clean
    contam_items           ids of the items hit
    n_contam_ngrams        distinct matching n-grams
    contam_overlap         largest share of one item segment's n-grams found in the document (1.0: a whole rendering)
    contam_semantic_score  best window-to-item cosine (null when no window was embedded: search off, or
                           no window passed `semantic.prefilter`)
    contam_semantic_path   which encoder embedded the document's windows: `english`, `multilingual` (its
                           `lang` is not English), or null (no search, or a language neither encoder covers)
    contam_spans           the matched spans of the original text: benchmark, item, method, offsets, score
    n_contam_chars_cut     characters excised (0 unless action=excise)

The embedding scan is the slow part (bench/decontam.py), so it is a phase of its own, `scan`, whose
cache key leaves out the thresholds and the actions: its `contam_windows` column keeps every window's
best item of each benchmark and its cosine, and `run` applies the thresholds to it. A new threshold
or action re-embeds nothing.

Actions, one for n-gram hits (`action`) and one for documents hit by the embedding search alone
(`semantic_action`): `flag` keeps everything; `drop` rejects contaminated documents
(`decontam:ngram_overlap`, `decontam:semantic_similarity`); `excise` (GPT-3's and NeMo Curator's
default) removes each matched span and `margin_chars` either side, discards the pieces left shorter
than `min_piece_chars` and rejects documents cut into more than `max_pieces` (`decontam:n_pieces`) or
with nothing left (`decontam:remaining_chars`). An n-gram hit is a copy; an embedding neighbour is
evidence of similarity, and some pages on the same topic as an item still reach it, so by default
those documents are flagged (the columns say why), not cut.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.contract import StageOutput, split_by_reason
from tasks.decontam.benchmarks import BenchmarkSpec
from tasks.decontam.index import (
    Index,
    NgramParams,
    build_index,
    embed_items,
    index_tables,
    load_index,
)
from tasks.decontam.ngrams import find_matches, word_spans, words
from tasks.decontam.semantic import (
    ENGLISH,
    MULTILINGUAL,
    MultilingualParams,
    MultilingualScan,
    SemanticParams,
    embed,
    lexical_candidates,
    nearest_items,
    segment_windows,
    window_ranges,
)

__all__ = [
    "VERSION",
    "DecontamParams",
    "BenchmarkSpec",
    "NgramParams",
    "SemanticParams",
    "MultilingualParams",
    "ScanParams",
    "Index",
    "build_index",
    "embed_items",
    "index_tables",
    "load_index",
    "scan",
    "run",
    "detect",
    "excise",
    "item_thresholds",
    "REASONS",
    "COLUMNS",
]

VERSION = 5
WINDOW_BLOCK = 4096  # windows embedded and compared at once: bounds a shard's memory, not its output

REASONS = ("decontam:ngram_overlap", "decontam:semantic_similarity", "decontam:n_pieces", "decontam:remaining_chars")

SPAN_TYPE = pa.struct(
    [
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("method", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("score", pa.float32()),
        ("text", pa.string()),
    ]
)
WINDOW_TYPE = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("item", pa.int32()), ("score", pa.float32())])
WINDOWS = pa.field("contam_windows", pa.list_(WINDOW_TYPE))  # the scan's column: every window's best item
PATH = pa.field("contam_semantic_path", pa.string())  # the scan's other column: which encoder embedded the document
COLUMNS = pa.schema(
    [
        ("contam_benchmark", pa.string()),
        ("contam_items", pa.list_(pa.string())),
        ("n_contam_ngrams", pa.int32()),
        ("contam_overlap", pa.float32()),
        ("contam_semantic_score", pa.float32()),
        PATH,
        ("contam_spans", pa.list_(SPAN_TYPE)),
        ("n_contam_chars_cut", pa.int32()),
    ]
)


class DecontamParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmarks: tuple[BenchmarkSpec, ...] = Field(
        (), description="Test sets to decontaminate against (none: the stage only adds empty columns)."
    )
    ngram: NgramParams = NgramParams()
    semantic: SemanticParams = SemanticParams()
    # GPT-3 (Brown et al. 2020, App. C) and NeMo Curator's TaskDecontamination excise, not drop.
    action: Literal["flag", "drop", "excise"] = Field(
        "excise", description="What happens to a document with n-gram hits."
    )
    # An embedding neighbour is not a copy: at the calibrated thresholds ~0.5-1% of news pages still
    # reach one on topic alone (bench/decontam.py), so cutting text on that evidence alone is opt-in.
    semantic_action: Literal["flag", "drop", "excise"] = Field(
        "flag", description="What happens to a document hit by the embedding search only (no n-gram hit)."
    )
    # NeMo Curator remove_char_each_side=200, min_document_length=200, max_splits=10 (GPT-3's values).
    margin_chars: int = Field(200, ge=0, description="Characters excised either side of a matched span.")
    min_piece_chars: int = Field(200, ge=0, description="Pieces left shorter than this after excision are discarded.")
    max_pieces: int = Field(10, ge=1, description="A document cut into more pieces than this is rejected.")

    @field_validator("benchmarks")
    @classmethod
    def _unique(cls, benchmarks: tuple[BenchmarkSpec, ...]) -> tuple[BenchmarkSpec, ...]:
        names = [b.name for b in benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique: {names}")
        return benchmarks

    def semantic_thresholds(self, path: str = ENGLISH) -> dict[str, float]:
        """The cosine each benchmark's windows must reach on that path (`threshold_for` of its encoder)."""
        encoder = self.semantic if path == ENGLISH else self.semantic.multilingual
        return {spec.name: encoder.threshold_for(spec.name, spec.layout) for spec in self.benchmarks}

    def index_params(self) -> tuple:
        """What the index depends on: a changed action or threshold reuses it."""
        english = self.semantic.model_dump(include={"enabled", "encoder", "max_tokens"})
        multilingual = self.semantic.multilingual
        if not multilingual.enabled:  # the key of an index built before the multilingual path
            return self.benchmarks, self.ngram, english
        return self.benchmarks, self.ngram, english, multilingual.model_dump(include={"encoder", "max_tokens"})

    def scan_params(self) -> ScanParams:
        window_fields = set(ScanParams.model_fields) - {"benchmarks", "multilingual"}
        return ScanParams(
            benchmarks=self.benchmarks,
            multilingual=self.semantic.multilingual.scan(),
            **self.semantic.model_dump(include=window_fields),
        )


class ScanParams(BaseModel):
    """What the window scan's output depends on, and so its cache key: the items, and how windows are
    cut and embedded; not the threshold or the action, which `run` applies afterwards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmarks: tuple[BenchmarkSpec, ...]
    encoder: str
    window_words: int
    stride_words: int
    max_tokens: int
    batch_size: int
    item_block: int
    prefilter: float | None
    prefilter_min_words: int
    multilingual: MultilingualScan | None = None  # None: one encoder for every document, as before it existed


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def excise(text: str, spans: list[tuple[int, int]], params: DecontamParams) -> tuple[list[str], int]:
    """The pieces left after cutting every span plus the margin, short pieces discarded; chars cut."""
    cuts = merge([(max(0, s - params.margin_chars), min(len(text), e + params.margin_chars)) for s, e in spans])
    bounds, pos = [], 0
    for start, end in cuts:
        bounds.append((pos, start))
        pos = end
    bounds.append((pos, len(text)))
    pieces = [text[s:e].strip() for s, e in bounds]
    pieces = [p for p in pieces if p and len(p) >= params.min_piece_chars]
    return pieces, len(text) - sum(map(len, pieces))


class ItemHit(NamedTuple):
    grams: set[int]  # the item's n-grams the document holds
    spans: list[tuple[int, int]]  # where, in characters
    by_segment: dict[int, set[int]]  # the same n-grams per segment of the item


def ngram_hits(texts: list[str], index: Index) -> list[dict[int, ItemHit]]:
    """Per document: {item number: ItemHit} for documents with hits."""
    tokens = [words(t) for t in texts]
    hits: list[dict[int, ItemHit]] = [{} for _ in texts]
    spans_of: dict[int, list[tuple[int, int]]] = {}
    for m in find_matches(tokens, index.hashes, index.lengths):
        spans = spans_of.setdefault(m.doc, word_spans(texts[m.doc]))
        span = (spans[m.word][0], spans[m.word + m.length - 1][1])
        for item, segment in zip(*(a.tolist() for a in index.entries_of(m.hash))):
            hit = hits[m.doc].setdefault(item, ItemHit(set(), [], {}))
            hit.grams.add(m.hash)
            hit.spans.append(span)
            hit.by_segment.setdefault(segment, set()).add(m.hash)
    return hits


def overlap(hit: ItemHit, index: Index) -> float:
    """The largest share of one segment's n-grams the document holds: 1.0 when any rendering of the
    item (the question, the question with its choices, ...) is there whole."""
    return max(len(grams) / max(int(index.segment_ngrams[seg]), 1) for seg, grams in hit.by_segment.items())


def window_scores(
    texts: list[str],
    index: Index,
    params: ScanParams | SemanticParams,
    device: str | None = None,
    langs: list[str | None] | None = None,
) -> tuple[list[list[dict]], list[str | None]]:
    """Per document, every window's best item of each benchmark and its cosine ({start, end, item,
    score}), and the path that embedded it (`semantic_path`).

    Per benchmark, not overall: thresholds differ by benchmark, so a window's best MMLU item under
    MMLU's threshold must not hide a GSM8K item over GSM8K's.
    """
    multilingual = params.multilingual.scan() if isinstance(params, SemanticParams) else params.multilingual
    paths = [semantic_path(lang, multilingual) for lang in (langs or [None] * len(texts))]
    scores: list[list[dict]] = [[] for _ in texts]
    english = [d for d, path in enumerate(paths) if path == ENGLISH]
    if english:
        bounds = english_windows(texts, english, params, index)
        score_windows(texts, bounds, index, "embedding", params, params.item_block, device, scores)
    foreign = [d for d, path in enumerate(paths) if path == MULTILINGUAL]
    if foreign:
        bounds = [(d, s, e) for d in foreign for s, e in segment_windows(texts[d], multilingual)]
        score_windows(texts, bounds, index, "embedding_multilingual", multilingual, params.item_block, device, scores)
    return scores, paths


def semantic_path(lang: str | None, multilingual: MultilingualScan | None) -> str | None:
    return ENGLISH if multilingual is None else multilingual.embeds(lang)


def english_windows(texts: list[str], docs: list[int], params, index: Index) -> list[tuple[int, int, int]]:
    """(document, start, end) of the English path's word windows, those `params.prefilter` keeps."""
    bounds, window_words = [], []
    for d in docs:
        text = texts[d]
        spans = word_spans(text)
        ranges = window_ranges(len(spans), params.window_words, params.stride_words)
        bounds += [(d, spans[first][0], spans[stop - 1][1]) for first, stop in ranges]
        if params.prefilter is not None:
            tokens = words(text)
            window_words += [tokens[first:stop] for first, stop in ranges]
    if params.prefilter is not None:
        keep = lexical_candidates(window_words, index.lexicon, params.prefilter, params.prefilter_min_words)
        bounds = [bound for bound, kept in zip(bounds, keep) if kept]
    return bounds


def score_windows(
    texts, bounds, index: Index, column: str, encoder, item_block: int, device, scores: list[list[dict]]
) -> None:
    """Embed the windows `bounds` with `encoder`, compare them with the items' `column` embeddings and add
    each window's best item per benchmark to `scores`."""
    from tasks import models

    device = device or models.default_device()
    items = index.embeddings(device, column)
    if items is None:  # an index of no items has no embeddings: nothing to be near
        return
    groups = list(index.benchmark_rows().values())
    for start in range(0, len(bounds), WINDOW_BLOCK):
        block = bounds[start : start + WINDOW_BLOCK]
        queries = embed([texts[d][s:e] for d, s, e in block], encoder, device)
        best, nearest = nearest_items(queries, items, groups, item_block)
        for (d, s, e), window_best, window_items in zip(block, best.tolist(), nearest.tolist()):
            scores[d] += [
                {"start": s, "end": e, "item": item, "score": score} for score, item in zip(window_best, window_items)
            ]


def item_thresholds(index: Index, params: DecontamParams, path: str = ENGLISH) -> np.ndarray:
    """The semantic threshold of each item on that path: its benchmark's under that path's encoder."""
    limits, by_benchmark = np.empty(index.items.num_rows, np.float32), params.semantic_thresholds(path)
    for name, (lo, hi) in index.benchmark_rows().items():
        limits[lo:hi] = by_benchmark[name]
    return limits


def scan(table: pa.Table, params: ScanParams, index_url: str) -> pa.Table:
    """The scan phase: `table` with `contam_windows` and `contam_semantic_path` (text untouched); without a
    `lang` column every document takes the English path."""
    texts = table.column("text").to_pylist() if table.num_rows else []
    langs = table.column("lang").to_pylist() if params.multilingual and "lang" in table.column_names else None
    scores, paths = window_scores(texts, load_index(index_url), params, langs=langs)
    table = table.append_column(WINDOWS, pa.array(scores, WINDOWS.type))
    return table.append_column(PATH, pa.array(paths, PATH.type))


def detect(table: pa.Table, params: DecontamParams, index: Index, device: str | None = None) -> pa.Table:
    """`table` with the contam_* columns (text untouched)."""
    texts = table.column("text").to_pylist() if table.num_rows else []
    grams = ngram_hits(texts, index)
    if WINDOWS.name in table.column_names:  # scanned by the `scan` phase
        scanned, paths = table.column(WINDOWS.name).to_pylist(), table.column(PATH.name).to_pylist()
        table = table.drop_columns([WINDOWS.name, PATH.name])
    elif params.semantic.enabled and index.items.num_rows:
        routed = params.semantic.multilingual.enabled and "lang" in table.column_names
        langs = table.column("lang").to_pylist() if routed else None
        scanned, paths = window_scores(texts, index, params.semantic, device, langs)
    else:  # no search: contam_semantic_score and contam_semantic_path stay null
        scanned, paths = None, [None] * len(texts)
    limits = {path: item_thresholds(index, params, path) for path in (ENGLISH, MULTILINGUAL)}
    near = (
        [[w for w in doc if w["score"] >= limits[path][w["item"]]] for doc, path in zip(scanned, paths)]
        if scanned is not None
        else [[] for _ in texts]
    )
    benchmark, item_id = index.items.column("benchmark").to_pylist(), index.items.column("item_id").to_pylist()
    rows = {name: [] for name in COLUMNS.names}
    for d, text in enumerate(texts):
        found = grams[d]
        matched = set().union(*(hit.grams for hit in found.values())) if found else set()
        if len(matched) < params.ngram.min_matches:
            found = {}
        spans = [  # the score of an n-gram span is its item's overlap
            (item, "ngram", s, e, overlap(hit, index)) for item, hit in found.items() for s, e in merge(hit.spans)
        ]
        method = "crosslingual" if paths[d] == MULTILINGUAL else "semantic"
        spans += [(w["item"], method, w["start"], w["end"], w["score"]) for w in near[d]]
        if found:
            strongest = max(found, key=lambda item: (len(found[item].grams), -item))
        else:
            strongest = max(near[d], key=lambda w: w["score"])["item"] if near[d] else None
        rows["contam_benchmark"].append(None if strongest is None else benchmark[strongest])
        rows["contam_items"].append(sorted({item_id[h[0]] for h in spans}))
        rows["n_contam_ngrams"].append(len(matched))
        rows["contam_overlap"].append(max((overlap(hit, index) for hit in found.values()), default=0.0))
        rows["contam_semantic_score"].append(max((w["score"] for w in scanned[d]), default=None) if scanned else None)
        rows[PATH.name].append(paths[d])
        rows["contam_spans"].append(
            [
                {
                    "benchmark": benchmark[i],
                    "item_id": item_id[i],
                    "method": m,
                    "start": s,
                    "end": e,
                    "score": sc,
                    "text": text[s:e],
                }
                for i, m, s, e, sc in spans
            ]
        )
        rows["n_contam_chars_cut"].append(0)
    for field in COLUMNS:
        table = table.append_column(field, pa.array(rows[field.name], field.type))
    return table


def run(table: pa.Table, params: DecontamParams, index_url: str) -> StageOutput:
    """The stage: detect against the index saved at `index_url`, then flag, drop or excise.

    A document with an n-gram hit takes `action`, one hit by embeddings only (`semantic` or
    `crosslingual` spans) `semantic_action`; excision cuts the spans of the evidence that decided it. A
    rejected document keeps its original text, so `winnow inspect` shows what matched.
    """
    detected = detect(table, params, load_index(index_url))
    texts, cut = detected.column("text").to_pylist(), detected.column("n_contam_chars_cut").to_pylist()
    reasons: list[str | None] = []
    for d, doc_spans in enumerate(detected.column("contam_spans").to_pylist()):
        by_ngram = any(s["method"] == "ngram" for s in doc_spans)
        action = params.action if by_ngram else params.semantic_action
        reason = None
        if doc_spans and action != "flag":
            reason = "decontam:ngram_overlap" if by_ngram else "decontam:semantic_similarity"
        if reason and action == "excise":
            deciding = [(s["start"], s["end"]) for s in doc_spans if (s["method"] == "ngram") == by_ngram]
            pieces, cut[d] = excise(texts[d], deciding, params)
            reason = (
                "decontam:n_pieces"
                if len(pieces) > params.max_pieces
                else (None if pieces else "decontam:remaining_chars")
            )
            texts[d] = "\n".join(pieces) if reason is None else texts[d]
        reasons.append(reason)
    if "excise" in (params.action, params.semantic_action):
        for name, values, type_ in (("text", texts, pa.string()), ("n_contam_chars_cut", cut, pa.int32())):
            i = detected.column_names.index(name)
            detected = detected.set_column(i, detected.schema.field(i), pa.array(values, type_))
    return split_by_reason(detected, pa.array(reasons, pa.string()))
