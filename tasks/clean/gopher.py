"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis
& Insights from Training Gopher", App. A, Table A1; https://arxiv.org/abs/2112.11446).

Thresholds are datatrove's published defaults (`pipeline/filters/gopher_quality_filter.py`,
`gopher_repetition_filter.py`), which follow the paper. Semantics follow datatrove where the paper is
silent: word counts and lengths use non-symbol tokens, token ratios (symbols, alphabetic words) divide
by all tokens, punctuation included; paragraphs split on blank lines; a repeated element counts from
its second occurrence; duplicate n-grams are counted left to right, skipping past a repeat so
overlapping repeats are not counted twice.

Language scoping: word-based rules (word count, mean word length, symbol/word ratio, alphabetic word
ratio, n-gram repetition) always record their value but keep every document in
`CleanParams.unsegmented_languages`; the stop-word rule applies only to `stop_word_languages`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from functools import lru_cache, partial
from itertools import accumulate
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from tasks.clean.doc import HAS_ALPHA_RE, Doc, Verdict, duplicates, ratio

if TYPE_CHECKING:
    from tasks.clean import CleanParams

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")  # Gopher App. A
BULLETS = ("•", "‣", "⁃", "⁌", "⁍", "∙", "◦", "-", "*")  # datatrove checks "•" and "-"; we add
# the other Unicode bullet characters and Markdown's "*"


class GopherQualityParams(BaseModel):
    """Gopher's document quality heuristics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the Gopher quality rules (their columns stay, null, when off).")
    # datatrove GopherQualityFilter defaults (Rae et al. 2021, Gopher, App. A)
    min_doc_words: int = Field(
        50, ge=0, description="Drop docs with fewer non-symbol words. Keeps unsegmented languages."
    )
    max_doc_words: int = Field(
        100_000, ge=0, description="Drop docs with more non-symbol words. Keeps unsegmented languages."
    )
    min_mean_word_length: float = Field(
        3.0, ge=0, description="Drop docs whose mean word length (chars) is below. Keeps unsegmented languages."
    )
    max_mean_word_length: float = Field(
        10.0, ge=0, description="Drop docs whose mean word length (chars) is above. Keeps unsegmented languages."
    )
    max_symbol_word_ratio: float = Field(
        0.1,
        ge=0,
        description='Drop docs where "#" or ellipses ("...", "…") per token exceed this. '
        "Keeps unsegmented languages.",
    )
    max_bullet_lines_ratio: float = Field(
        0.9, ge=0, le=1, description="Drop docs where more lines than this start with a bullet. All languages."
    )
    max_ellipsis_lines_ratio: float = Field(
        0.3, ge=0, le=1, description="Drop docs where more lines than this end with an ellipsis. All languages."
    )
    min_alpha_words_ratio: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Drop docs where fewer tokens than this contain a letter. Keeps unsegmented languages.",
    )
    min_stop_words: int = Field(
        2, ge=0, description="Drop docs with fewer stop-word tokens. Applies only to stop_word_languages."
    )
    stop_words: tuple[str, ...] = Field(
        GOPHER_STOP_WORDS, description="Stop words counted, case-sensitively as datatrove does (Gopher App. A)."
    )
    stop_word_languages: tuple[str, ...] = Field(
        ("en",), description="Languages whose docs the stop-word rule judges (the list is English)."
    )
    bullet_prefixes: tuple[str, ...] = Field(
        BULLETS, description="A line starting (after indentation) with one of these is a bullet line."
    )


class GopherRepetitionParams(BaseModel):
    """Gopher's repetition heuristics; every threshold is a fraction above which the doc is dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the Gopher repetition rules (their columns stay, null, when off).")
    # datatrove GopherRepetitionFilter defaults (Rae et al. 2021, Gopher, Table A1)
    max_dup_line_frac: float = Field(0.3, ge=0, description="Repeated lines / lines. All languages.")
    max_dup_para_frac: float = Field(0.3, ge=0, description="Repeated paragraphs / paragraphs. All languages.")
    max_dup_line_char_frac: float = Field(0.2, ge=0, description="Chars in repeated lines / chars. All languages.")
    max_dup_para_char_frac: float = Field(
        0.2, ge=0, description="Chars in repeated paragraphs / chars. All languages."
    )
    max_top_2gram_char_frac: float = Field(
        0.2, ge=0, description="Chars of the most frequent 2-gram x its count / chars. Keeps unsegmented languages."
    )
    max_top_3gram_char_frac: float = Field(0.18, ge=0, description="As top 2-gram, for 3-grams.")
    max_top_4gram_char_frac: float = Field(0.16, ge=0, description="As top 2-gram, for 4-grams.")
    max_dup_5gram_char_frac: float = Field(
        0.15, ge=0, description="Chars in repeated 5-grams / chars. Keeps unsegmented languages."
    )
    max_dup_6gram_char_frac: float = Field(0.14, ge=0, description="As duplicate 5-grams, for 6-grams.")
    max_dup_7gram_char_frac: float = Field(0.13, ge=0, description="As duplicate 5-grams, for 7-grams.")
    max_dup_8gram_char_frac: float = Field(0.12, ge=0, description="As duplicate 5-grams, for 8-grams.")
    max_dup_9gram_char_frac: float = Field(0.11, ge=0, description="As duplicate 5-grams, for 9-grams.")
    max_dup_10gram_char_frac: float = Field(0.10, ge=0, description="As duplicate 5-grams, for 10-grams.")


