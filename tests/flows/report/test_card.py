"""The dataset card's text and header, from what a run knows (no run here)."""

from __future__ import annotations

import yaml

from flows.report.card import Source, StageCard, base_language, dataset_card, size_category


def card(**overrides) -> str:
    arguments = dict(
        title="news",
        version="v2",
        previous="v1",
        rows=12_345,
        sources=[Source(f"part-{i}.jsonl", 1000, f"size=1000;md5={i}") for i in range(60)],
        stages=[
            StageCard("read", 2, 20_000, 20_000, {}, {"max_shard_bytes": 8}),
            StageCard("clean", 4, 20_000, 12_345, {"c4:curly_bracket": 5, "fineweb:line_punct_ratio": 900}, {}),
        ],
        results=["### Fuzzy dedup\n\n3 clusters."],
        languages={"en": 12_000, "zh": 300, "sr_Latn": 44, "": 1},
        limits=[("pii", "not detected: person, location")],
        licenses={"": 12_000, "cc-by-4.0": 345},
    )
    return dataset_card(**(arguments | overrides))


def test_the_header_is_what_the_hub_reads():
    header = yaml.safe_load(card().split("---\n")[1])

    assert header["size_categories"] == ["10K<n<100K"] and header["license"] == ["cc-by-4.0", "unknown"]
    assert header["language"] == ["en", "sr", "zh"]
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "data/*.parquet"}]
    all_declared = card(licenses={"cc-by-4.0": 12_000, "cc0-1.0": 345})
    assert yaml.safe_load(all_declared.split("---\n")[1])["license"] == ["cc-by-4.0", "cc0-1.0"]
    assert yaml.safe_load(card(licenses={}).split("---\n")[1])["license"] == ["unknown"]


def test_the_body_lists_sources_stages_reasons_results_languages_and_limits():
    text = card()

    assert "60 input files, 60,000 bytes." in text and "| and 10 more | | |" in text
    assert "| clean | 4 | 20,000 | 12,345 | `fineweb:line_punct_ratio` 900, `c4:curly_bracket` 5 |" in text
    assert "<details><summary>read</summary>" in text and "max_shard_bytes: 8" in text
    assert "### Fuzzy dedup" in text and "| sr_Latn | 44 | 0.4% |" in text and "| unknown | 1 |" in text
    assert "- **pii**: not detected: person, location" in text and "replaces `v1`" in text
    assert "| none declared | 12,000 | 97.2% |" in text and "| cc-by-4.0 | 345 | 2.8% |" in text


def test_size_categories_and_language_codes_follow_the_hub():
    assert [size_category(n) for n in (0, 999, 1000, 2_500_000)] == ["n<1K", "n<1K", "1K<n<10K", "1M<n<10M"]
    assert [base_language(label) for label in ("en", "zh-Hans", "sr_Latn")] == ["en", "zh", "sr"]
