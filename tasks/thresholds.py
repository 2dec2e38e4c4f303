"""Threshold help: score distributions and what each candidate threshold would keep.

Scores are computed once and thresholds applied in `select`, so a user choosing a
threshold needs to see the scores first. For every score column (`*_score`, floating point) of the
documents entering `select`, this reports the distribution (mean, std, quantiles; quantiles again per
language for the most frequent languages) and, for candidate thresholds, how many documents a `min`
bound (keep score >= t) and a `max` bound (keep score <= t) would keep. Candidates are the quantile
cut points and mean ± k·σ: the k-sigma rule Data-Juicer applies to its analysed stats to suggest
filter ranges (Chen et al. 2024, "Data-Juicer: A One-Stop Data Processing System for Large Language
Models", arXiv:2309.02033), made visible here instead of applied silently.

Memory: the caller passes only the score columns (float32, 4 bytes per document each) and `lang`
(a short code), never the text; quantiles are exact over those columns.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

SCORE_SUFFIX = "_score"  # scores are `<what>_score`, higher = more <what>
LANG_COLUMN = "lang"
DIGITS = 4  # scores are probabilities or small regressions; 4 decimals tell thresholds apart


class ThresholdReportParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Percentiles a practitioner reads off a score histogram: tails (1/5/10%), quartiles, median.
    quantiles: tuple[float, ...] = Field(
        (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99),
        description="Quantiles reported per score column (overall and per language); "
        "each is also a candidate threshold.",
    )
    # k = 1, 2, 3: Data-Juicer's k-sigma rule (arXiv:2309.02033) at its usual k = 3 and two tighter cuts.
    sigmas: tuple[float, ...] = Field((1.0, 2.0, 3.0), description="k of the candidate thresholds mean ± k·σ.")
    top_languages: int = Field(5, ge=0, description="Per-language quantiles for this many most frequent languages.")
    # 20 equal-width bins: enough to see a bimodal score, few enough to read per language
    histogram_bins: int = Field(20, ge=1, description="Bins of the per-language score histograms (HTML report).")


def score_columns(schema: pa.Schema) -> list[str]:
    """Floating-point `*_score` columns, in schema order."""
    return [f.name for f in schema if f.name.endswith(SCORE_SUFFIX) and pa.types.is_floating(f.type)]


def _values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Non-null, finite values as float64 (a NaN would poison every quantile)."""
    values = pc.drop_null(column).to_numpy(zero_copy_only=False).astype(np.float64)
    return values[np.isfinite(values)]


def _label(q: float) -> str:
    return f"p{q * 100:g}".replace(".", "_")


def _quantiles(values: np.ndarray, quantiles: tuple[float, ...]) -> dict[str, float | None]:
    if not len(values):
        return {_label(q): None for q in quantiles}
    return {_label(q): round(float(v), DIGITS) for q, v in zip(quantiles, np.quantile(values, quantiles))}


def _candidates(
    values: np.ndarray, params: ThresholdReportParams, mean: float, std: float, n_null: int = 0
) -> list[dict]:
    """(rule, threshold) pairs with the documents each bound would keep, the `n_null` documents without
    a value included (a bound keeps them unless its `missing` is reject); sorted by threshold."""
    cuts = [(_label(q), float(t)) for q, t in zip(params.quantiles, np.quantile(values, params.quantiles))]
    for k in params.sigmas:
        cuts += [(f"mean-{k:g}sigma", mean - k * std), (f"mean+{k:g}sigma", mean + k * std)]
    ordered = np.sort(values)
    rows = []
    for rule, threshold in sorted(cuts, key=lambda c: c[1]):
        t = round(threshold, DIGITS)
        # Counted at the rounded threshold, the value a user would type into select.thresholds.
        below = int(np.searchsorted(ordered, t, side="left"))
        above = int(np.searchsorted(ordered, t, side="right"))
        kept_if_min, kept_if_max = len(ordered) - below + n_null, above + n_null
        rows.append({"rule": rule, "threshold": t, "kept_if_min": kept_if_min, "kept_if_max": kept_if_max})
    return rows


def _top_languages(lang: pa.ChunkedArray, n: int) -> list[str]:
    counts = pc.value_counts(pc.drop_null(lang)).to_pylist()
    counts.sort(key=lambda c: (-c["counts"], c["values"]))
    return [c["values"] for c in counts[:n]]