@lru_cache(maxsize=64)
def _frozen(items: tuple[str, ...]) -> frozenset[str]:
    return frozenset(items)


# --- Gopher quality -------------------------------------------------------------------------------


def word_count(doc: Doc, p: CleanParams) -> Verdict:
    q = p.gopher_quality
    value = len(doc.words)
    return Verdict(doc.is_unsegmented(p) or q.min_doc_words <= value <= q.max_doc_words, float(value))


def mean_word_length(doc: Doc, p: CleanParams) -> Verdict:
    q = p.gopher_quality
    value = ratio(sum(map(len, doc.words)), len(doc.words))
    keep = q.min_mean_word_length <= value <= q.max_mean_word_length
    return Verdict(doc.is_unsegmented(p) or keep, value)


def symbol_word_ratio(doc: Doc, p: CleanParams) -> Verdict:
    # datatrove checks "#" and ellipses separately against one threshold: the larger one decides
    n_tokens = len(doc.tokens)
    hashes = ratio(doc.text.count("#"), n_tokens)
    ellipses = ratio(doc.text.count("...") + doc.text.count("…"), n_tokens)
    value = max(hashes, ellipses)
    return Verdict(doc.is_unsegmented(p) or value <= p.gopher_quality.max_symbol_word_ratio, value)


def bullet_lines_ratio(doc: Doc, p: CleanParams) -> Verdict:
    bullets = p.gopher_quality.bullet_prefixes
    value = ratio(sum(1 for line in doc.lines if line.lstrip().startswith(bullets)), len(doc.lines))
    return Verdict(value <= p.gopher_quality.max_bullet_lines_ratio, value)


def ellipsis_lines_ratio(doc: Doc, p: CleanParams) -> Verdict:
    ends = sum(1 for line in doc.lines if line.rstrip().endswith(("...", "…")))
    value = ratio(ends, len(doc.lines))
    return Verdict(value <= p.gopher_quality.max_ellipsis_lines_ratio, value)


def alpha_words_ratio(doc: Doc, p: CleanParams) -> Verdict:
    with_letter = sum(map(bool, map(HAS_ALPHA_RE.search, doc.words)))  # punctuation tokens have none
    value = ratio(with_letter, len(doc.tokens))
    return Verdict(doc.is_unsegmented(p) or value >= p.gopher_quality.min_alpha_words_ratio, value)


def stop_word_count(doc: Doc, p: CleanParams) -> Verdict:
    q = p.gopher_quality
    value = sum(map(_frozen(q.stop_words).__contains__, doc.words))
    applies = doc.lang_base in q.stop_word_languages
    return Verdict(not applies or value >= q.min_stop_words, float(value))


