"""C4 rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
Transformer", Sec. 2.2; https://jmlr.org/papers/v21/20-074.html), at datatrove's `C4QualityFilter`
defaults as FineWeb runs it (`pipeline/filters/c4_filters.py`; FineWeb turns the terminal-punctuation
line rule off).

C4 both rewrites and judges a page; here the two are split. `remove_lines` is a text transform run
before every rule: it drops lines with an over-long word, with too few words, mentioning javascript,
cookie/terms policies or lorem ipsum, and strips Wikipedia citation markers. The rules then judge the
cleaned text: any curly bracket (`c4:curly_bracket`) and too few sentences (`c4:sentence_count`).
Unlike datatrove, blank lines are kept (they separate the paragraphs Gopher's repetition rules count)
and kept lines are not re-stripped; a line holding "{" and a removed phrase is removed rather than
dropping the page.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from tasks.clean.doc import CHARACTER_WORD_RE, SENTENCE_ENDS, Doc, base_language
from tasks.clean.rule import Rule, at_least, at_most

if TYPE_CHECKING:
    from tasks.clean import CleanParams

CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)  # C4 / datatrove
BLANK_RUN_RE = re.compile(r"\n{3,}")
# Sentences = non-blank lines + breaks inside a line: a full stop or question mark (any script's) or
# "…" then spaces then more text, or another script's full stop right before more text (CJK puts no
# space). This stands in for NLTK punkt, which datatrove runs on each kept line (punkt also knows
# abbreviations such as "Mr.", which count as a break here).
NONBLANK_LINE_RE = re.compile(r"^[^\S\n]*\S", re.MULTILINE)
SENTENCE_BREAK_RE = re.compile(rf"[.!?…{SENTENCE_ENDS}][^\S\n]+(?=\S)|[{SENTENCE_ENDS}](?=[^\s{SENTENCE_ENDS}])")
END_PUNCTUATION = (".", "?", "!", '"', "'")  # C4 terminal punctuation (datatrove END_PUNCTUATION)
POLICY_PHRASES = (  # C4 tfds c4_utils.py / datatrove POLICY_SUBSTRINGS
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


class C4Params(BaseModel):
    """C4 line removals (a transform) and page rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run C4 line removal and rules (their columns stay, null, when off).")
    # datatrove C4QualityFilter defaults (Raffel et al. 2020, C4, Sec. 2.2), as FineWeb configures it
    filter_no_terminal_punct: bool = Field(
        False, description="Remove lines not ending in terminal punctuation (C4: on; FineWeb: off)."
    )
    min_words_per_line: int = Field(
        3,
        ge=0,
        description="Remove lines with fewer whitespace-separated words (characters in unsegmented languages; "
        "0: off).",
    )
    max_word_length: int = Field(
        1000, ge=0, description="Remove lines holding a word longer than this many chars (0: off). All languages."
    )
    remove_citations: bool = Field(
        True, description='Strip citation markers such as "[1]", "[edit]", "[citation needed]".'
    )
    remove_javascript_lines: bool = Field(True, description='Remove lines mentioning "javascript" (any case).')
    remove_policy_lines: bool = Field(True, description="Remove lines holding a policy phrase (any case).")
    policy_phrases: tuple[str, ...] = Field(POLICY_PHRASES, description="Lower-case phrases marking policy lines.")
    # C4 drops the whole page on "lorem ipsum"; this project asks to remove only the line (issue tracker)
    remove_lorem_ipsum_lines: bool = Field(True, description='Remove lines mentioning "lorem ipsum" (any case).')
    max_curly_brackets: int = Field(
        0, ge=0, description='Drop docs with more "{" than this after line removal (C4: any). All languages.'
    )
    min_sentences: int = Field(
        5, ge=0, description="Drop docs with fewer sentences after line removal (C4). All languages."
    )


def remove_lines(text: str, lang: str | None, p: CleanParams) -> tuple[str, int]:
    """C4 line removal: the text without the lines C4 discards, and how many lines went.

    The language decides only how a line's words are counted: whitespace-separated, or characters
    where it writes no spaces (a line of Chinese is one whitespace "word"; "首页", Home, is two
    characters). The text comes back unchanged (same object) when nothing is removed.
    """
    c = p.c4
    segmented = p.is_segmented(base_language(lang))
    kept: list[str] = []
    removed = 0
    changed = False
    for line in text.split("\n"):
        words = line.split()
        if not words:  # blank lines separate paragraphs: kept, never counted
            kept.append(line)
            continue
        if c.max_word_length and len(line) > c.max_word_length and max(map(len, words)) > c.max_word_length:
            removed += 1
            continue
        if c.remove_citations and "[" in line:
            stripped = CITATION_RE.sub("", line)
            changed = changed or stripped != line
            line = stripped
        n_words = len(words)
        if not segmented and n_words < c.min_words_per_line:  # at least as many characters as words
            n_words = len(CHARACTER_WORD_RE.findall(line))
        if n_words < c.min_words_per_line or (c.filter_no_terminal_punct and not _ends_sentence(line)):
            removed += 1
            continue
        lower = line.lower()
        if (
            (c.remove_lorem_ipsum_lines and "lorem ipsum" in lower)
            or (c.remove_javascript_lines and "javascript" in lower)
            or (c.remove_policy_lines and any(phrase in lower for phrase in c.policy_phrases))
        ):
            removed += 1
            continue
        kept.append(line)
    if not removed and not changed:
        return text, 0
    return BLANK_RUN_RE.sub("\n\n", "\n".join(kept)).strip("\n"), removed


def _ends_sentence(line: str) -> bool:
    line = line.rstrip()
    return line.endswith(END_PUNCTUATION) and not line.endswith("...")


def curly_bracket(doc: Doc, p: CleanParams) -> float:
    return float(doc.text.count("{"))


def sentence_count(doc: Doc, p: CleanParams) -> float:
    return float(len(NONBLANK_LINE_RE.findall(doc.text)) + len(SENTENCE_BREAK_RE.findall(doc.text)))


RULES = {
    "curly_bracket": Rule(curly_bracket, at_most("max_curly_brackets")),
    "sentence_count": Rule(sentence_count, at_least("min_sentences")),
}
