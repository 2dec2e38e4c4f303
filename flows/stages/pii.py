"""`pii`: find personal data per entity type, then redact or tag it (`tasks/pii/`), and its report
section: documents and spans per type, with an example of each in context.

Two phases: `pii.spans` detects, keyed on what finds PII only; `pii` acts on the spans, so a new
placeholder or action detects nothing again.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import tasks.pii
import tasks.pii.report
from flows.engine.context import RunContext
from flows.engine.stage import Phase, Stage, reads_text
from flows.engine.store import StageRef
from flows.report.section import Section, html_table, markdown_html

EXAMPLES_PER_TYPE = 3
COUNT_COLUMNS = [tasks.pii.count_column(entity) for entity in tasks.pii.ENTITY_TYPES]


def report_section(ctx: RunContext, upstream: StageRef | None, ref: StageRef) -> Section:
    """Counts from every shard's count columns; examples from the first shards that hold them."""
    params = STAGE.params(ctx.cfg)
    counts = [ctx.store.read_view(ref.stage, shard, COUNT_COLUMNS) for shard in ref.shards]
    totals = tasks.pii.report.count_totals(counts)
    wanted = {entity: min(EXAMPLES_PER_TYPE, t["spans"]) for entity, t in totals.items()}
    examples: dict[str, list[str]] = {}
    for shard, shard_counts in zip(ref.shards, counts):
        missing = {entity: n - len(examples.get(entity, ())) for entity, n in wanted.items()}
        if not any(n > 0 and _holds(shard_counts, entity) for entity, n in missing.items()):
            continue  # the text is read only from shards that hold a span still wanted
        table = ctx.store.read_view(ref.stage, shard, ["text", tasks.pii.SPANS_COLUMN])
        for entity, found in tasks.pii.report.samples(table, missing).items():
            examples.setdefault(entity, []).extend(found)
    n_docs = sum(table.num_rows for table in counts)
    data, head, table = tasks.pii.report.summary(totals, examples, n_docs, params)
    markdown = "### PII\n\n" + head + (f"\n\n{table}" if table else "")
    rows = [
        {
            "type": entity,
            "documents": entry["documents"],
            "spans": entry["spans"],
            "examples": " / ".join(entry["examples"]) or "-",
        }
        for entity, entry in data["types"].items()
    ]
    columns = ["type", "documents", "spans", "examples"]
    body = markdown_html(head) + (html_table(rows, columns) if params.enabled else "")
    return Section("pii", "pii-report", data, markdown, body)


def _holds(counts: pa.Table, entity: str) -> bool:
    return (pc.sum(counts.column(tasks.pii.count_column(entity))).as_py() or 0) > 0


def limits(params: tasks.pii.PiiParams) -> tuple[str, ...]:
    """What PII detection leaves, for the dataset card."""
    if not params.enabled:
        return ("off: personal data was neither detected nor redacted",)
    missing = [name for name in tasks.pii.ENTITY_TYPES if name not in params.types]
    notes = [f"not detected: {', '.join(missing)}"] if missing else []
    if params.action == "tag":
        notes.append("found spans were tagged (`pii_spans`), not redacted: the text still holds them")
    return tuple(notes)


STAGE = Stage(
    "pii",
    tasks.pii,
    tasks.pii.PiiParams,
    phases=(
        Phase("pii.spans", tasks.pii.detect, params=tasks.pii.PiiParams.detection_params, reads=reads_text),
        Phase("pii", tasks.pii.apply, reads=lambda params: ("text", tasks.pii.FOUND_COLUMN)),
    ),
    limits=limits,
    report=report_section,
)