# --- Gopher repetition ----------------------------------------------------------------------------


def dup_line_frac(doc: Doc, p: CleanParams) -> Verdict:
    n_dup, _ = duplicates(doc.nonempty_lines)
    value = ratio(n_dup, len(doc.nonempty_lines))
    return Verdict(value <= p.gopher_repetition.max_dup_line_frac, value)


def dup_para_frac(doc: Doc, p: CleanParams) -> Verdict:
    n_dup, _ = duplicates(doc.paragraphs)
    value = ratio(n_dup, len(doc.paragraphs))
    return Verdict(value <= p.gopher_repetition.max_dup_para_frac, value)


def dup_line_char_frac(doc: Doc, p: CleanParams) -> Verdict:
    _, n_chars = duplicates(doc.nonempty_lines)
    value = ratio(n_chars, len(doc.text))
    return Verdict(value <= p.gopher_repetition.max_dup_line_char_frac, value)


def dup_para_char_frac(doc: Doc, p: CleanParams) -> Verdict:
    _, n_chars = duplicates(doc.paragraphs)
    value = ratio(n_chars, len(doc.text))
    return Verdict(value <= p.gopher_repetition.max_dup_para_char_frac, value)


def _ngrams(tokens: list[str], n: int) -> zip:
    """Token n-grams as tuples, built in C (zip over shifted views; tuples hash the cached str hashes)."""
    return zip(*(tokens[i:] for i in range(n)))


def top_ngram_char_frac(doc: Doc, p: CleanParams, *, n: int) -> Verdict:
    """Chars covered by the most frequent n-gram (its length with spaces x its count) / doc chars.

    As datatrove: the most frequent n-gram is the first of those with the highest count, even when
    that count is 1.
    """
    counts = Counter(_ngrams(doc.tokens, n))
    if counts:
        gram, count = counts.most_common(1)[0]
        value = ratio((sum(map(len, gram)) + n - 1) * count, len(doc.text))
    else:
        value = 0.0
    limit = getattr(p.gopher_repetition, f"max_top_{n}gram_char_frac")
    return Verdict(doc.is_unsegmented(p) or value <= limit, value)


def dup_ngram_char_frac(doc: Doc, p: CleanParams, *, n: int) -> Verdict:
    """Chars of tokens inside repeated n-grams / doc chars, each token counted at most once.

    Scanning left to right, an n-gram seen before adds its tokens' chars (without spaces, as
    datatrove) and the scan jumps past it; otherwise it is remembered and the scan moves one token.
    Only starts whose 5-gram occurs twice can start a repeated n-gram (n >= 5), so the scan visits
    just those (`Doc.repeat_starts`): the result is the full scan's.
    """
    tokens = doc.tokens
    starts = doc.repeat_starts[: bisect_right(doc.repeat_starts, len(tokens) - n)]  # sorted positions
    grams = [tuple(tokens[i : i + n]) for i in starts]
    counts = Counter(grams)
    repeated = 0
    if len(counts) < len(grams):
        ends = [0, *accumulate(map(len, tokens))]  # ends[i] = chars of tokens[:i]
        seen: set[tuple[str, ...]] = set()
        resume = 0  # the full scan's position: starts before it were jumped over
        for start, gram in zip(starts, grams):
            if start < resume or counts[gram] == 1:
                continue
            if gram in seen:
                repeated += ends[start + n] - ends[start]
                resume = start + n
            else:
                seen.add(gram)
    value = ratio(repeated, len(doc.text))
    limit = getattr(p.gopher_repetition, f"max_dup_{n}gram_char_frac")
    return Verdict(doc.is_unsegmented(p) or value <= limit, value)


TOP_NGRAM_RULES = {f"top_{n}gram_char_frac": partial(top_ngram_char_frac, n=n) for n in (2, 3, 4)}
DUP_NGRAM_RULES = {f"dup_{n}gram_char_frac": partial(dup_ngram_char_frac, n=n) for n in range(5, 11)}
