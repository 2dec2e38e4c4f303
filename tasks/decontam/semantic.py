"""Paraphrase-aware matching: sentence embeddings of document windows against benchmark items.

Rephrased test items slip past n-grams (Yang et al. 2023, "Rethinking Benchmark and Contamination
for Language Models with Rephrased Samples"), whose llm-decontaminator compares every training text
with every test item. Here each document is cut into overlapping word windows (an item is a
paragraph inside a longer page), the windows are embedded with MiniLM and compared with the items'
embeddings by blocks of matrix products, keeping each window's best item *per benchmark*: memory is
bounded by `window_block x item_block`, never corpus x benchmark. Runs on CUDA when present.

One cosine does not mean the same thing for every benchmark. A GSM8K word problem is far from
ordinary prose, so a news page rarely comes within 0.60 of one; an MMLU question about trade
deficits or a TruthfulQA question about health sits among what news and encyclopedia pages talk
about, and pages on the same *topic* reach 0.60-0.86 without copying anything (bench/decontam.py:
at one threshold of 0.60, 12.9% of 990 dev news articles were flagged, every one against MMLU or
TruthfulQA). So each benchmark has its own threshold, calibrated on topical negatives: the cosine
that only a small share of real news and web pages reach against that benchmark's items. Checks of
the candidate match that were measured and did not separate topic from paraphrase on the same data
(margin of the best item over the k-th best, CSLS-style hubness correction, IDF-weighted shared
words, token-level BERTScore recall of the item) are listed in bench/decontam.py's docstring.

Translated items (Yao et al. 2024, "Data Contamination Can Cross Language Barriers") pass every n-gram
and English-embedding check. With `multilingual` on, a document whose `lang` is not English is embedded
by a multilingual encoder instead (the packaged USE v3 by default), whose items' embeddings sit in the
same space as their translations, and is held to that encoder's own per-benchmark thresholds. Its
windows follow the page's lines: a line of at least `line_words` words is a segment of its own, a run
of shorter lines (menus, captions) another, and each segment is cut into overlapping windows. An item
copied into a page is a block of its own, and USE averages over its input, so a window that mixes the
item with the next paragraph lands far from it (windows across lines: docs/benchmarks.md). Words are
word and character tokens (`tasks.text`): a character of a script written without spaces counts half
a word, so a window holds about as much of a Chinese or Japanese page as of a German one. A document
in a language the encoder was not trained on is not embedded at all (its `contam_semantic_path` stays
null and the report counts it): such embeddings are not comparable across languages, and embedding
them would cost the full price for no evidence.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from scipy import sparse

from tasks import models
from tasks.text import KIND_TOKEN_RE

# Per layout, for the packaged MiniLM and the standard test sets: the cosine that at most 0.125% of the
# dev topical negatives reach against that benchmark (990 news/encyclopedia articles and 1,000 web pages
# of shared/data; printed last by `bench/decontam.py`: MMLU 0.7906, TruthfulQA 0.6891). GSM8K and
# HumanEval items are far from such text: their calibrated cosine is below the global 0.60, which stays
# their threshold.
CALIBRATED_THRESHOLDS = {"mmlu": 0.79, "truthfulqa": 0.69}
# The same for the packaged multilingual USE: the cosine that at most 0.125% of 1,177 dev pages in its
# languages reach against that benchmark, never below 0.50 (`tasks.decontam.calibrate`; printed last by
# bench/decontam_crosslingual.py).
MULTILINGUAL_CALIBRATED_THRESHOLDS = {"gsm8k": 0.58, "humaneval": 0.50, "mmlu": 0.67, "truthfulqa": 0.59}
CHARACTER_WEIGHT = 0.5  # words per character token: MGSM's zh/ja problems have 1.5/2.2 per English word
ENGLISH, MULTILINGUAL = models.ENGLISH, models.MULTILINGUAL  # the values of `contam_semantic_path`
# A word in more than 5% of the items (`the`, `how`, `dollars` in GSM8K) does not point to any one of them.
COMMON_ITEM_SHARE = 0.05
PREFILTER_BLOCK = 1024  # windows per sparse product: bounds memory, not output


def resolve_auto(enabled: bool | str, info: ValidationInfo) -> bool:
    """`enabled: auto` of an encoder, resolved when the config is validated (so a run's saved config says
    what it did): on when the encoder loads without the network."""
    if enabled != "auto":
        return enabled
    return "encoder" in info.data and models.encoder_available(info.data["encoder"])


def check_cosines(thresholds: dict[str, float], knob: str) -> None:
    if bad := {name: t for name, t in thresholds.items() if not -1.0 <= t <= 1.0}:
        raise ValueError(f"{knob} must be cosines in [-1, 1]: {bad}")


class MultilingualScan(BaseModel):
    """What the multilingual path's window scan depends on (its cache key): not its thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: str = Field(
        models.PACKAGED_USE,
        description="Multilingual encoder: the packaged USE v3, or a sentence-transformers model (local dir or "
        "hub id, e.g. sentence-transformers/LaBSE).",
    )
    english: tuple[str, ...] = Field(
        ("en",),
        description="`lang` labels embedded by the English encoder (`semantic.encoder`), as without this path; "
        "a document without a label goes there too.",
    )
    languages: tuple[str, ...] | None = Field(
        None,
        description="`lang` labels this encoder embeds; null: the packaged USE's 16 training languages "
        "(Yang et al. 2019), or every language for another encoder. Documents in other languages get n-grams only.",
    )
    # The English path's window, in words; a character token weighs CHARACTER_WEIGHT.
    window_words: int = Field(64, ge=8, description="Words per window (a character token counts half a word).")
    stride_words: int = Field(32, ge=1, description="Words between window starts.")
    # A sentence and more: a translated GSM8K problem has ~40 (MGSM), a navigation line a few.
    line_words: int = Field(
        16, ge=1, description="A line of at least this many words is windowed on its own; shorter lines together."
    )
    max_tokens: int = Field(256, ge=8, description="Encoder truncation in tokens.")
    batch_size: int = Field(128, ge=1, description="Windows per encoder call; bounds memory, not output.")

    @model_validator(mode="after")
    def _stride_within_window(self) -> MultilingualScan:
        if self.stride_words > self.window_words:
            raise ValueError("decontam.semantic.multilingual.stride_words must not exceed window_words")
        return self

    def embeds(self, lang: str | None) -> str | None:
        """Which path embeds a document of language `lang`: ENGLISH, MULTILINGUAL, or None (neither)."""
        return models.embedding_space(lang, self.english, self.encoder, self.languages)


