"""Per-language thresholds of the cleaning rules, chosen from the signals of real documents.

Two ways, after the two multilingual corpora that set their cuts per language:
- "corpus" (CulturaX, Nguyen et al. 2023, https://arxiv.org/abs/2309.09400: each metric's threshold
  per language from that language's own distribution): each bound at Tukey's fence of the corpus'
  values (Q1 - k IQR for a lower bound, Q3 + k IQR for an upper), loosened where the fence alone
  would drop more than `1 - min_keep` of the language. A signal whose quartiles are equal (mostly 0,
  such as duplicate paragraphs) has no spread to set a fence by: its knob stays global. The fences
  are taken on log(1 + value) by default: every signal is >= 0 and the counts are right-skewed, so
  on the values themselves the lower fence of word, stop-word and sentence counts falls below 0 (no
  floor at all; 50k bench corpus: min_doc_words 50 -> 0 in every language).
- "reference" (FineWeb-2, Penedo et al. 2025: thresholds per language from reference text in that
  language): the input is good text; a bound that drops more of it than its share of the loss is
  loosened to the tightest cut that keeps that share. Each of the language's k bounds keeps
  `keep_share ** (1 / k)`, so that together they keep at least `keep_share` (every drop is some
  bound's). Good text alone says nothing about what to drop, so a bound is never tightened.

Pure functions over the `clean.signals` columns and `lang`; the flow (flows/orchestration/calibrate_clean.py) computes
the signals with the run's own stages and writes the YAML, the Prefect artifact and the report.
A cut is rounded outwards (a lower bound down, an upper bound up) to 4 decimals, so rounding never
drops a document the exact cut keeps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.clean import RULES, CleanParams, base_language, decide, judges, signal_column

QUANTILES = {"p01": 0.01, "p05": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "p95": 0.95, "p99": 0.99}
HISTOGRAM_BINS = 30
DECIMALS = 4


class CalibrationParams(BaseModel):
    """How `winnow calibrate` chooses each language's cuts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["corpus", "reference"] = Field(
        "corpus",
        description="corpus: Tukey fences of the input's own distribution per language (CulturaX); reference: "
        "the cut keeping `keep_share` of the input, a reference set of good text per language (FineWeb-2).",
    )
    iqr_factor: float = Field(
        1.5, gt=0, description="k of the corpus method's fences Q1 - k IQR, Q3 + k IQR (Tukey 1977)."
    )
    fence_scale: Literal["log", "linear"] = Field(
        "log", description="Corpus method: fences on log(1 + value) (skewed counts get a floor) or on the values."
    )
    min_keep: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Corpus method: a fence dropping more of a language than 1 - this alone is loosened to keep "
        "this share.",
    )
    keep_share: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Reference method: the share of reference documents each rule keeps (our default).",
    )
    min_docs: int = Field(
        100, ge=2, description="Languages with fewer documents keep the global thresholds (too few for quartiles)."
    )
    # the 100,000-word cap guards against giant pages; a corpus fence would cut ordinary long articles
    skip: tuple[str, ...] = Field(
        ("gopher_quality.max_doc_words",), description="Knobs (family.knob) left at their global value."
    )


@dataclass(frozen=True)
class Cut:
    """One calibrated knob of one language, with the distribution behind it."""

    lang: str
    rule: str  # reason code
    knob: str  # family.knob
    side: str  # "low" (documents below are dropped) or "high"
    n: int
    default: float
    value: float
    kept_default: float  # share of the language's documents this rule alone keeps at the global value
    kept: float  # ... at the calibrated value
    quantiles: dict[str, float]
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class Bound:
    """One knob of one rule that a language's documents can calibrate."""

    rule: str
    family: str
    knob: str
    side: str
    values: np.ndarray


def calibrate(table: pa.Table, params: CleanParams, how: CalibrationParams) -> tuple[list[Cut], dict[str, dict]]:
    """Cuts for every language with at least `how.min_docs` documents, and per language its document
    count and the share `clean` keeps before and after the cuts (None and unknown `lang` are counted
    as "unknown" and never calibrated).

    `table` holds `lang` and the signal columns of `clean.signals`.
    """
    langs = np.array([base_language(lang) or "unknown" for lang in table.column("lang").to_pylist()], dtype=object)
    names, counts = np.unique(langs, return_counts=True)
    sizes = {str(name): int(n) for name, n in sorted(zip(names, counts), key=lambda kv: (-kv[1], kv[0]))}
    cuts: list[Cut] = []
    for lang, size in sizes.items():
        if lang != "unknown" and size >= how.min_docs:
            bounds = _bounds(table.take(pa.array(np.flatnonzero(langs == lang))), lang, params, how)
            cuts += [
                cut for bound in bounds if (cut := _cut(lang, bound, params.for_language(lang), how, len(bounds)))
            ]
    calibrated = CleanParams.model_validate(
        params.model_dump(exclude={"languages"}) | {"languages": _merge(params, language_overrides(cuts))}
    )
    before, after = _kept_by_language(table, langs, params), _kept_by_language(table, langs, calibrated)
    languages = {
        lang: {"documents": n, "kept_before": before[lang], "kept_after": after[lang]} for lang, n in sizes.items()
    }
    return cuts, languages


