"""What the run report says of PII: documents and spans per entity type, and a few spans in context.

Contexts are cut from the text the stage output: under `redact` they show the placeholder, never the
PII; under `tag` they show what redaction would remove, which is what an audit asks for.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tasks.pii import ENTITY_TYPES, SPANS_COLUMN, PiiParams, count_column

CONTEXT_CHARS = 40  # of text on each side of a sampled span


def count_totals(tables: list[pa.Table]) -> dict[str, dict[str, int]]:
    """Per entity type: documents with at least one span, and spans, over tables of count columns."""
    totals = {}
    for entity in ENTITY_TYPES:
        column = count_column(entity)
        docs = spans = 0
        for table in tables:
            counts = table.column(column)
            docs += pc.sum(pc.greater(counts, 0)).as_py() or 0
            spans += pc.sum(counts).as_py() or 0
        totals[entity] = {"documents": docs, "spans": spans}
    return totals


def samples(table: pa.Table, wanted: dict[str, int]) -> dict[str, list[str]]:
    """Up to `wanted[type]` spans per type from a table of `text` and `pii_spans`, each in its context,
    the span between « and »."""
    found: dict[str, list[str]] = {}
    for text, spans in zip(table.column("text").to_pylist(), table.column(SPANS_COLUMN).to_pylist()):
        for span in spans or ():
            entity = span["type"]
            if len(found.get(entity, ())) >= wanted.get(entity, 0):
                continue
            start, end = span["start"], span["end"]
            before = text[max(0, start - CONTEXT_CHARS) : start]
            after = text[end : end + CONTEXT_CHARS]
            found.setdefault(entity, []).append(" ".join(f"{before}«{text[start:end]}»{after}".split()))
    return found


def summary(
    totals: dict[str, dict[str, int]], examples: dict[str, list[str]], n_docs: int, params: PiiParams
) -> tuple[dict, str, str]:
    """The section's data, its headline paragraph and its Markdown table (empty when nothing was found)."""
    data = {
        "documents": n_docs,
        "action": params.action,
        "types": {entity: totals[entity] | {"examples": examples.get(entity, [])} for entity in params.types},
    }
    if not params.enabled:
        return data, "PII detection is off (`pii.enabled`).", ""
    with_any = {entity: t for entity, t in totals.items() if t["spans"]}
    verb = "replaced by placeholders" if params.action == "redact" else "tagged in `pii_spans`, text kept"
    head = (
        f"Of {n_docs:,} documents, spans of {len(with_any)} of {len(params.types)} entity types "
        f"were found and {verb} (`pii.action`: {params.action})."
    )
    lines = [
        f"| {entity} | {t['documents']:,} | {t['spans']:,} | "
        + (f"`{examples[entity][0]}`" if examples.get(entity) else "-")
        + " |"
        for entity, t in with_any.items()
    ]
    table = "| type | documents | spans | example |\n|---|---:|---:|---|\n" + "\n".join(lines) if lines else ""
    return data, head, table
