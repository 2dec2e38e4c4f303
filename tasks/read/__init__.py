"""The `read` stage: one input file (JSONL, Parquet, plain text, WARC/WET) -> documents + quarantine.

Every input record becomes either a row of `contract.DOC_SCHEMA` or a row of
`contract.QUARANTINE_SCHEMA` with a `read:<measure>` reason and its first KiB, so nothing vanishes
(`tasks/contract.py`). Structural problems a user can fix (a missing file, a Parquet file without
the text column, an unknown suffix) raise `InputError` instead.

WARC/WET files give one document per HTML `response` record (`source` = `HTML_SOURCE`: HTML, which
the `extract` stage turns into text) and per `conversion` record (`source` = `TEXT_SOURCE`); every
other record is a counted quarantine row.

Ids are stable across runs: the record's own id field when it has one (ints stringified; a WARC
record's WARC-Record-ID), else `<relpath>:<n>` (1-based line, Parquet row or WARC record), and plain
text files are one document with id `<relpath>`. Ids are unique within a file: a repeat is
quarantined, the first wins.

A file is read as a stream of parts (`read_parts`), split between records and each holding at most
`max_shard_bytes` of rows, so a 1 GB WARC or a 5 GB JSONL file is read in bounded memory (issue #14);
the parts joined are `run`'s one table, whatever the limit.

A compressed file that is cut short (`read:truncated_stream`) or holds a gzip member / zstd frame
that does not decode (`read:corrupt_member`, garbage after the end included) keeps every record that
decodes: the break is one quarantine row at the line (record) where reading stopped, its `raw`
`offset=<compressed byte>: <what broke>` then the first bytes of the record it cuts through, and
reading goes on at the next member found after it (`tasks/io.py`, `iter_decoded`). With
`on_corrupt_file="fail"` the break is an `InputError` instead.

One module per format: `jsonl`, `parquet`, `text`, `warc` (which says how WARC and WET records
become documents, and why warcio); `columns` fills the rows and seals the parts; `json_codec` is
orjson when installed, the standard library otherwise, with the same results.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.contract import HTML_SOURCE, TEXT_SOURCE
from tasks.io import detect_format, salvage_lines
from tasks.read.columns import Columns
from tasks.read.jsonl import read_jsonl
from tasks.read.parquet import read_parquet
from tasks.read.text import read_text
from tasks.read.warc import HTML_CONTENT_TYPES, read_warc

__all__ = [
    "HTML_CONTENT_TYPES",
    "HTML_SOURCE",
    "REASONS",
    "TEXT_SOURCE",
    "VERSION",
    "ReadParams",
    "read_parts",
    "run",
]

VERSION = 3  # bump when the same input + params give different output


class ReadParams(BaseModel):
    """How input files are parsed. Field names follow the JSONL convention of datatrove and dolma."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["auto", "jsonl", "parquet", "text", "warc"] = Field(
        "auto",
        description="Input format; 'auto' picks by suffix: .jsonl/.json/.ndjson, .parquet, .txt "
        "(JSONL and text optionally .gz or .zst), .warc/.wet (WARC and WET, compressed or not).",
    )
    text_field: str = Field("text", description="Field (JSONL) or column (Parquet) holding the document text.")
    id_field: str = Field(
        "id", description="Field holding the record's id; when absent, the id is '<relpath>:<line>'."
    )
    url_field: str = Field("url", description="Field holding the document URL, carried as `url`.")
    source_field: str = Field("source", description="Field holding the document's source, carried as `source`.")
    # "quarantine" (issue #19): a 10,000-file crawl must not stop at its first cut download. The
    # records that decode are read and the break is a quarantine row the funnel counts, so it is
    # seen, not hidden. datatrove's JsonlReader (pipeline/readers/jsonl.py) also goes on: it skips a
    # line json.loads rejects and stops a file at a UnicodeDecodeError, keeping the documents before
    # it, with a logged warning as the only trace.
    on_corrupt_file: Literal["quarantine", "fail"] = Field(
        "quarantine",
        description="A compressed file cut short or with a member that does not decode: 'quarantine' "
        "keeps every record that decodes and quarantines the break (read:truncated_stream, "
        "read:corrupt_member, with its byte offset); 'fail' stops the run with an InputError.",
    )
    # 8 MiB (~7 MB of text at bench/corpus.py's ~480 bytes a document): peak RSS per worker of
    # the default DAG is lowest with shards of 4-8 MB of text. Measured 2026-12-01 at 4fc2c25, as
    # bench/store_footprint.py runs the flow (cold, 2 single-threaded workers), on 150,000
    # bench/corpus.py documents (63 MB of text) split into 32 / 16 / 8 / 4 / 2 gzip files, one shard
    # each: 2.1 / 4.0 / 8.0 / 15.8 / 31.6 MB of text per shard gave 840 / 748 / 755 / 805 / 962 MiB.
    # Larger shards hold more text per task; many smaller ones cost more than they save. 8 MiB
    # halves the shard count of 4 MiB for ~1% more. (#14's 600 MiB is out of reach at this corpus
    # size whatever the shards; at 50,000 documents, 8 files of 2.6 MB gave 605-610, one of 21 MB 699.)
    max_shard_bytes: int = Field(
        8 * 2**20,
        ge=1,
        description="Most bytes of one shard of read documents (their text, id, url, source and meta, "
        "plus quarantined records' first KiB): a larger input file is read as several shards, split "
        "between records, so a worker's memory does not grow with the file. A document larger than "
        "this is a shard of its own.",
    )


