"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis
& Insights from Training Gopher", App. A, Table A1; https://arxiv.org/abs/2112.11446).

Thresholds are datatrove's published defaults (`pipeline/filters/gopher_quality_filter.py`,
`gopher_repetition_filter.py`), which follow the paper. Semantics follow datatrove where the paper is
silent: word counts and lengths use non-symbol tokens, token ratios (symbols, alphabetic words) divide
by all tokens, punctuation included; paragraphs split on blank lines; a repeated element counts from
its second occurrence; duplicate n-grams are counted left to right, skipping past a repeat so
overlapping repeats are not counted twice.

Language scoping: in `CleanParams.unsegmented_languages` words are characters (tasks/clean/doc.py), so
the counts and ratios over them (word count, symbol/word ratio, alphabetic word ratio) judge those
languages too, while the rules that need real words (mean word length; n-gram repetition, whose 5
characters are 2 to 3 words, and which dropped 10% of good Thai prose: bench/clean_unsegmented.py)
are neither measured (null) nor judged there. Repeated lines and paragraphs are judged in every
language. The stop-word rule judges every language that has a stop-word list: Gopher's eight words
for English, the stopwords-iso list for the 57 other languages it covers (`stop_words_of`); in an
unsegmented language it counts the list's words where they occur in the text. A language without a
list, or unknown, is not judged by it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from functools import lru_cache, partial
from itertools import accumulate
from typing import TYPE_CHECKING

import stopwordsiso
from pydantic import BaseModel, ConfigDict, Field

