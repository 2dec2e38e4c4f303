"""The HTML report renders every section a run produced, from the summary alone (no Prefect, no Dask)."""

from flows.html_report import render
from flows.sections import Section, dedup_markdown

FUNNEL = [
    {"stage": "read", "docs_in": 10, "docs_out": 9, "drops": {"read:invalid_json": 1}, "seconds": 0.1, "cached": False,
     "why": "first run of this output"},
    {"stage": "select", "docs_in": 9, "docs_out": 7, "drops": {"select:lang_score": 2}, "seconds": 0.1, "cached": True,
     "why": "unchanged"},
]
SUMMARY = {
    "run_id": "r1", "version": "v1", "rows": 7, "seconds": 1.5, "output": "out/versions/v1/data", "funnel": FUNNEL,
    "delta": {"previous_version": "v0", "version": "v1", "added": 2, "added_from_new_shards": 2, "added_in_existing_shards": 0,
              "removed": 1, "removed_by_reason": {"select:lang_score": 1}, "new_shards": ["b.jsonl"], "removed_shards": []},
    "score_thresholds": {"lang_score": {"histogram": {"edges": [0.0, 0.5, 1.0], "counts": {"all": [2, 5], "en": [1, 4]}}}},
    "dedup_fuzzy": {
        "clusters": 1, "docs_in_clusters": 2, "cluster_sizes": {"2": 1}, "jaccard_threshold": 0.7, "bands": 17, "rows": 4,
        "verify_min_matches": 69, "num_perm": 112, "removal_at_threshold": 0.97,
        "removal_probability": {"0.00": 0.0, "0.50": 0.009, "0.60": 0.392, "0.70": 0.97, "0.80": 1.0, "0.90": 1.0},
        "sampled_pairs": 1, "precision_estimate": 1.0, "sampled_jaccard_min": 0.9,
    },
    "decontam": {"benchmarks": {"gsm8k": {"documents": 3, "documents_rejected": 3, "items_hit": 2, "by_method": {"ngram": 3},
                                          "examples": []}}, "documents": []},
}


def test_every_section_has_its_plot_and_the_delta_its_reasons():
    page = render(SUMMARY)

    for title in ("Documents in and out of each stage", "drop reasons", "lang_score by language",
                  "Fuzzy duplicate cluster sizes", "Expected removal by Jaccard (S-curve)", "Contamination by benchmark"):
        assert title in page, title
    assert page.count("<svg") == 6
    assert "removed 1: <code>select:lang_score</code> 1" in page
    assert "first run of this output" in page


def test_sections_a_run_did_not_produce_are_left_out():
    page = render({**SUMMARY, "decontam": {}, "dedup_fuzzy": {"cluster_sizes": {}}, "score_thresholds": {}})

    assert page.count("<svg") == 2
    assert "Contamination" not in page


def test_fuzzy_dedup_section_states_the_layout_verification_and_s_curve():
    markdown = dedup_markdown(SUMMARY["dedup_fuzzy"])

    assert "Target Jaccard 0.7: 17 x 4 LSH bands, verified at >= 69 of 112 agreeing MinHash values" in markdown
    assert "0.50: 0.01 | 0.60: 0.39 | 0.70: 0.97 | 0.80: 1.00 | 0.90: 1.00; at the target 0.97" in markdown
    assert "1.0 reach the target Jaccard 0.7" in markdown


def test_a_section_headline_is_its_title_and_first_paragraph():
    section = Section("delta", "dataset-delta", {}, "### Dataset version v1\n\nAdded 2.\n\n| table |")

    assert section.headline == "Dataset version v1: Added 2."
