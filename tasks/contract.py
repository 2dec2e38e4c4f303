"""The data contract every stage shares: document columns, rejected rows, quarantined records.

A shard is one Parquet file of documents. `id` and `text` are required; `url`, `source` and `meta`
(a JSON string of every other input field) are carried as they came, and `source_file`,
`source_record` and `warc_record_id` say where each record was read. Stages append typed columns and
never rewrite another stage's. Rejected rows keep every column plus `reason` (`<family>:<measure>`).
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, model_validator

HTML_SOURCE = "warc:response"  # `source` of documents whose `text` is HTML: the extract stage's input
TEXT_SOURCE = "wet:conversion"  # `source` of WET text records: extraction already done by the crawler

DOC_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("source", pa.string()),
        pa.field("meta", pa.string()),
        # provenance: where the record came from, so any document can be traced back to its input
        pa.field("source_file", pa.string()),  # the input file's path relative to its input root
        pa.field("source_record", pa.int64()),  # 1-based: the line (JSONL, text), row (Parquet) or record (WARC)
        pa.field("warc_record_id", pa.string()),  # a WARC record's WARC-Record-ID; null for other formats
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.binary(), nullable=False),  # the record's first KiB, as bytes
    ]
)


def doc_table(**columns: list) -> pa.Table:
    """Documents in DOC_SCHEMA from the columns given (`id`, `text` at least), the others null."""
    n = len(columns["id"])
    return pa.table(
        [pa.array(columns.get(f.name, [None] * n), f.type) for f in DOC_SCHEMA],
        schema=DOC_SCHEMA,
    )


REASON = "reason"
RAW_PREFIX_BYTES = 1024


class StageOutput(NamedTuple):
    """What a map stage returns for one shard: the documents that go on and those that stop here."""

    kept: pa.Table
    rejected: pa.Table  # `kept`'s schema plus a `reason` string column


def split_by_reason(table: pa.Table, reasons: pa.Array) -> StageOutput:
    """Route rows with a null reason to `kept` and the rest, with their reason, to `rejected`."""
    keep = pc.is_null(reasons)
    kept = table.filter(keep)
    rejected = table.append_column(REASON, reasons.cast(pa.string())).filter(pc.invert(keep))
    return StageOutput(kept, rejected)


def reason_counts(rejected: pa.Table) -> dict[str, int]:
    """Drops by reason code, for the funnel."""
    if rejected.num_rows == 0:
        return {}
    counts = pc.value_counts(rejected.column(REASON))
    return {row["values"]: row["counts"] for row in counts.to_pylist()}


class RecomputedOnLoad(BaseModel):
    """Params with a computed field (a file's fingerprint) dump it; loading the dump back recomputes it.

    Subclasses declare their fingerprints as `computed_field`s; the one before-validator here drops
    them from the input, so a dumped config (YAML, a model card, a Prefect parameter) loads back under
    `extra="forbid"` and the fingerprint is read from the file again, never trusted from the dump.
    """

    @model_validator(mode="before")
    @classmethod
    def _ignore_derived(cls, data):
        derived = cls.model_computed_fields
        return {k: v for k, v in data.items() if k not in derived} if isinstance(data, dict) else data
