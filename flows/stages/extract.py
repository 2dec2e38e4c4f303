"""`extract`: main-content text from the HTML of WARC responses, and the licence each page or record
declares (`tasks/extract.py`, `tasks/licenses.py`); its report section counts the licences."""

from __future__ import annotations

from collections import Counter

import tasks.extract
from flows.engine.context import RunContext
from flows.engine.stage import Stage
from flows.engine.store import StageRef
from flows.report.section import Section, html_table, markdown_html


def licence_section(ctx: RunContext, upstream: StageRef | None, ref: StageRef) -> Section:
    """Documents per declared licence among those extract kept, from the `license` column only."""
    counts: Counter = Counter()
    for shard in ref.shards:
        counts.update(ctx.store.read_view(ref.stage, shard, ["license"]).column("license").to_pylist())
    total = sum(counts.values())
    declared = {lic: n for lic, n in counts.most_common() if lic}
    head = (
        f"### Licences\n\n{total - sum(declared.values()):,} of {total:,} documents declare no licence. "
        + (
            "The others: " + ", ".join(f"`{lic}` {n:,}" for lic, n in declared.items()) + "."
            if declared
            else "No document declares one."
        )
        + " Keep only some with `select.licenses`."
    )
    rows = [{"licence": lic, "documents": n} for lic, n in declared.items()]
    body = markdown_html(head) + (html_table(rows, ["licence", "documents"]) if rows else "")
    return Section("licenses", "licenses-report", {"documents": total, "declared": declared}, head, body)


STAGE = Stage(
    "extract",
    tasks.extract,
    tasks.extract.ExtractParams,
    reads=lambda params: ("text", "source", "meta"),  # meta: a record's own licence field
    report=licence_section,
)