def threshold_report(table: pa.Table, params: ThresholdReportParams = ThresholdReportParams()) -> dict[str, dict]:
    """Distribution and candidate thresholds for every score column of `table`.

    Args:
        table: documents entering `select`, at least their score columns; `lang` when present.
        params: quantiles, k of mean ± k·σ, how many languages get their own quantiles.

    Returns:
        `{column: {n, n_missing, mean, std, min, max, quantiles, by_language, candidates}}`; a column
        with no finite value has `None` statistics and no candidates. `n_missing` counts null or
        non-finite scores: a `select` bound keeps the null ones (unless its `missing` is reject) and
        rejects the non-finite ones, and the candidates' kept counts say so.

    Example:
        >>> threshold_report(pa.table({"toxicity_score": pa.array([0.1, 0.9], pa.float32())}))["toxicity_score"]["n"]
        2
    """
    langs = (
        _top_languages(table.column(LANG_COLUMN), params.top_languages) if LANG_COLUMN in table.column_names else []
    )
    masks = {lang: pc.equal(table.column(LANG_COLUMN), lang) for lang in langs}
    report = {}
    for column in score_columns(table.schema):
        values = _values(table.column(column))
        mean = float(values.mean()) if len(values) else math.nan
        std = float(values.std()) if len(values) else math.nan
        by_language = {}
        for lang, mask in masks.items():
            in_lang = _values(table.column(column).filter(mask))
            by_language[lang] = {"n": len(in_lang), "quantiles": _quantiles(in_lang, params.quantiles)}
        report[column] = {
            "n": len(values),
            "n_missing": table.num_rows - len(values),
            "mean": round(mean, DIGITS) if len(values) else None,
            "std": round(std, DIGITS) if len(values) else None,
            "min": round(float(values.min()), DIGITS) if len(values) else None,
            "max": round(float(values.max()), DIGITS) if len(values) else None,
            "quantiles": _quantiles(values, params.quantiles),
            "by_language": by_language,
            "candidates": _candidates(values, params, mean, std, table.column(column).null_count)
            if len(values)
            else [],
            "histogram": _histogram(table.column(column), masks, params.histogram_bins) if len(values) else None,
        }
    return report


def _histogram(column: pa.ChunkedArray, masks: dict[str, pa.ChunkedArray], bins: int) -> dict:
    """Counts per equal-width bin over the column's range, for all documents and per language."""
    values = _values(column)
    edges = np.histogram_bin_edges(values, bins=bins)
    counts = {"all": np.histogram(values, edges)[0].tolist()}
    counts |= {lang: np.histogram(_values(column.filter(mask)), edges)[0].tolist() for lang, mask in masks.items()}
    return {"edges": [round(float(e), DIGITS) for e in edges], "counts": counts}


def threshold_markdown(report: dict[str, dict]) -> str:
    """The report as Markdown: per column, candidate thresholds with kept counts, and quantiles per language."""
    parts = ["### Score distributions and candidate thresholds"]
    if not report:
        return parts[0] + "\n\nNo score columns reached `select`."
    for column, stats in report.items():
        total = stats["n"] + stats["n_missing"]
        if stats["n"] == 0:  # e.g. a stage that is switched off leaves its score column null
            parts.append(f"**`{column}`**: no scored document ({total:,} missing).")
            continue
        parts.append(
            f"**`{column}`**: {stats['n']:,} scored documents (missing: {stats['n_missing']:,}); "
            f"mean {stats['mean']}, std {stats['std']}, min {stats['min']}, max {stats['max']}.\n\n"
            "| rule | threshold | kept with `min` (score >= t) | kept with `max` (score <= t) |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {c['rule']} | {c['threshold']} | {c['kept_if_min']:,} ({c['kept_if_min'] / total:.1%}) "
                f"| {c['kept_if_max']:,} ({c['kept_if_max'] / total:.1%}) |"
                for c in stats["candidates"]
            )
        )
        if stats["by_language"]:
            names = list(stats["quantiles"])
            parts.append(
                "| lang | n | "
                + " | ".join(names)
                + " |\n|---|---|"
                + "---|" * len(names)
                + "\n"
                + "\n".join(
                    f"| {lang} | {row['n']:,} | " + " | ".join(str(row["quantiles"][q]) for q in names) + " |"
                    for lang, row in stats["by_language"].items()
                )
            )
    parts.append(
        "Set a bound with `--set 'select.thresholds=[{column: <column>, min: <t>}]'` (or `max`); only `select` reruns."
    )
    return "\n\n".join(parts)