from tasks.clean.doc import HAS_ALPHA_RE, Doc, duplicates, ratio
from tasks.clean.rule import Rule, at_least, at_most, between

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
        50, ge=0, description="Drop docs with fewer non-symbol words (characters in unsegmented languages)."
    )
    max_doc_words: int = Field(
        100_000, ge=0, description="Drop docs with more non-symbol words (characters in unsegmented languages)."
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
        description='Drop docs where "#" or ellipses ("...", "…") per token exceed this. All languages.',
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
        description="Drop docs where fewer tokens than this contain a letter. All languages.",
    )
    min_stop_words: int = Field(
        2, ge=0, description="Drop docs with fewer stop-word tokens. Languages with a stop-word list."
    )
    stop_words: tuple[str, ...] | None = Field(
        None,
        description="Stop words counted, case-sensitively as datatrove does. None: the language's own list "
        "(Gopher's eight for English, stopwords-iso for 57 other languages, none elsewhere); [] turns the rule off.",
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


# lid.176 label -> the stopwords-iso list of that language, where the codes disagree: stopwords-iso's
# "ku" list is Sorani, in Arabic script (lid.176's "ckb"); lid.176's "ku" is Kurmanji, in Latin
# script, which has no list (its prose had 0 stop words: cc_text_docs.jsonl, 2 of 2 documents)
STOPWORDS_ISO_CODES: dict[str, str | None] = {"ckb": "ku", "ku": None}


@lru_cache(maxsize=256)
def stop_words_of(lang: str | None, configured: tuple[str, ...] | None) -> frozenset[str]:
    """The words the stop-word rule counts in `lang`: the configured list, else the language's own.

    English keeps Gopher's eight (App. A), which datatrove's filter uses; other languages take the
    stopwords-iso list (github.com/stopwords-iso, MIT; the `stopwordsiso` package), which is longer
    (e.g. 620 German words against 8), so ">= 2" is easier to meet there: `winnow calibrate` sets
    per-language minimums from the data.
    """
    if configured is not None:
        return frozenset(configured)
    if lang == "en":
        return frozenset(GOPHER_STOP_WORDS)
    source = STOPWORDS_ISO_CODES.get(lang, lang)
    return frozenset(stopwordsiso.stopwords(source)) if source else frozenset()


# --- Gopher quality -------------------------------------------------------------------------------


def word_count(doc: Doc, p: CleanParams) -> float:
    return float(len(doc.words))


def mean_word_length(doc: Doc, p: CleanParams) -> float:
    return ratio(sum(map(len, doc.words)), len(doc.words))


def symbol_word_ratio(doc: Doc, p: CleanParams) -> float:
    # datatrove checks "#" and ellipses separately against one threshold: the larger one decides
    n_tokens = len(doc.tokens)
    hashes = ratio(doc.text.count("#"), n_tokens)
    ellipses = ratio(doc.text.count("...") + doc.text.count("…"), n_tokens)
    return max(hashes, ellipses)


def bullet_lines_ratio(doc: Doc, p: CleanParams) -> float:
    bullets = p.gopher_quality.bullet_prefixes
    return ratio(sum(1 for line in doc.lines if line.lstrip().startswith(bullets)), len(doc.lines))


def ellipsis_lines_ratio(doc: Doc, p: CleanParams) -> float:
    return ratio(sum(1 for line in doc.lines if line.rstrip().endswith(("...", "…"))), len(doc.lines))


def alpha_words_ratio(doc: Doc, p: CleanParams) -> float:
    with_letter = sum(map(bool, map(HAS_ALPHA_RE.search, doc.words)))  # punctuation tokens have none
    return ratio(with_letter, len(doc.tokens))


def stop_word_count(doc: Doc, p: CleanParams) -> float:
    configured = p.gopher_quality.stop_words
    if not doc.segmented:
        pattern = stop_word_pattern(doc.lang_base, configured)
        return float(len(pattern.findall(doc.text))) if pattern else 0.0
    return float(sum(map(stop_words_of(doc.lang_base, configured).__contains__, doc.words)))


@lru_cache(maxsize=64)
def stop_word_pattern(lang: str | None, configured: tuple[str, ...] | None) -> re.Pattern | None:
    """The stop words of a language without word spacing as one pattern matching the longest word
    at each place: their occurrences, not overlapping, are what a segmenter would mostly have cut out
    as words. The pattern is the words' trie (neither `re` nor `regex` makes one of an alternation):
    on Chinese, with 794 words, it counts 10x faster than the alternation, with the same counts."""
    words = stop_words_of(lang, configured)
    return re.compile(_trie_pattern(words)) if words else None


def _trie_pattern(words: frozenset[str]) -> str:
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body  # greedy: the longer word first

    return pattern(trie)


# --- Gopher repetition ----------------------------------------------------------------------------


def dup_line_frac(doc: Doc, p: CleanParams) -> float:
    n_dup, _ = duplicates(doc.nonempty_lines)
    return ratio(n_dup, len(doc.nonempty_lines))


def dup_para_frac(doc: Doc, p: CleanParams) -> float:
    n_dup, _ = duplicates(doc.paragraphs)
    return ratio(n_dup, len(doc.paragraphs))


def dup_line_char_frac(doc: Doc, p: CleanParams) -> float:
    _, n_chars = duplicates(doc.nonempty_lines)
    return ratio(n_chars, len(doc.text))


def dup_para_char_frac(doc: Doc, p: CleanParams) -> float:
    _, n_chars = duplicates(doc.paragraphs)
    return ratio(n_chars, len(doc.text))


def _ngrams(tokens: list[str], n: int) -> zip:
    """Token n-grams as tuples, built in C (zip over shifted views; tuples hash the cached str hashes)."""
    return zip(*(tokens[i:] for i in range(n)))


def top_ngram_char_frac(doc: Doc, p: CleanParams, *, n: int) -> float:
    """Chars covered by the most frequent n-gram (its length with spaces x its count) / doc chars.

    As datatrove: the most frequent n-gram is the first of those with the highest count, even when
    that count is 1.
    """
    counts = Counter(_ngrams(doc.tokens, n))
    if not counts:
        return 0.0
    gram, count = counts.most_common(1)[0]
    return ratio((sum(map(len, gram)) + n - 1) * count, len(doc.text))


def dup_ngram_char_frac(doc: Doc, p: CleanParams, *, n: int) -> float:
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
    return ratio(repeated, len(doc.text))


QUALITY_RULES = {  # measure -> rule, in evaluation order
    "word_count": Rule(word_count, between("min_doc_words", "max_doc_words")),
    "mean_word_length": Rule(mean_word_length, between("min_mean_word_length", "max_mean_word_length"), "segmented"),
    "symbol_word_ratio": Rule(symbol_word_ratio, at_most("max_symbol_word_ratio")),
    "bullet_lines_ratio": Rule(bullet_lines_ratio, at_most("max_bullet_lines_ratio")),
    "ellipsis_lines_ratio": Rule(ellipsis_lines_ratio, at_most("max_ellipsis_lines_ratio")),
    "alpha_words_ratio": Rule(alpha_words_ratio, at_least("min_alpha_words_ratio")),
    "stop_word_count": Rule(stop_word_count, at_least("min_stop_words"), "stop_words"),
}

REPETITION_RULES = {
    "dup_para_frac": Rule(dup_para_frac, at_most("max_dup_para_frac")),
    "dup_para_char_frac": Rule(dup_para_char_frac, at_most("max_dup_para_char_frac")),
    "dup_line_frac": Rule(dup_line_frac, at_most("max_dup_line_frac")),
    "dup_line_char_frac": Rule(dup_line_char_frac, at_most("max_dup_line_char_frac")),
    **{
        f"top_{n}gram_char_frac": Rule(
            partial(top_ngram_char_frac, n=n), at_most(f"max_top_{n}gram_char_frac"), "segmented"
        )
        for n in (2, 3, 4)
    },
    **{
        f"dup_{n}gram_char_frac": Rule(
            partial(dup_ngram_char_frac, n=n), at_most(f"max_dup_{n}gram_char_frac"), "segmented"
        )
        for n in range(5, 11)
    },
}
