"""The HTML report: header, dataset version, funnel, then every section a run produced, in run order,
from the summary and the sections alone (no Prefect, no Dask)."""

from flows.report.html import render
from flows.report.section import Section

FUNNEL = [
    {
        "stage": "read",
        "docs_in": 10,
        "docs_out": 9,
        "drops": {"read:invalid_json": 1},
        "seconds": 0.1,
        "cached": False,
        "why": "first run of this output",
    },
    {
        "stage": "select",
        "docs_in": 9,
        "docs_out": 7,
        "drops": {"select:lang_score": 2},
        "seconds": 0.1,
        "cached": True,
        "why": "unchanged",
    },
]
SUMMARY = {
    "run_id": "r1",
    "version": "v1",
    "rows": 7,
    "seconds": 1.5,
    "output": "out/versions/v1/data",
    "funnel": FUNNEL,
    "delta": {
        "previous_version": "v0",
        "version": "v1",
        "added": 2,
        "added_from_new_shards": 2,
        "added_in_existing_shards": 0,
        "removed": 1,
        "removed_by_reason": {"select:lang_score": 1},
        "new_shards": ["b.jsonl"],
        "removed_shards": [],
    },
}
FIGURED = Section(
    "alpha", "alpha-report", {}, "### Alpha section\n\nFirst paragraph.", "<figure id='alpha-body'></figure>"
)
PLAIN = Section("beta", "beta-report", {}, "### Beta section\n\nThe `beta:measure` rule.\n\nSecond paragraph.")


def test_the_page_has_the_funnel_and_the_delta_with_its_reasons():
    page = render(SUMMARY, [])

    for title in ("Documents in and out of each stage", "drop reasons"):
        assert title in page, title
    assert page.count("<svg") == 2
    assert "removed 1: <code>select:lang_score</code> 1" in page
    assert "first run of this output" in page


def test_each_section_follows_in_run_order_with_its_html_or_else_its_markdown():
    page = render(SUMMARY, [FIGURED, PLAIN])

    assert page.index("<h2>Alpha section</h2>") < page.index("<h2>Beta section</h2>")
    assert "<figure id='alpha-body'></figure>" in page and "First paragraph." not in page
    assert "<p>The <code>beta:measure</code> rule.</p><p>Second paragraph.</p>" in page


def test_a_section_headline_is_its_title_and_first_paragraph():
    section = Section("delta", "dataset-delta", {}, "### Dataset version v1\n\nAdded 2.\n\n| table |")

    assert section.headline == "Dataset version v1: Added 2."
