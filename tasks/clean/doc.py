"""The document view every cleaning measure reads: text, language, and features computed once.

Measures are `(Doc, CleanParams) -> float`. Features several measures share (lines, paragraphs,
tokens, words) are `cached_property`s, so a document is split and tokenised once however many
measures read it. Tokens are `tasks/text.py`'s.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from itertools import compress
from typing import TYPE_CHECKING

from tasks.text import CHARACTER_TOKEN_RE, CHARACTER_WORD_RE, TOKEN_RE, WORD_RE

if TYPE_CHECKING:
    from tasks.clean import CleanParams

PARAGRAPH_RE = re.compile(r"\n{2,}")  # paragraphs are separated by blank lines (datatrove, Gopher)
REPEAT_MIN_N = 5  # the smallest duplicate n-gram size Gopher counts (Table A1)
# Full stops and question marks of scripts other than Latin's ".!?": CJK, Devanagari's danda and double
# danda, the Arabic full stop and question mark (Urdu ends sentences with "۔": 24 of 40 lingua prose
# documents of Urdu failed FineWeb's line-punctuation rule without it), Armenian, Ethiopic, Myanmar, Khmer
SENTENCE_ENDS = "。！？।॥۔؟։።။។"
HAS_ALPHA_RE = re.compile(r"[^\W\d_]")  # a letter: a word character that is not a digit or "_"


@dataclass(frozen=True)
class Doc:
    """A document as the rules see it (after the text transforms)."""

    text: str
    lang: str | None = None  # ISO 639 label from language ID ("en", "zh"); None when unknown
    segmented: bool = True  # False: the language writes no spaces between words (character tokens)

    @cached_property
    def lang_base(self) -> str | None:
        return base_language(self.lang)

    @cached_property
    def lines(self) -> list[str]:
        """Lines split on "\\n" only, blank ones included (never empty: "" gives [""])."""
        return self.text.split("\n")

    @cached_property
    def nonempty_lines(self) -> list[str]:
        """Lines with at least one character (what datatrove's `\\n+` split yields, minus edge "")."""
        return [line for line in self.lines if line]

    @cached_property
    def paragraphs(self) -> list[str]:
        """Blocks between blank lines of the stripped text (never empty: "" gives [""])."""
        return PARAGRAPH_RE.split(self.text.strip())

    @cached_property
    def tokens(self) -> list[str]:
        """Word and punctuation tokens, in order: what n-grams and token ratios count."""
        return (TOKEN_RE if self.segmented else CHARACTER_TOKEN_RE).findall(self.text)

    @cached_property
    def words(self) -> list[str]:
        """Non-symbol tokens (those with a letter, digit or "_"): what word counts and lengths use."""
        return (WORD_RE if self.segmented else CHARACTER_WORD_RE).findall(self.text)

    @cached_property
    def repeat_starts(self) -> list[int]:
        """Token positions whose 5-gram occurs more than once: the only places a repeated n-gram
        with n >= 5 (Gopher's duplicate n-gram sizes) can start."""
        grams = list(zip(*(self.tokens[i:] for i in range(REPEAT_MIN_N))))
        counts = Counter(grams)
        if len(counts) == len(grams):
            return []
        return list(compress(range(len(grams)), map((2).__le__, map(counts.__getitem__, grams))))


def base_language(lang: str | None) -> str | None:
    """The language without region/script suffix: "zh-Hans" and "zh_TW" -> "zh"; None stays None."""
    if not lang:
        return None
    return lang.replace("_", "-").split("-", 1)[0].lower()


Measure = Callable[[Doc, "CleanParams"], float]  # finite; 0.0 where undefined


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, 0.0 where the denominator is 0 (rules stay total)."""
    return numerator / denominator if denominator else 0.0


def duplicates(items: list[str]) -> tuple[int, int]:
    """(items seen before, their total characters): later copies count, first occurrences do not."""
    seen: set[str] = set(items)
    if len(seen) == len(items):  # the common case, decided in C
        return 0, 0
    seen.clear()
    n_dup = n_chars = 0
    for item in items:
        if item in seen:
            n_dup += 1
            n_chars += len(item)
        else:
            seen.add(item)
    return n_dup, n_chars
