"""Rule-based cleaning: Gopher quality and repetition, C4 and FineWeb rules.

Two phases per shard (tasks/clean/rule.py says why they are apart):
- `measure` (`clean.signals`): the text transform (C4 line removal) rewrites `text`, then every
  enabled rule measures the rewritten text. Each value becomes a float32 signal column named for
  its reason code (`gopher_quality:word_count` -> `gopher_quality_word_count`).
  Keyed without any threshold (`CleanParams.signal_params`).
- `decide` (`clean`): reads `lang` and the signals only, and sends a document to `rejected` with
  `reason` = the first failing rule in `RULES` order.
Every measure is visible on every document, kept or not; a disabled family's columns are present and
null: the schema depends on neither parameters nor data.

Every knob can differ per language (`CleanParams.languages`, keyed by the base language of `lang`):
a document is measured and judged under its language's params (`CleanParams.for_language`).

Sources: datatrove (huggingface/datatrove, `pipeline/filters/`) for thresholds and semantics, and the
papers cited in each family's module. Language scoping is documented per parameter.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    model_validator,
)

from tasks.clean import c4, fineweb, gopher
from tasks.clean.c4 import C4Params
from tasks.clean.doc import Doc, base_language
from tasks.clean.fineweb import FineWebParams
from tasks.clean.gopher import (
    GopherQualityParams,
    GopherRepetitionParams,
    stop_words_of,
)
from tasks.clean.rule import Rule
from tasks.contract import StageOutput, split_by_reason

__all__ = [
    "RULES",
    "SIGNAL_COLUMNS",
    "TRANSFORMS",
    "VERSION",
    "CleanParams",
    "Doc",
    "added_fields",
    "decide",
    "judges",
    "measure",
    "run",
    "signal_column",
]

VERSION = 4  # bump when the same input + params give different output

UNSEGMENTED_LANGUAGES = (  # written without spaces between words: tokenised by character
    "zh", "ja", "th", "lo", "km", "my", "bo", "dz", "yue", "wuu", "gan", "hak", "nan", "cdo", "lzh",
)  # fmt: skip


FAMILIES = {  # rule families with per-language knobs, in evaluation order -> {measure: rule}
    "gopher_quality": gopher.QUALITY_RULES,
    "gopher_repetition": gopher.REPETITION_RULES,
    "c4": c4.RULES,
    "fineweb": fineweb.RULES,
}

RULES: dict[str, Rule] = {  # the one registry: reason code -> rule, in evaluation order
    f"{family}:{measure}": rule for family, rules in FAMILIES.items() for measure, rule in rules.items()
}

THRESHOLDS: dict[str, frozenset[str]] = {  # per family: the knobs only decisions read
    family: frozenset(name for rule in rules.values() for name in rule.keeps.fields)
    for family, rules in FAMILIES.items()
}


def override_model(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with every knob optional and unset (None): the knobs one language changes.

    Constraints are checked on the merged params (`CleanParams.for_language`), at config load."""
    fields = {
        name: (field.annotation | None, Field(None, description=field.description))
        for name, field in model.model_fields.items()
    }
    return create_model(f"{model.__name__}Override", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


GopherQualityOverride = override_model(GopherQualityParams)
GopherRepetitionOverride = override_model(GopherRepetitionParams)
C4Override = override_model(C4Params)
FineWebOverride = override_model(FineWebParams)


class LanguageOverride(BaseModel):
    """What one language changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gopher_quality: GopherQualityOverride | None = None
    gopher_repetition: GopherRepetitionOverride | None = None
    c4: C4Override | None = None
    fineweb: FineWebOverride | None = None

    def changes(self) -> dict[str, dict]:
        """{family: {knob: value}} of the knobs set."""
        return {family: knobs for family, knobs in self.model_dump(exclude_none=True).items() if knobs}


class CleanParams(BaseModel):
    """Parameters of the cleaning stage, one sub-model per rule family, and per-language overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gopher_quality: GopherQualityParams = Field(
        default_factory=GopherQualityParams, description="Gopher document quality rules (Rae et al. 2021)."
    )
    gopher_repetition: GopherRepetitionParams = Field(
        default_factory=GopherRepetitionParams, description="Gopher repetition rules (Rae et al. 2021)."
    )
    c4: C4Params = Field(default_factory=C4Params, description="C4 line removal and page rules (Raffel et al. 2020).")
    fineweb: FineWebParams = Field(default_factory=FineWebParams, description="FineWeb rules (Penedo et al. 2024).")
    # fastText lid.176 labels of scripts without word spacing (ISO 639-1/3); our list
    unsegmented_languages: tuple[str, ...] = Field(
        UNSEGMENTED_LANGUAGES,
        description="Languages written without spaces between words: their words are characters (Han, kana) "
        "or letters with their marks (Thai, Lao, Khmer, Myanmar, Tibetan); rules that need real words "
        "(mean word length, word n-grams) neither measure (null) nor reject there.",
    )
    # per-language thresholds, as CulturaX (Nguyen et al. 2023) and FineWeb-2 (Penedo et al. 2025) set them
    languages: dict[str, LanguageOverride] = Field(
        default_factory=dict,
        description='Per-language knobs, keyed by the base language of `lang` ("de", "zh"): '
        "unset ones keep the values above. `winnow calibrate` writes them from data.",
    )
    _resolved: dict[str, CleanParams] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _pii_moved(cls, data: object) -> object:
        if isinstance(data, dict) and "pii" in data:
            raise ValueError(
                "clean.pii moved to its own stage: set `pii` at the top level of the config (its `types`, "
                "`action` and `placeholders`; docs/stages/pii.md)"
            )
        return data

    @model_validator(mode="after")
    def _check_languages(self) -> CleanParams:
        for lang in self.languages:
            if base_language(lang) != lang:
                raise ValueError(f"languages: {lang!r} is not a base language code (e.g. 'de', 'zh')")
            try:
                self.for_language(lang)
            except ValidationError as error:
                raise ValueError(f"languages.{lang}: {error}") from None
        return self

    def for_language(self, lang: str | None) -> CleanParams:
        """The params a document in `lang` (a base language, or None) is measured and judged by."""
        override = self.languages.get(lang) if lang else None
        if override is None:
            return self
        resolved = self._resolved.get(lang)
        if resolved is None:
            data = self.model_dump(exclude={"languages"})
            for family, knobs in override.changes().items():
                data[family] |= knobs
            resolved = self._resolved[lang] = CleanParams.model_validate(data)
        return resolved

    def is_segmented(self, lang: str | None) -> bool:
        """Whether `lang` (a base language, or None) writes spaces between words: if not, its words
        are characters (tasks/clean/doc.py)."""
        return lang not in self.unsegmented_languages

    def signal_params(self) -> CleanParams:
        """These params with every threshold unset: what the signals depend on (`clean.signals`' key)."""
        data = self.model_dump(exclude={"languages"})
        for family, names in THRESHOLDS.items():
            data[family] = {k: v for k, v in data[family].items() if k not in names}
        languages = {}
        for lang, override in self.languages.items():
            measures = {
                family: {k: v for k, v in knobs.items() if k not in THRESHOLDS[family]}
                for family, knobs in override.changes().items()
            }
            if any(measures.values()):
                languages[lang] = {family: knobs for family, knobs in measures.items() if knobs}
        return CleanParams.model_validate(data | {"languages": languages})


# (count column, family, transform), run in this order before the rules
TRANSFORMS = (("n_lines_removed", "c4", c4.remove_lines),)


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


def judges(rule: Rule, lang: str | None, params: CleanParams) -> bool:
    """Whether `rule` may reject a document in `lang` (its scope, tasks/clean/rule.py)."""
    if rule.scope == "all":
        return True
    if rule.scope == "segmented":
        return params.is_segmented(lang)
    return bool(stop_words_of(lang, params.gopher_quality.stop_words))


def measure(table: pa.Table, params: CleanParams) -> StageOutput:
    """The `clean.signals` phase: transform texts and measure every enabled rule; rejects nothing.

    `table` needs `text`; `lang` is read when present (absent or null: the global params, and no
    language-scoped rule applies). Every input column is carried through, `text` rewritten.
    """
    n_rows = table.num_rows
    texts = table.column("text").to_pylist()
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * n_rows
    counts: dict[str, list[int | None]] = {name: [] for name, _, _ in TRANSFORMS}
    values: dict[str, list[float | None]] = {code: [] for code in RULES}
    out_texts: list[str] = []
    plans: dict[str | None, tuple] = {}  # per `lang` label, once: its params, transforms and measures
    for text, lang in zip(texts, langs):
        plan = plans.get(lang)
        if plan is None:
            base = base_language(lang)
            plan = plans[lang] = _plan(params.for_language(base), base)
        p, segmented, transforms, measures = plan
        text = text or ""
        for name, transform in transforms:
            n_changed = None
            if transform is not None:
                text, n_changed = transform(text, lang, p)
            counts[name].append(n_changed)
        out_texts.append(text)
        doc = Doc(text, lang, segmented)
        for code, measure_doc in measures:
            values[code].append(None if measure_doc is None else measure_doc(doc, p))

    text_index = table.schema.get_field_index("text")
    text_field = table.schema.field(text_index)
    scored = table.set_column(text_index, text_field, pa.array(out_texts, text_field.type))
    columns = {signal_column(code): data for code, data in values.items()} | counts
    for field in added_fields():
        scored = scored.append_column(field, pa.array(columns[field.name], field.type))
    return split_by_reason(scored, pa.nulls(n_rows, pa.string()))


def _plan(p: CleanParams, lang: str | None) -> tuple[CleanParams, bool, list, list]:
    """A language's params, whether it is segmented, its transforms and its measures in order: None
    where the family is off or the rule does not judge the language (word n-grams over the
    characters of Chinese took 60% of its measuring time, for values nothing reads)."""
    transforms = [(name, fn if _enabled(p, family) else None) for name, family, fn in TRANSFORMS]
    measures = [
        (code, rule.measure if _enabled(p, code.split(":", 1)[0]) and judges(rule, lang, p) else None)
        for code, rule in RULES.items()
    ]
    return p, p.is_segmented(lang), transforms, measures


def decide(table: pa.Table, params: CleanParams) -> StageOutput:
    """The `clean` phase: judge each document by its signals under its language's thresholds.

    Reads `lang` (optional) and the signal columns, never the text; a null signal (its family off)
    keeps. Vectorised per language: one comparison per rule and language, not per document.
    """
    n_rows = table.num_rows
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * n_rows
    bases = np.array([base_language(lang) for lang in langs], dtype=object)
    reasons = np.full(n_rows, None, dtype=object)
    signals = {code: _floats(table, signal_column(code)) for code in RULES}
    for lang in dict.fromkeys(bases.tolist()):
        rows = np.flatnonzero(bases == lang)
        p = params.for_language(lang)
        undecided = np.ones(len(rows), dtype=bool)
        for code, rule in RULES.items():
            family = getattr(p, code.split(":", 1)[0])
            if not family.enabled or not judges(rule, lang, p):
                continue
            values = signals[code][rows]
            fails = ~(rule.keeps(values, family) | np.isnan(values))
            reasons[rows[fails & undecided]] = code
            undecided &= ~fails
    return split_by_reason(table, pa.array(reasons.tolist(), pa.string()))


def _floats(table: pa.Table, column: str) -> np.ndarray:
    """A signal column as float32, null as NaN."""
    return table.column(column).to_numpy().astype(np.float32)


def run(table: pa.Table, params: CleanParams) -> StageOutput:
    """Both phases on one table (what the flow does in two cached steps): tests and benches."""
    return decide(measure(table, params).kept, params)
