"""Normalize text before anything measures it: Unicode repair, NFC, control characters, whitespace.

Every later rule, hash and model sees the same canonical text, so exact duplicates that differ only
in mojibake, composition or spacing collapse, and thresholds mean the same thing on every source.
Unicode repair is ftfy (Speer 2019) with the conservative settings datatrove's `FTFYFormatter` and
NeMo Curator's `UnicodeReformatter` use: fix encodings and controls, leave quotes, ligatures,
character widths and HTML entities as they are.
"""

from __future__ import annotations

import re
import unicodedata

import ftfy
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.contract import StageOutput, split_by_reason

VERSION = 1


class NormalizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repair_unicode: bool = Field(True, description="Repair mojibake and broken encodings with ftfy.")
    unicode_form: str | None = Field(
        "NFC",
        pattern="^NF(K?)(C|D)$",
        description="Unicode normalization form; NFC as FineWeb and Dolma (composes, changes no meaning).",
    )
    normalize_whitespace: bool = Field(
        True, description="Collapse runs of spaces/tabs, strip line ends, at most one blank line in a row."
    )


FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    normalization=None,
    explain=False,
)

# ftfy is ~300 docs/s on 10 KB pages; most text has nothing for it to fix. A UTF-8 lead character
# decoded as cp1252/latin-1 followed by a continuation character marks mojibake; control, format
# and replacement characters mark what ftfy removes. Text without either is left to the cheaper steps.
# tests/tasks/test_normalize.py checks the gate changes no output on the real dev corpus.
_CONTINUATION = (
    "\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
_NEEDS_FTFY = re.compile(
    f"[\u00c2-\u00ef][{_CONTINUATION}]"
    "|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufff9-\ufffd\u206a-\u206f\ud800-\udfff]"
    "|[\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")


def repair_unicode(text: str) -> str:
    return ftfy.fix_text(text, FTFY_CONFIG) if _NEEDS_FTFY.search(text) else text


def normalize_whitespace(text: str) -> str:
    text = _INLINE_SPACE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n\n", _SPACE_AROUND_NEWLINE.sub("\n", text)).strip()


def normalize_text(text: str, params: NormalizeParams) -> tuple[str, bool]:
    """Return the canonical text and whether ftfy changed it."""
    repaired = repair_unicode(text) if params.repair_unicode else text
    if params.unicode_form:
        repaired = unicodedata.normalize(params.unicode_form, repaired)
    cleaned = _CONTROL.sub("", repaired)
    if params.normalize_whitespace:
        cleaned = normalize_whitespace(cleaned)
    return cleaned, repaired != text


def run(table: pa.Table, params: NormalizeParams) -> StageOutput:
    texts, repaired, changed, reasons = [], [], [], []
    for text in table.column("text").to_pylist():
        normal, was_repaired = normalize_text(text, params)
        texts.append(normal)
        repaired.append(was_repaired)
        changed.append(normal != text)
        reasons.append(None if normal else "normalize:char_count")
    index = table.schema.get_field_index("text")
    out = table.set_column(index, table.schema.field("text"), pa.array(texts, pa.string()))
    out = out.append_column(pa.field("is_unicode_repaired", pa.bool_()), pa.array(repaired, pa.bool_()))
    out = out.append_column(pa.field("is_text_normalized", pa.bool_()), pa.array(changed, pa.bool_()))
    return split_by_reason(out, pa.array(reasons, pa.string()))