def _bounds(table: pa.Table, lang: str, params: CleanParams, how: CalibrationParams) -> list[Bound]:
    p = params.for_language(lang)
    bounds = []
    for code, rule in RULES.items():
        family_name = code.split(":", 1)[0]
        if not getattr(p, family_name).enabled or not judges(rule, lang, p):
            continue
        values = table.column(signal_column(code)).to_numpy().astype(np.float32)
        values = values[~np.isnan(values)]
        if len(values) < how.min_docs:
            continue
        bounds += [
            Bound(code, family_name, knob, side, values)
            for knob, side in zip(rule.keeps.fields, rule.keeps.sides)
            if side is not None and f"{family_name}.{knob}" not in how.skip
        ]
    return bounds


def _cut(lang: str, bound: Bound, p: CleanParams, how: CalibrationParams, n_bounds: int) -> Cut | None:
    """The bound's calibrated value, or None where the method leaves it global."""
    rule, family, values, side = RULES[bound.rule], getattr(p, bound.family), bound.values, bound.side
    field = type(family).model_fields[bound.knob]
    integer = field.annotation is int
    default = getattr(family, bound.knob)
    if how.method == "corpus":
        scaled = np.log1p(values) if how.fence_scale == "log" else values
        q1, q3 = np.quantile(scaled, [0.25, 0.75])
        if q3 == q1:
            return None
        fence = q1 - how.iqr_factor * (q3 - q1) if side == "low" else q3 + how.iqr_factor * (q3 - q1)
        value = _outward(float(np.expm1(fence)) if how.fence_scale == "log" else fence, side, integer)
        if _share(values, rule, family, bound.knob, value) < how.min_keep:
            value = _tightest(values, rule, family, bound.knob, side, _candidates(values, integer), how.min_keep)
    else:
        share = how.keep_share ** (1 / n_bounds)
        if _share(values, rule, family, bound.knob, default) >= share:
            return None
        value = _tightest(values, rule, family, bound.knob, side, _candidates(values, integer), share)
    value = _clip(value, field)
    quantiles = dict(zip(QUANTILES, (float(q) for q in np.quantile(values, list(QUANTILES.values())))))
    low, high = quantiles["p01"], quantiles["p99"]
    counts, edges = np.histogram(
        np.clip(values, low, high), bins=HISTOGRAM_BINS, range=(low, high if high > low else low + 1)
    )
    return Cut(
        lang,
        bound.rule,
        f"{bound.family}.{bound.knob}",
        side,
        len(values),
        float(default),
        value,
        round(_share(values, rule, family, bound.knob, default), 4),
        round(_share(values, rule, family, bound.knob, value), 4),
        {k: round(v, 6) for k, v in quantiles.items()},
        [round(float(e), 6) for e in edges],
        counts.tolist(),
    )


def _merge(params: CleanParams, overrides: dict) -> dict:
    """The config's own `clean.languages` with the calibrated knobs on top."""
    merged = {lang: override.changes() for lang, override in params.languages.items()}
    for lang, families in overrides.items():
        for family, knobs in families.items():
            merged.setdefault(lang, {}).setdefault(family, {}).update(knobs)
    return merged


def _kept_by_language(table: pa.Table, langs: np.ndarray, params: CleanParams) -> dict[str, float]:
    """The share of each language's documents `clean` keeps under `params` (`decide` on the signals)."""
    kept = np.zeros(len(langs), dtype=bool)
    kept[decide(table.append_column("__i", pa.array(np.arange(len(langs)))), params).kept.column("__i").to_numpy()] = (
        True
    )
    return {str(lang): round(float(kept[langs == lang].mean()), 4) for lang in np.unique(langs)}


