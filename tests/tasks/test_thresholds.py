import math

import pyarrow as pa
import pytest

from tasks.select import ColumnThreshold, SelectParams
from tasks.select import run as select_run
from tasks.thresholds import (
    ThresholdReportParams,
    score_columns,
    threshold_markdown,
    threshold_report,
)


def scored(values, langs=None, column="quality_score") -> pa.Table:
    columns = {column: pa.array(values, pa.float32())}
    if langs is not None:
        columns["lang"] = pa.array(langs, pa.string())
    return pa.table(columns)


def test_only_floating_score_columns_are_reported():
    schema = pa.schema(
        [
            ("lang_score", pa.float32()),
            ("toxicity_score", pa.float64()),
            ("n_score", pa.int64()),
            ("gopher_quality_word_count", pa.float32()),
            ("text", pa.string()),
        ]
    )

    assert score_columns(schema) == ["lang_score", "toxicity_score"]


def test_quantiles_and_moments_of_a_known_distribution():
    report = threshold_report(scored([i / 100 for i in range(101)]), ThresholdReportParams(quantiles=(0.1, 0.5, 0.9)))

    stats = report["quality_score"]
    assert stats["n"] == 101 and stats["n_missing"] == 0
    assert stats["quantiles"] == {"p10": 0.1, "p50": 0.5, "p90": 0.9}
    assert (stats["min"], stats["max"], stats["mean"]) == (0.0, 1.0, 0.5)
    assert stats["std"] == pytest.approx(math.sqrt(sum((i / 100 - 0.5) ** 2 for i in range(101)) / 101), abs=1e-4)


def test_kept_counts_match_what_select_keeps_at_that_threshold():
    table = scored([0.05, 0.2, 0.2, 0.4, 0.7, 0.9, None, float("nan")])

    candidates = threshold_report(table)["quality_score"]["candidates"]

    for c in candidates:
        for bound, kept in (("min", c["kept_if_min"]), ("max", c["kept_if_max"])):
            params = SelectParams(thresholds=(ColumnThreshold(column="quality_score", **{bound: c["threshold"]}),))
            assert select_run(table, params).kept.num_rows == kept, (c, bound)


def test_k_sigma_candidates_sit_k_standard_deviations_from_the_mean():
    report = threshold_report(scored([0.0, 1.0] * 50), ThresholdReportParams(quantiles=(), sigmas=(1.0, 3.0)))

    rules = {c["rule"]: c for c in report["quality_score"]["candidates"]}

    assert rules["mean-1sigma"]["threshold"] == 0.0 and rules["mean+1sigma"]["threshold"] == 1.0
    assert rules["mean-3sigma"] == {"rule": "mean-3sigma", "threshold": -1.0, "kept_if_min": 100, "kept_if_max": 0}
    assert rules["mean+3sigma"]["kept_if_max"] == 100


def test_missing_scores_are_counted_not_used():
    stats = threshold_report(scored([0.5, None, float("nan")]))["quality_score"]

    assert (stats["n"], stats["n_missing"]) == (1, 2)
    assert stats["quantiles"]["p50"] == 0.5


def test_per_language_quantiles_for_the_most_frequent_languages():
    table = scored([0.1, 0.2, 0.3, 0.9, 0.8, 0.5], langs=["de", "de", "de", "en", "en", "fr"])

    by_language = threshold_report(table, ThresholdReportParams(quantiles=(0.5,), top_languages=2))["quality_score"][
        "by_language"
    ]

    assert by_language == {"de": {"n": 3, "quantiles": {"p50": 0.2}}, "en": {"n": 2, "quantiles": {"p50": 0.85}}}


def test_a_column_without_values_and_an_empty_multi_chunk_table():
    empty = pa.concat_tables([scored([], langs=[]), scored([], langs=[])])

    stats = threshold_report(empty)["quality_score"]

    assert stats["n"] == 0 and stats["quantiles"]["p50"] is None and stats["candidates"] == []
    assert "quality_score" in threshold_markdown({"quality_score": stats})


def test_multi_chunk_table_gives_the_same_report_as_one_chunk():
    values, langs = [i / 37 % 1 for i in range(200)], ["en", "de"] * 100
    whole = scored(values, langs)
    chunked = pa.concat_tables([whole.slice(0, 13), whole.slice(13, 100), whole.slice(113)])

    assert threshold_report(chunked) == threshold_report(whole)


def test_markdown_lists_every_candidate_with_its_kept_share():
    report = threshold_report(scored([0.1, 0.5, 0.9], langs=["en", "en", "de"]))

    markdown = threshold_markdown(report)

    assert "**`quality_score`**: 3 scored documents" in markdown
    assert "| mean+3sigma |" in markdown and "| en | 2 |" in markdown
    assert markdown.count("\n| p") == len(ThresholdReportParams().quantiles)


def test_histograms_count_every_finite_score_overall_and_per_language():
    table = pa.table(
        {
            "quality_score": pa.array([0.0, 0.25, 0.5, 1.0, float("nan"), None], pa.float32()),
            "lang": ["en", "en", "de", "de", "en", "de"],
        }
    )

    hist = threshold_report(table, ThresholdReportParams(histogram_bins=4))["quality_score"]["histogram"]

    assert hist["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert hist["counts"] == {"all": [1, 1, 1, 1], "en": [1, 1, 0, 0], "de": [0, 0, 1, 1]}
