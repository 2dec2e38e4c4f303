"""FineWeb's own quality rules (Penedo et al. 2024, "The FineWeb Datasets", Sec. 3.5;
https://arxiv.org/abs/2406.17557), at datatrove's `FineWebQualityFilter` defaults
(`pipeline/filters/fineweb_quality_filter.py`).

Lines are split on "\\n" with blank lines included, as datatrove does. The list ratio counts tokens
(punctuation included, as datatrove's word tokenizer does; characters in unsegmented languages,
tasks/clean/doc.py); every rule applies to every language. Terminal punctuation adds other scripts'
full stops and question marks (`doc.SENTENCE_ENDS`: CJK, Devanagari, Arabic, Armenian, ...) to
datatrove's set so that Chinese, Hindi or Urdu lines ending a sentence count as such; English text
is unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from tasks.clean.doc import SENTENCE_ENDS, Doc, duplicates, ratio
from tasks.clean.rule import Keeps, Rule, at_most, below

if TYPE_CHECKING:
    from tasks.clean import CleanParams

STOP_CHARS = (".", "'", '"', "!", "?", *SENTENCE_ENDS)  # datatrove's five, plus other scripts' (doc.py)


class FineWebParams(BaseModel):
    """FineWeb line-structure rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the FineWeb rules (their columns stay, null, when off).")
    # datatrove FineWebQualityFilter defaults (Penedo et al. 2024, FineWeb, Sec. 3.5)
    line_punct_threshold: float = Field(
        0.12,
        ge=0,
        le=1,
        description="Drop docs whose share of lines ending in terminal punctuation is at or below this. "
        "All languages.",
    )
    line_punct_exclude_zero: bool = Field(
        False, description="Keep docs where no line ends in terminal punctuation (datatrove option, off)."
    )
    terminal_punctuation: tuple[str, ...] = Field(
        STOP_CHARS, description="Line endings that count as terminal punctuation."
    )
    short_line_max_chars: int = Field(30, ge=0, description="A line of at most this many chars is short.")
    short_line_threshold: float = Field(
        0.67, ge=0, le=1, description="Drop docs whose share of short lines is at or above this. All languages."
    )
    char_dup_threshold: float = Field(
        0.01,
        ge=0,
        description="Drop docs whose chars in repeated non-blank lines / chars (newlines excluded) is at or "
        "above this. All languages.",
    )
    max_list_ratio: float = Field(
        0.3, ge=0, description="Drop docs with more newlines per token than this. All languages."
    )


def line_punct_ratio(doc: Doc, p: CleanParams) -> float:
    ends = p.fineweb.terminal_punctuation
    return ratio(sum(1 for line in doc.lines if line.endswith(ends)), len(doc.lines))


def short_line_ratio(doc: Doc, p: CleanParams) -> float:
    limit = p.fineweb.short_line_max_chars
    return ratio(sum(1 for line in doc.lines if len(line) <= limit), len(doc.lines))


def char_dup_ratio(doc: Doc, p: CleanParams) -> float:
    _, n_chars = duplicates([line for line in doc.nonempty_lines if not line.isspace()])
    return ratio(n_chars, len(doc.text) - doc.text.count("\n"))


def list_ratio(doc: Doc, p: CleanParams) -> float:
    return ratio(doc.text.count("\n"), len(doc.tokens))


RULES = {
    "line_punct_ratio": Rule(
        line_punct_ratio,
        Keeps(
            ("line_punct_threshold", "line_punct_exclude_zero"),
            lambda values, threshold, exclude_zero: (values > threshold) | (exclude_zero & (values == 0)),
            ("low", None),
        ),
    ),
    "short_line_ratio": Rule(short_line_ratio, below("short_line_threshold")),
    "char_dup_ratio": Rule(char_dup_ratio, below("char_dup_threshold")),
    "list_ratio": Rule(list_ratio, at_most("max_list_ratio")),
}