def _share(values: np.ndarray, rule, family: BaseModel, knob: str, value: float) -> float:
    """The share of `values` the rule keeps with `knob` at `value` and its other bound open."""
    opened = {
        field: -math.inf if side == "low" else math.inf
        for field, side in zip(rule.keeps.fields, rule.keeps.sides)
        if side is not None and field != knob
    }
    return float(np.mean(rule.keeps(values, family.model_copy(update={knob: value, **opened}))))


def _candidates(values: np.ndarray, integer: bool) -> np.ndarray:
    """Every cut that can keep a different set of `values`: each value and its float32 neighbours
    (a strict test needs the one just past it), or the integers around each value."""
    unique = np.unique(values)
    if integer:
        return np.unique(np.concatenate([np.floor(unique), np.ceil(unique)]))
    inf = np.float32(np.inf)
    return np.unique(np.concatenate([unique, np.nextafter(unique, -inf), np.nextafter(unique, inf)]))


def _tightest(values, rule, family, knob, side, candidates, share) -> float:
    """The cut dropping the most documents while keeping at least `share` of them (binary search:
    what a bound keeps grows as it loosens)."""
    ordered = candidates if side == "high" else candidates[::-1]  # loosest last
    lo, hi = 0, len(ordered) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _share(values, rule, family, knob, float(ordered[mid])) >= share:
            hi = mid
        else:
            lo = mid + 1
    return _outward(float(ordered[lo]), side, integer=False)


def _outward(value: float, side: str, integer: bool) -> float:
    scale = 1 if integer else 10**DECIMALS
    rounded = math.floor(value * scale) if side == "low" else math.ceil(value * scale)
    return int(rounded) if integer else rounded / scale


def _clip(value: float, field) -> float:
    """Within the knob's own bounds (a negative lower fence means: no lower bound)."""
    for constraint in field.metadata:
        if getattr(constraint, "ge", None) is not None:
            value = max(value, constraint.ge)
        if getattr(constraint, "le", None) is not None:
            value = min(value, constraint.le)
    return int(value) if field.annotation is int else value


def language_overrides(cuts: list[Cut]) -> dict[str, dict[str, dict[str, float]]]:
    """`clean.languages` of the cuts: {lang: {family: {knob: value}}}."""
    languages: dict[str, dict[str, dict[str, float]]] = {}
    for cut in cuts:
        family, knob = cut.knob.split(".")
        languages.setdefault(cut.lang, {}).setdefault(family, {})[knob] = cut.value
    return languages


def to_yaml(cuts: list[Cut], languages: dict[str, dict], how: CalibrationParams) -> str:
    """The `clean.languages` config of the cuts, each line commented with its distribution: feed it
    back with `--config`."""
    lines = [
        f"# winnow calibrate, method {how.method}: per-language cleaning thresholds (tasks/clean/calibrate.py).",
        "# Each knob: documents measured, quartiles, the global value and the share of the language each keeps.",
    ]
    sizes = {lang: entry["documents"] for lang, entry in languages.items()}
    skipped = [f"{lang} ({n})" for lang, n in sizes.items() if lang != "unknown" and n < how.min_docs]
    if skipped:
        lines.append(f"# Kept at the global thresholds, fewer than {how.min_docs} documents: {', '.join(skipped)}")
    lines += ["clean:", "  languages:"] if cuts else ["clean:", "  languages: {}"]
    current: tuple[str, str] | None = None
    for cut in sorted(cuts, key=lambda c: (-sizes[c.lang], c.lang, list(RULES).index(c.rule), c.knob)):
        family, knob = cut.knob.split(".")
        if current is None or current[0] != cut.lang:
            entry = languages[cut.lang]
            lines.append(
                f"    {cut.lang}:  # {entry['documents']:,} documents; clean keeps {entry['kept_before']:.1%} "
                f"with the global thresholds, {entry['kept_after']:.1%} with these"
            )
        if current != (cut.lang, family):
            lines.append(f"      {family}:")
        current = (cut.lang, family)
        q = cut.quantiles
        lines.append(
            f"        {knob}: {cut.value}  # n={cut.n:,} q1={q['q1']:.4g} median={q['median']:.4g} "
            f"q3={q['q3']:.4g}; global {cut.default:g} keeps {cut.kept_default:.1%}, this keeps {cut.kept:.1%}"
        )
    return "\n".join(lines) + "\n"


def summary(cuts: list[Cut], languages: dict[str, dict], how: CalibrationParams) -> dict:
    """Everything behind the YAML, for the Prefect artifact, the JSON and the HTML report."""
    return {"calibration": how.model_dump(mode="json"), "languages": languages, "cuts": [asdict(cut) for cut in cuts]}