# The one registry of this stage's reason codes: code -> what it measures.
REASONS: dict[str, str] = {
    "read:invalid_utf8": "the record's bytes do not decode as UTF-8",
    "read:invalid_json": "the line is not valid JSON (or encodes text Arrow cannot store)",
    "read:not_an_object": "the line is valid JSON but not an object",
    "read:missing_text": "the record has no text field",
    "read:text_not_string": "the text field is null or not a string",
    "read:duplicate_id": "the record's id repeats an earlier id in the same file (the first wins)",
    "read:nesting_depth": "the record's other fields nest deeper than its meta JSON can be encoded",
    "read:empty_file": "the file holds no record at all",
    "read:warc_record_type": "a WARC record that holds no document (request, metadata, warcinfo, ...)",
    "read:warc_content_type": "a WARC response whose payload is not HTML (image, PDF, ...)",
    "read:warc_corrupt": "a WARC record cut short or unparseable; reading resumes at the next gzip "
    "member (an uncompressed file stops there)",
    "read:truncated_stream": "the compressed data ends inside a gzip member or zstd frame (a cut "
    "download); raw: `offset=<byte>: ...`, then the start of the record it cuts; nothing follows",
    "read:corrupt_member": "a gzip member or zstd frame that does not decode (bad data, bad header, "
    "garbage after the end); raw: `offset=<byte>: ...`; reading resumes at the next member found",
}


# ---- the stage ----------------------------------------------------------------------------------


def read_parts(path: str, relpath: str, params: ReadParams) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Read one input file as a stream of bounded parts, each `(documents, quarantine)`.

    The file is read record by record and never held whole: a part is yielded as soon as the next
    record would not fit in it, so memory follows `params.max_shard_bytes`, not the file's size.

    Contract (the read stage writes each part as one shard):
        - Parts come in file order and split only between records: concatenating every part's
          documents, and every part's quarantine rows, gives exactly `run`'s two tables, row for row
          (same ids, columns and order, whatever `max_shard_bytes` is).
        - A part holds at most `max_shard_bytes` bytes: its documents' UTF-8 strings (`text`, `id`,
          `url`, `source`, `meta`) plus its quarantine rows' `raw` (at most 1 KiB each). Only a part
          of one row is larger: a document bigger than the limit is a part of its own.
        - A quarantine row is in the part that was open when its record was met: with the documents
          read just before it, or first in the next part when it would not fit. A part may hold
          quarantine rows only (a file whose records are all bad, a break row that overflows).
        - No part is empty, and every file gives at least one: a file without records gives one part
          holding its `read:empty_file` row.
        - Ids are the record's own id field (ints stringified), else `<relpath>:<n>`, `n` the 1-based
          line (JSONL), row (Parquet) or record number (WARC, which uses its WARC-Record-ID first);
          a text file is the one document `<relpath>`. Numbers count from the start of the file, not
          of the part, and `read:duplicate_id` compares ids across the whole file (the first wins),
          so parts change neither. Quarantine `line`s are numbered the same way.
        - What the whole file keeps in memory is its ids, for `read:duplicate_id`: about 115 bytes
          a record (a set of 1M ids like `crawl/part-1.jsonl.gz:123`: 114 MB), never the text. One
          record is held whole, however long: a JSONL line, a WARC payload, a whole `.txt` file.

    Args:
        path: a local path or fsspec URL; `.gz` and `.zst` are decompressed by suffix.
        relpath: the file's name relative to the input root, used in derived ids and `source_file`.
        params: format, field names, `max_shard_bytes` and what a broken compressed stream does.

    Yields:
        `(documents, quarantine)` with exactly `contract.DOC_SCHEMA` and `contract.QUARANTINE_SCHEMA`.

    Raises:
        InputError, while iterating: the file does not exist, its format cannot be told, (Parquet) it
            cannot be read or lacks the text column, or (`on_corrupt_file="fail"`) its compressed
            stream breaks. Parts yielded before the error are then not the whole file: discard them.

    Example:
        >>> parts = read_parts("crawl/a.warc.gz", "a.warc.gz", ReadParams())  # doctest: +SKIP
        >>> for docs, quarantine in parts:  # doctest: +SKIP
        ...     write_shard(docs, quarantine)
    """
    fmt = detect_format(path) if params.format == "auto" else params.format
    cols = Columns(relpath, params.max_shard_bytes, REASONS)
    if fmt == "jsonl":
        yield from read_jsonl(cols, salvage_lines(path), path, params)
    elif fmt == "parquet":
        yield from read_parquet(cols, path, params)
    elif fmt == "warc":
        yield from read_warc(cols, path, params)
    else:
        read_text(cols, path, params)
    yield from cols.finish()


def run(path: str, relpath: str, params: ReadParams) -> tuple[pa.Table, pa.Table]:
    """Read one input file into documents and quarantined records: every part of `read_parts`, joined.

    The whole file's rows are in memory: for files that fit (tests, `winnow train`); the read stage
    reads large files with `read_parts`.

    Args:
        path: a local path or fsspec URL; `.gz` and `.zst` are decompressed by suffix.
        relpath: the file's name relative to the input root, used in derived ids and `source_file`.
        params: format, field names and what a broken compressed stream does (`on_corrupt_file`).

    Returns:
        `(documents, quarantine)` with exactly `contract.DOC_SCHEMA` and `contract.QUARANTINE_SCHEMA`.

    Raises:
        InputError: as `read_parts`.

    Example:
        >>> docs, quarantine = run("crawl/a.jsonl.gz", "a.jsonl.gz", ReadParams())  # doctest: +SKIP
    """
    parts = list(read_parts(path, relpath, params))
    return (
        pa.concat_tables([docs for docs, _ in parts]).combine_chunks(),
        pa.concat_tables([quarantine for _, quarantine in parts]).combine_chunks(),
    )
