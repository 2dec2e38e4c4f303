"""What each stage's report section draws and says, from its data alone (no Prefect, no Dask)."""

from flows.stages.decontam import contamination_html
from flows.stages.dedup_fuzzy import dedup_html, dedup_markdown
from flows.stages.select import score_plots

FUZZY = {
    "clusters": 1,
    "docs_in_clusters": 2,
    "cluster_sizes": {"2": 1},
    "jaccard_threshold": 0.7,
    "bands": 17,
    "rows": 4,
    "verify_min_matches": 69,
    "num_perm": 112,
    "removal_at_threshold": 0.97,
    "removal_probability": {"0.00": 0.0, "0.50": 0.009, "0.60": 0.392, "0.70": 0.97, "0.80": 1.0, "0.90": 1.0},
    "sampled_pairs": 1,
    "precision_estimate": 1.0,
    "sampled_jaccard_min": 0.9,
}
DECONTAM = {
    "benchmarks": {
        "gsm8k": {"documents": 3, "documents_rejected": 3, "items_hit": 2, "by_method": {"ngram": 3}, "examples": []}
    },
    "documents": [],
}


def test_fuzzy_dedup_draws_its_cluster_sizes_and_s_curve():
    page = dedup_html(FUZZY)

    assert page.count("<svg") == 2
    assert "Fuzzy duplicate cluster sizes" in page and "Expected removal by Jaccard (S-curve)" in page


def test_fuzzy_dedup_without_clusters_draws_only_its_s_curve():
    assert dedup_html({**FUZZY, "cluster_sizes": {"2": 0}}).count("<svg") == 1


def test_fuzzy_dedup_section_states_the_layout_verification_and_s_curve():
    markdown = dedup_markdown(FUZZY)

    assert "Target Jaccard 0.7: 17 x 4 LSH bands, verified at >= 69 of 112 agreeing MinHash values" in markdown
    assert "0.50: 0.01 | 0.60: 0.39 | 0.70: 0.97 | 0.80: 1.00 | 0.90: 1.00; at the target 0.97" in markdown
    assert "1.0 reach the target Jaccard 0.7" in markdown


def test_select_draws_one_plot_per_score_by_language():
    plots = score_plots(
        {
            "lang_score": {"histogram": {"edges": [0.0, 0.5, 1.0], "counts": {"all": [2, 5], "en": [1, 4]}}},
            "toxicity_score": {"n": 0},
        }
    )

    assert len(plots) == 1 and "lang_score by language" in plots[0]


def test_decontamination_draws_documents_per_benchmark_only_when_some_were_hit():
    assert "Contamination by benchmark" in contamination_html(DECONTAM, "### Decontamination\n\nHit.")
    assert "<svg" not in contamination_html({}, "### Decontamination\n\nNothing checked.")