class MultilingualParams(MultilingualScan):
    # "auto" is resolved at validation, as `semantic.enabled` is.
    enabled: bool | Literal["auto"] = Field(
        "auto",
        validate_default=True,
        description="Embed non-English documents with the multilingual encoder (translated benchmark items); "
        "auto: on when it loads without the network. Off: every document takes the English encoder.",
    )
    threshold: float = Field(
        0.60,
        ge=-1.0,
        le=1.0,
        description="Cosine at or above which a window is contaminated, for benchmarks with no calibrated or "
        "configured threshold of their own under this encoder.",
    )
    thresholds: dict[str, float] = Field({}, description="Cosine threshold per benchmark name under this encoder.")

    @field_validator("enabled")
    @classmethod
    def _resolve_auto(cls, enabled: bool | str, info: ValidationInfo) -> bool:
        return resolve_auto(enabled, info)

    @model_validator(mode="after")
    def _cosines(self) -> MultilingualParams:
        check_cosines(self.thresholds, "decontam.semantic.multilingual.thresholds")
        return self

    def threshold_for(self, name: str, layout: str) -> float:
        """As `SemanticParams.threshold_for`, with this encoder's calibrated cosines."""
        if name in self.thresholds:
            return self.thresholds[name]
        if self.encoder == models.PACKAGED_USE and layout in MULTILINGUAL_CALIBRATED_THRESHOLDS:
            return MULTILINGUAL_CALIBRATED_THRESHOLDS[layout]
        return self.threshold

    def scan(self) -> MultilingualScan | None:
        return (
            MultilingualScan(**self.model_dump(include=set(MultilingualScan.model_fields))) if self.enabled else None
        )


class SemanticParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: str = Field(models.PACKAGED_MINILM, description="sentence-transformers encoder (local dir or hub id).")
    # "auto" is resolved when the config is validated, so a run's saved config says what it did. On CPU
    # the encoder dominates the stage (bench/decontam.py, README): false keeps n-grams only.
    enabled: bool | Literal["auto"] = Field(
        "auto",
        validate_default=True,
        description="Embed document windows and flag those near a benchmark item (paraphrases); auto: on "
        "when the encoder loads without the network.",
    )
    # Sized to a benchmark item: a GSM8K question is ~46 words, a HumanEval prompt ~70 (bench/decontam.py).
    window_words: int = Field(64, ge=8, description="Words per document window.")
    stride_words: int = Field(
        32,
        ge=1,
        description="Words between window starts (half a window: every item of up to "
        "window/2 words lies whole inside one window).",
    )
    # Set on 820 web pages at 04da688 (0.5% of them reached 0.602 against all four benchmarks); the
    # per-benchmark calibration (bench/decontam.py) puts GSM8K and HumanEval under it, so it is theirs.
    threshold: float = Field(
        0.60,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity at or above which a window is "
        "contaminated, for benchmarks with no calibrated or configured threshold of their own.",
    )
    thresholds: dict[str, float] = Field(
        {},
        description="Cosine threshold per benchmark name, e.g. {mmlu: 0.8}; overrides the calibrated default of "
        "the benchmark's layout (see `threshold_for`).",
    )
    # all-MiniLM-L6-v2 is trained with max_seq_length 256 (its sentence-transformers config).
    # Off by default: on GPU workers embedding every window is cheap and loses nothing. On CPU workers
    # 0.4 with 3 words embeds a third of news windows and a seventh of web windows (bench/decontam.py).
    prefilter: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Embed only windows that hold at least this "
        "IDF-weighted share of some item's words (a lexical prefilter); null: every window.",
    )
    prefilter_min_words: int = Field(
        3, ge=1, description="Words of that item a window must also hold to pass the prefilter."
    )
    max_tokens: int = Field(256, ge=8, description="Encoder truncation in tokens.")
    batch_size: int = Field(128, ge=1, description="Windows per encoder call; bounds memory, not output.")
    item_block: int = Field(8192, ge=1, description="Items per similarity block; bounds memory, not output.")
    multilingual: MultilingualParams = MultilingualParams()

    @field_validator("enabled")
    @classmethod
    def _resolve_auto(cls, enabled: bool | str, info: ValidationInfo) -> bool:
        return resolve_auto(enabled, info)

    @model_validator(mode="after")
    def _stride_within_window(self) -> SemanticParams:
        if self.stride_words > self.window_words:
            raise ValueError("decontam.semantic.stride_words must not exceed window_words (text would be skipped)")
        check_cosines(self.thresholds, "decontam.semantic.thresholds")
        return self

    def threshold_for(self, name: str, layout: str) -> float:
        """The cosine a window must reach against benchmark `name`: the configured one, else its layout's
        calibrated one (only valid for the encoder it was calibrated with), else `threshold`."""
        if name in self.thresholds:
            return self.thresholds[name]
        if self.encoder == models.PACKAGED_MINILM and layout in CALIBRATED_THRESHOLDS:
            return CALIBRATED_THRESHOLDS[layout]
        return self.threshold


def window_ranges(n_words: int, window_words: int, stride_words: int) -> list[tuple[int, int]]:
    """Word ranges [first, stop) of overlapping windows; the last one ends at the last word."""
    if n_words == 0:
        return []
    starts = list(range(0, max(n_words - window_words, 0) + 1, stride_words))
    if starts[-1] + window_words < n_words:
        starts.append(n_words - window_words)
    return [(s, min(s + window_words, n_words)) for s in starts]


def weighted_windows(text: str, window_words: int, stride_words: int) -> list[tuple[int, int]]:
    """Character bounds of overlapping windows over `text`'s word and character tokens, a character token
    weighing CHARACTER_WEIGHT words: each window holds at most `window_words`, the next starts
    `stride_words` later, and the last ends at the last token (as `window_ranges`)."""
    spans, weights = [], []
    for match in KIND_TOKEN_RE.finditer(text):
        spans.append(match.span())
        weights.append(CHARACTER_WEIGHT if match.group("character") else 1.0)
    if not spans:
        return []
    before = np.concatenate([[0.0], np.cumsum(weights)])  # words before each token, and in all
    total, n = before[-1], len(spans)

    def stop(first: int) -> int:
        return max(int(np.searchsorted(before, before[first] + window_words + 1e-9, "right")) - 1, first + 1)

    ranges, first = [], 0
    while True:
        last = stop(first)
        if last >= n:
            if ranges:  # the last window ends at the last token, as full as the others
                first = min(first, int(np.searchsorted(before, total - window_words - 1e-9, "left")))
                first = max(first, ranges[-1][0] + 1)
            ranges.append((first, n))
            break
        ranges.append((first, last))
        first = max(int(np.searchsorted(before, before[first] + stride_words - 1e-9, "left")), first + 1)
    return [(spans[a][0], spans[b - 1][1]) for a, b in ranges]


def words_in(text: str) -> float:
    """Words of `text` as the windows count them: a character token is CHARACTER_WEIGHT of a word."""
    return sum(CHARACTER_WEIGHT if m.group("character") else 1.0 for m in KIND_TOKEN_RE.finditer(text))


def line_segments(text: str, line_words: int) -> list[tuple[int, int]]:
    """Character bounds of `text`'s segments: each line of at least `line_words` words, and each run of
    shorter non-blank lines between them."""
    segments: list[tuple[int, int]] = []
    run: tuple[int, int] | None = None
    start = 0
    for line in text.split("\n"):
        end = start + len(line)
        if words_in(line) >= line_words:
            segments += [run, (start, end)] if run else [(start, end)]
            run = None
        elif line.strip():
            run = (run[0], end) if run else (start, end)
        start = end + 1
    return segments + [run] if run else segments


