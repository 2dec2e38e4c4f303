import math

import numpy as np
import pyarrow as pa
import pytest
import yaml

from tasks.clean import SIGNAL_COLUMNS, CleanParams, decide, signal_column
from tasks.clean.calibrate import (
    CalibrationParams,
    calibrate,
    language_overrides,
    to_yaml,
)

P = CleanParams()
ALPHA = "gopher_quality:alpha_words_ratio"


def signals(lang: str, n: int, **columns: np.ndarray) -> pa.Table:
    """`n` documents of `lang` whose signals pass every global rule, except the `columns` given
    (reason code -> values)."""
    passing = {  # a plain prose page: every rule keeps it
        "gopher_quality:word_count": 400.0,
        "gopher_quality:mean_word_length": 5.0,
        "gopher_quality:alpha_words_ratio": 0.9,
        "gopher_quality:stop_word_count": 40.0,
        "c4:sentence_count": 20.0,
        "fineweb:line_punct_ratio": 0.9,
    }
    data = {"lang": pa.array([lang] * n, pa.string())}
    for name in SIGNAL_COLUMNS:
        data[name] = pa.array(np.zeros(n, np.float32), pa.float32())
    for code, value in passing.items():
        data[signal_column(code)] = pa.array(np.full(n, value, np.float32))
    for code, values in columns.items():
        data[signal_column(code)] = pa.array(np.asarray(values, np.float32))
    return pa.table(data)


def cuts_of(table: pa.Table, **how) -> dict:
    cuts, languages = calibrate(table, P, CalibrationParams(**how))
    return {(c.lang, c.knob): c for c in cuts}, languages


def test_corpus_method_puts_a_lower_bound_at_tukeys_fence():
    values = np.linspace(0.60, 0.80, 200)  # q1 0.65, q3 0.75: fence 0.65 - 0.15 = 0.50
    cuts, languages = cuts_of(signals("de", 200, **{ALPHA: values}), method="corpus", fence_scale="linear")

    cut = cuts[("de", "gopher_quality.min_alpha_words_ratio")]
    assert cut.value == pytest.approx(0.5, abs=1e-4) and cut.value <= 0.5
    assert (cut.kept_default, cut.kept) == (pytest.approx(0.0, abs=0.01), 1.0)
    assert languages["de"]["kept_before"] < 0.01 and languages["de"]["kept_after"] == 1.0


def test_log_fences_give_skewed_counts_a_floor():
    words = np.exp(np.random.default_rng(0).normal(6.0, 1.0, 400)).round()  # lognormal word counts, median ~400
    table = signals("de", 400, **{"gopher_quality:word_count": words})
    q1, q3 = np.quantile(np.log1p(words), [0.25, 0.75])

    linear, _ = cuts_of(table, method="corpus", fence_scale="linear")
    log, _ = cuts_of(table, method="corpus")

    assert linear[("de", "gopher_quality.min_doc_words")].value == 0  # the linear fence lies below 0
    assert log[("de", "gopher_quality.min_doc_words")].value == math.floor(np.expm1(q1 - 1.5 * (q3 - q1))) > 10


def test_corpus_method_loosens_a_fence_that_drops_more_than_min_keep_allows():
    values = np.concatenate([np.linspace(0.85, 0.95, 150), np.linspace(0.0, 0.6, 50)])  # the fence (~0.74) drops 25%
    cuts, _ = cuts_of(signals("de", 200, **{ALPHA: values}), method="corpus", min_keep=0.9)

    cut = cuts[("de", "gopher_quality.min_alpha_words_ratio")]
    assert cut.kept >= 0.9 and (values >= cut.value).mean() >= 0.9


def test_a_signal_without_spread_keeps_the_global_knob_in_the_corpus_method():
    cuts, _ = cuts_of(signals("de", 200), method="corpus")  # every repetition signal is 0

    assert ("de", "gopher_repetition.max_dup_line_frac") not in cuts


def test_reference_method_only_loosens_rules_that_drop_good_text():
    values = np.linspace(0.60, 0.80, 200)  # the global 0.8 drops nearly all of this "good" text
    table = signals("de", 200, **{ALPHA: values})
    cuts, languages = cuts_of(table, method="reference", keep_share=0.9)

    assert list(cuts) == [("de", "gopher_quality.min_alpha_words_ratio")]  # every other rule keeps it all
    assert cuts[("de", "gopher_quality.min_alpha_words_ratio")].kept >= 0.9
    assert languages["de"]["kept_after"] >= 0.9


def test_reference_method_handles_strict_and_integer_bounds():
    n = 200
    table = signals(
        "en",
        n,
        **{"fineweb:char_dup_ratio": np.full(n, 0.02), "c4:sentence_count": np.arange(n) % 7},
    )
    cuts, _ = cuts_of(table, method="reference", keep_share=0.99)

    strict = cuts[("en", "fineweb.char_dup_threshold")]  # keeps v < cut: the cut lies just past 0.02
    assert strict.value > 0.02 and strict.kept == 1.0
    sentences = cuts[("en", "c4.min_sentences")]
    assert isinstance(sentences.value, int) and sentences.value == 0


def test_small_and_unknown_languages_are_not_calibrated():
    values = np.linspace(0.60, 0.80, 150)
    table = pa.concat_tables([signals("de", 150, **{ALPHA: values}), signals("fr", 20, **{ALPHA: values[:20]})])
    table = pa.concat_tables(
        [table, signals("xx", 150, **{ALPHA: values}).set_column(0, "lang", pa.nulls(150, pa.string()))]
    )

    cuts, languages = cuts_of(table, method="corpus", min_docs=100)

    assert {lang for lang, _ in cuts} == {"de"}
    assert languages["fr"]["documents"] == 20 and languages["unknown"]["documents"] == 150


def test_the_yaml_loads_back_as_the_cuts_and_decides_as_calibrate_said():
    values = np.linspace(0.60, 0.80, 200)
    table = signals("de", 200, **{ALPHA: values})
    how = CalibrationParams(method="corpus")
    cuts, languages = calibrate(table, P, how)

    loaded = yaml.safe_load(to_yaml(cuts, languages, how))
    params = CleanParams.model_validate(loaded["clean"])

    assert loaded["clean"]["languages"] == language_overrides(cuts)
    assert decide(table, params).kept.num_rows / 200 == languages["de"]["kept_after"]
