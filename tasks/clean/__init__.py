"""Rule-based cleaning: Gopher quality and repetition, C4 and FineWeb rules, PII redaction.

Per shard: the text transforms (C4 line removal, then PII redaction) rewrite `text`, then every
enabled rule measures the rewritten text. Each rule's value becomes a float32 signal column named for
its reason code (`gopher_quality:word_count` -> `gopher_quality_word_count`), kept or not, so every
measure is visible on every document; a document goes to `rejected` with `reason` = the first failing
rule in `RULES` order. A disabled family's columns are present and null: the schema depends on
neither parameters nor data.

Sources: datatrove (huggingface/datatrove, `pipeline/filters/`) for thresholds and semantics, and the
papers cited in each family's module. Language scoping is documented per parameter.
"""

from __future__ import annotations

import pyarrow as pa

from pydantic import BaseModel, ConfigDict, Field

from tasks.clean import c4, fineweb, gopher, pii
from tasks.clean.c4 import C4Params
from tasks.clean.doc import Doc, Rule, Verdict
from tasks.clean.fineweb import FineWebParams
from tasks.clean.gopher import GopherQualityParams, GopherRepetitionParams
from tasks.clean.pii import PiiParams
from tasks.contract import StageOutput, split_by_reason

__all__ = [
    "RULES",
    "SIGNAL_COLUMNS",
    "TRANSFORMS",
    "VERSION",
    "CleanParams",
    "Doc",
    "Verdict",
    "added_fields",
    "run",
    "signal_column",
]

VERSION = 1  # bump when the same input + params give different output

UNSEGMENTED_LANGUAGES = (  # written without spaces between words: whitespace "words" mean nothing
    "zh", "ja", "th", "lo", "km", "my", "bo", "dz", "yue", "wuu", "gan", "hak", "nan", "cdo", "lzh",
)  # fmt: skip


class CleanParams(BaseModel):
    """Parameters of the cleaning stage, one sub-model per rule family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gopher_quality: GopherQualityParams = Field(
        default_factory=GopherQualityParams, description="Gopher document quality rules (Rae et al. 2021)."
    )
    gopher_repetition: GopherRepetitionParams = Field(
        default_factory=GopherRepetitionParams, description="Gopher repetition rules (Rae et al. 2021)."
    )
    c4: C4Params = Field(default_factory=C4Params, description="C4 line removal and page rules (Raffel et al. 2020).")
    fineweb: FineWebParams = Field(default_factory=FineWebParams, description="FineWeb rules (Penedo et al. 2024).")
    pii: PiiParams = Field(default_factory=PiiParams, description="E-mail and public IP redaction.")
    # fastText lid.176 labels of scripts without word spacing (ISO 639-1/3); our list
    unsegmented_languages: tuple[str, ...] = Field(
        UNSEGMENTED_LANGUAGES,
        description="Languages whose word-based rules record values but never reject, and whose lines "
        "skip C4's words-per-line minimum.",
    )


RULES: dict[str, Rule] = {  # the one registry: reason code -> rule, in evaluation order
    "gopher_quality:word_count": gopher.word_count,
    "gopher_quality:mean_word_length": gopher.mean_word_length,
    "gopher_quality:symbol_word_ratio": gopher.symbol_word_ratio,
    "gopher_quality:bullet_lines_ratio": gopher.bullet_lines_ratio,
    "gopher_quality:ellipsis_lines_ratio": gopher.ellipsis_lines_ratio,
    "gopher_quality:alpha_words_ratio": gopher.alpha_words_ratio,
    "gopher_quality:stop_word_count": gopher.stop_word_count,
    "gopher_repetition:dup_para_frac": gopher.dup_para_frac,
    "gopher_repetition:dup_para_char_frac": gopher.dup_para_char_frac,
    "gopher_repetition:dup_line_frac": gopher.dup_line_frac,
    "gopher_repetition:dup_line_char_frac": gopher.dup_line_char_frac,
    **{f"gopher_repetition:{measure}": rule for measure, rule in gopher.TOP_NGRAM_RULES.items()},
    **{f"gopher_repetition:{measure}": rule for measure, rule in gopher.DUP_NGRAM_RULES.items()},
    "c4:curly_bracket": c4.curly_bracket,
    "c4:sentence_count": c4.sentence_count,
    "fineweb:line_punct_ratio": fineweb.line_punct_ratio,
    "fineweb:short_line_ratio": fineweb.short_line_ratio,
    "fineweb:char_dup_ratio": fineweb.char_dup_ratio,
    "fineweb:list_ratio": fineweb.list_ratio,
}

# (count column, family, transform), run in this order before the rules
TRANSFORMS = (
    ("n_lines_removed", "c4", c4.remove_lines),
    ("n_pii_redacted", "pii", pii.redact_pii),
)


def signal_column(code: str) -> str:
    """The column holding a rule's value: the reason code with ":" -> "_"."""
    return code.replace(":", "_")


SIGNAL_COLUMNS = [signal_column(code) for code in RULES]


def added_fields() -> list[pa.Field]:
    """The columns this stage appends to its input, in order (the same for any params and data)."""
    signals = [pa.field(name, pa.float32()) for name in SIGNAL_COLUMNS]
    counts = [pa.field(name, pa.int32()) for name, _, _ in TRANSFORMS]
    return signals + counts


def _enabled(params: CleanParams, family: str) -> bool:
    return getattr(params, family).enabled


def run(table: pa.Table, params: CleanParams) -> StageOutput:
    """Clean one shard: transform texts, measure every enabled rule, split kept from rejected.

    `table` needs `text`; `lang` is read when present (absent or null: no language-scoped rule
    applies). Every input column is carried through, `text` rewritten by the transforms.
    """
    n_rows = table.num_rows
    texts = table.column("text").to_pylist()
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * n_rows
    transforms = [(name, fn) for name, family, fn in TRANSFORMS if _enabled(params, family)]
    rules = [(code, rule) for code, rule in RULES.items() if _enabled(params, code.split(":", 1)[0])]
    counts: dict[str, list[int]] = {name: [] for name, _ in transforms}
    values: dict[str, list[float]] = {code: [] for code, _ in rules}
    reasons: list[str | None] = []
    out_texts: list[str] = []

    for text, lang in zip(texts, langs):
        text = text or ""
        for name, transform in transforms:
            text, n_changed = transform(text, lang, params)
            counts[name].append(n_changed)
        out_texts.append(text)
        doc = Doc(text, lang)
        reason = None
        for code, rule in rules:
            verdict = rule(doc, params)
            values[code].append(verdict.value)
            if reason is None and not verdict.keep:
                reason = code
        reasons.append(reason)

    text_index = table.schema.get_field_index("text")
    text_field = table.schema.field(text_index)
    scored = table.set_column(text_index, text_field, pa.array(out_texts, text_field.type))
    columns = {signal_column(code): data for code, data in values.items()} | counts
    for field in added_fields():
        data = columns.get(field.name)
        array = pa.nulls(n_rows, field.type) if data is None else pa.array(data, field.type)
        scored = scored.append_column(field, array)
    return split_by_reason(scored, pa.array(reasons, pa.string()))