def segment_windows(text: str, params: MultilingualScan) -> list[tuple[int, int]]:
    """Character bounds of the multilingual path's windows: `weighted_windows` within each line segment."""
    return [
        (lo + s, lo + e)
        for lo, hi in line_segments(text, params.line_words)
        for s, e in weighted_windows(text[lo:hi], params.window_words, params.stride_words)
    ]


def windows(spans: list[tuple[int, int]], window_words: int, stride_words: int) -> list[tuple[int, int]]:
    """Character bounds of the windows of `window_ranges` over a text's word spans."""
    return [
        (spans[first][0], spans[stop - 1][1]) for first, stop in window_ranges(len(spans), window_words, stride_words)
    ]


class Lexicon(NamedTuple):
    """The benchmark items' words, weighted by rarity among the items, for the lexical prefilter."""

    vocab: dict[str, int]  # word -> row
    weights: sparse.csr_matrix  # words x items: the word's IDF where the item holds it
    holds: sparse.csr_matrix  # words x items: 1 where the item holds it
    mass: np.ndarray  # per item: the IDF of all its words


def item_lexicon(item_words: list[list[str]]) -> Lexicon:
    """IDF over the items (Sparck Jones 1972). Words in more than `COMMON_ITEM_SHARE` of the items (and
    words in every item, whose IDF is 0) are left out on both sides of the share: they say nothing
    about which item a window is near, and keeping them would make the window x item products dense."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for item, tokens in enumerate(item_words):
        for word in set(tokens):
            rows.append(vocab.setdefault(word, len(vocab)))
            cols.append(item)
    n_items = max(len(item_words), 1)
    holds = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(vocab), len(item_words)))
    df = np.asarray(holds.sum(axis=1)).ravel()
    common = df > max(1.0, COMMON_ITEM_SHARE * n_items)  # a word of one item is never common
    idf = np.where(common, 0.0, np.log(n_items / np.maximum(df, 1))).astype(np.float32)
    holds = sparse.diags((idf > 0).astype(np.float32)) @ holds
    holds.eliminate_zeros()
    weights = (sparse.diags(idf) @ holds).tocsr()
    return Lexicon(vocab, weights, holds.tocsr(), np.asarray(weights.sum(axis=0)).ravel())


def lexical_candidates(window_words: list[list[str]], lexicon: Lexicon, share: float, min_words: int) -> np.ndarray:
    """Which windows hold, for some item, at least `share` of its words' IDF and `min_words` of its
    words: the only ones worth embedding (bool per window)."""
    keep = np.zeros(len(window_words), bool)
    for start in range(0, len(window_words), PREFILTER_BLOCK):
        block = window_words[start : start + PREFILTER_BLOCK]
        rows, cols = [], []
        for row, tokens in enumerate(block):
            ids = {lexicon.vocab[w] for w in tokens if w in lexicon.vocab}
            rows += [row] * len(ids)
            cols += ids
        present = sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(block), len(lexicon.vocab))
        )
        mass, shared = (present @ lexicon.weights).tocsr(), (present @ lexicon.holds).tocsr()
        mass.sort_indices()
        shared.sort_indices()  # the same (window, item) pattern as `mass`: both sum over the same words
        enough = (mass.data >= share * lexicon.mass[mass.indices]) & (shared.data >= min_words)
        row = np.repeat(np.arange(len(block)), np.diff(mass.indptr))
        keep[start + np.unique(row[enough])] = True
    return keep


def embed(texts: list[str], params: SemanticParams | MultilingualScan, device: str | None = None):
    """Normalized float32 embeddings with `params.encoder` (torch, on `device`: CUDA when present by default)."""
    encoder = models.load_encoder(params.encoder, device or models.default_device())
    return models.encode(encoder, texts, params.max_tokens, params.batch_size)


def nearest_items(queries, items, groups: list[tuple[int, int]], item_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Best cosine and the index of the best item of each group of items (a benchmark: rows lo..hi) for
    each query, both (queries, groups); embeddings normalized, on one device.

    Items are visited in blocks, so the similarity matrix held at once is queries x item_block.
    """
    import torch

    best = torch.full((len(queries), len(groups)), -2.0, device=queries.device)
    arg = torch.zeros((len(queries), len(groups)), dtype=torch.long, device=queries.device)
    items = items.to(queries.device)
    for g, (lo, hi) in enumerate(groups):
        for start in range(lo, hi, item_block):
            scores, idx = (queries @ items[start : min(start + item_block, hi)].T).max(dim=1)
            better = scores > best[:, g]
            best[:, g] = torch.where(better, scores, best[:, g])
            arg[:, g] = torch.where(better, idx + start, arg[:, g])
    return best.cpu().numpy().astype(np.float32), arg.cpu().numpy()
