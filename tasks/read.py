"""The `read` stage: one input file (JSONL, Parquet, plain text, WARC/WET) -> documents + quarantine.

Every input record becomes either a row of `contract.DOC_SCHEMA` or a row of
`contract.QUARANTINE_SCHEMA` with a `read:<measure>` reason and its first KiB, so nothing vanishes
(DESIGN §Data contract, STYLE §6). Structural problems a user can fix (a missing file, a Parquet
file without the text column, an unknown suffix) raise `InputError` instead.

Ids are stable across runs: the record's own id field when it has one (ints stringified), else
`<relpath>:<line>` (1-based line, or row for Parquet), and plain text files are one document with
id `<relpath>`. Ids are unique within a file: a repeat is quarantined, the first wins.

A file is read as a stream of parts (`read_parts`), split between records and each holding at most
`max_shard_bytes` of rows, so a 1 GB WARC or a 5 GB JSONL file is read in bounded memory (issue #14);
the parts joined are `run`'s one table, whatever the limit.

WARC and WET files (Common Crawl's `.warc.gz`, `.warc.wet.gz`) give one document per `response`
record holding HTML (`text` = the HTML decoded with the HTTP charset, else the detected one;
`source` = "warc:response", which tells the `extract` stage to turn it into text) and per
`conversion` record (`text` as is; `source` = "wet:conversion"). `id` is the WARC-Record-ID, `url`
the WARC-Target-URI; record headers go to `meta`. Every other record (request, metadata, warcinfo,
non-HTML responses) is skipped with a counted quarantine row whose `raw` is its WARC header; a record
cut short or a stream that stops parsing is `read:warc_corrupt`, and reading resumes at the next gzip
member (Common Crawl writes one per record; an uncompressed file stops there). The parser
is warcio: fastwarc reads 3.5x more records/s, but stops without an error on a malformed file
(ccnet's LF-terminated sample) where warcio raises, and reading is <1% of extraction's cost
(`bench/extraction.py`).

A compressed file that is cut short (`read:truncated_stream`) or holds a gzip member / zstd frame
that does not decode (`read:corrupt_member`, garbage after the end included) keeps every record that
decodes: the break is one quarantine row at the line (record) where reading stopped, its `raw`
`offset=<compressed byte>: <what broke>` then the first bytes of the record it cuts through, and
reading goes on at the next member found after it (`tasks/io.py`, `iter_decoded`). With
`on_corrupt_file="fail"` the break is an `InputError` instead.

JSON parsing uses orjson when installed (it also validates UTF-8 and rejects lone surrogates, so
anything it accepts Arrow can store), the standard library otherwise.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Generator, Iterable, Iterator
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field
from resiliparse.parse.encoding import detect_encoding
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA, RAW_PREFIX_BYTES
from tasks.errors import InputError
from tasks.io import (
    DECOMPRESS_ERRORS,
    Decoded,
    StreamBreak,
    detect_format,
    iter_decoded,
    open_input,
    salvage_lines,
)

try:
    import orjson
except ImportError:  # optional speed-up; the json fallback gives the same documents
    orjson = None

VERSION = 2  # bump when the same input + params give different output

_BOM = b"\xef\xbb\xbf"
_MISSING = object()  # a field absent from a record, told apart from a null one


class ReadParams(BaseModel):
    """How input files are parsed. Field names follow the JSONL convention of datatrove and dolma."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["auto", "jsonl", "parquet", "text", "warc"] = Field(
        "auto",
        description="Input format; 'auto' picks by suffix: .jsonl/.json/.ndjson, .parquet, .txt "
        "(JSONL and text optionally .gz or .zst), .warc/.wet (WARC and WET, compressed or not).",
    )
    text_field: str = Field(
        "text", description="Field (JSONL) or column (Parquet) holding the document text."
    )
    id_field: str = Field(
        "id", description="Field holding the record's id; when absent, the id is '<relpath>:<line>'."
    )
    url_field: str = Field("url", description="Field holding the document URL, carried as `url`.")
    source_field: str = Field(
        "source", description="Field holding the document's source, carried as `source`."
    )
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
_BREAK_REASONS = {"truncated_stream": "read:truncated_stream", "corrupt_member": "read:corrupt_member"}
_PARQUET_BATCH_ROWS = 1024  # rows decoded at once: 2 MB at FineWeb's ~2 KB documents
_PARQUET_BUFFER_BYTES = 1 << 20  # column chunks read page by page in 1 MiB reads, not a row group at once


_Part = tuple[pa.Table, pa.Table]  # (documents, quarantine) of one part of a file
_BATCH_ROWS = 4096  # rows kept as Python lists before they become Arrow arrays: bounds that overhead


def _utf8_len(value: str | None) -> int:
    if value is None:
        return 0
    return len(value) if value.isascii() else len(value.encode())


class _Columns:
    """The rows of the part being read, filled record by record; full parts are sealed as Arrow.

    A row's bytes are a document's UTF-8 strings (id, text, url, source, meta) or a quarantine row's
    `raw`. Before a row that would take the part past `max_bytes`, a part holding a row already is
    sealed into `sealed`, which the readers yield at their next record boundary (`ready`). Rows
    become Arrow every `_BATCH_ROWS`, so Python objects stay few whatever the documents' sizes. Only
    `seen` (the ids, for `read:duplicate_id`) and `n_rows` span the whole file.
    """

    def __init__(self, relpath: str, max_bytes: int) -> None:
        self.relpath = relpath
        self.max_bytes = max_bytes
        self.seen: set[str] = set()
        self.n_rows = 0  # rows of the whole file so far
        self.sealed: list[_Part] = []
        self._new_part()

    def _new_part(self) -> None:
        self.n_part_rows = 0
        self.part_bytes = 0
        self.doc_batches: list[pa.RecordBatch] = []
        self.q_batches: list[pa.RecordBatch] = []
        self._new_batch()

    def _new_batch(self) -> None:
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.urls: list[str | None] = []
        self.sources: list[str | None] = []
        self.metas: list[str | None] = []
        self.q_lines: list[int] = []
        self.q_reasons: list[str] = []
        self.q_raws: list[bytes] = []

    def _admit(self, nbytes: int) -> None:
        """Make room for a row of `nbytes`: seal the part first when the row would overflow it."""
        if self.n_part_rows and self.part_bytes + nbytes > self.max_bytes:
            self._seal()
        self.n_part_rows += 1
        self.n_rows += 1
        self.part_bytes += nbytes

    def _batch(self) -> None:
        if self.ids:
            columns = (self.ids, self.texts, self.urls, self.sources, self.metas)
            self.doc_batches.append(pa.RecordBatch.from_arrays(
                [pa.array(column, pa.string()) for column in columns], schema=DOC_SCHEMA
            ))
        if self.q_lines:
            self.q_batches.append(pa.RecordBatch.from_arrays(
                [
                    pa.array([self.relpath] * len(self.q_lines), pa.string()),
                    pa.array(self.q_lines, pa.int64()),
                    pa.array(self.q_reasons, pa.string()),
                    pa.array(self.q_raws, pa.binary()),
                ],
                schema=QUARANTINE_SCHEMA,
            ))
        self._new_batch()

    def _seal(self) -> None:
        self._batch()
        self.sealed.append((
            pa.Table.from_batches(self.doc_batches or [pa.RecordBatch.from_pylist([], DOC_SCHEMA)]),
            pa.Table.from_batches(self.q_batches or [pa.RecordBatch.from_pylist([], QUARANTINE_SCHEMA)]),
        ))
        self._new_part()

    def quarantine(self, line: int, reason: str, raw: bytes) -> None:
        assert reason in REASONS, reason
        raw = raw[:RAW_PREFIX_BYTES]
        self._admit(len(raw))
        self.q_lines.append(line)
        self.q_reasons.append(reason)
        self.q_raws.append(raw)
        if len(self.q_lines) == _BATCH_ROWS:
            self._batch()

    def add(self, doc_id: str, text: str, url: str | None, source: str | None, meta: str | None) -> bool:
        """Append a document; False (nothing appended) when its id was already seen in this file."""
        if doc_id in self.seen:
            return False
        self.seen.add(doc_id)
        self._admit(sum(map(_utf8_len, (doc_id, text, url, source, meta))))
        self.ids.append(doc_id)
        self.texts.append(text)
        self.urls.append(url)
        self.sources.append(source)
        self.metas.append(meta)
        if len(self.ids) == _BATCH_ROWS:
            self._batch()
        return True

    def ready(self) -> Iterator[_Part]:
        """The parts sealed since the last call, in file order."""
        while self.sealed:
            yield self.sealed.pop(0)

    def finish(self) -> Iterator[_Part]:
        """At the end of the file: the sealed parts, then the open one unless it holds no row."""
        if self.n_part_rows:
            self._seal()
        yield from self.ready()


# ---- JSON helpers: orjson when present, json otherwise, with the same results -------------------

if orjson is not None:
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)

    def _loads(line: bytes) -> Any:
        return orjson.loads(line)

    def _dumps(obj: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # non-str keys or ints past 64 bits (Parquet rows): json handles both
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
else:
    # JSONDecodeError, UnicodeDecodeError/EncodeError are ValueErrors; nesting past the recursion
    # limit is a RecursionError here where orjson reports a JSONDecodeError
    _JSONError = (ValueError, RecursionError)

    def _finite(literal: str) -> float:
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"number {literal} is infinite as a double")
        return value

    def _no_constant(name: str) -> float:
        raise ValueError(f"{name} is not JSON")

    def _loads(line: bytes) -> Any:
        obj = json.loads(line.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
        if b"\\u" in line:  # a lone surrogate escape decodes but Arrow cannot store it (orjson rejects it)
            json.dumps(obj, ensure_ascii=False).encode()
        return obj

    def _dumps(obj: Any) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _record_id(value: Any) -> str | None:
    """A usable id value: a string, or an int stringified (bools are not ids)."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def _stream_break(cols: _Columns, line: int, brk: StreamBreak, path: str, params: ReadParams) -> None:
    """Quarantine a break in the compressed stream at `line`, or raise under on_corrupt_file='fail'.

    `raw` is `offset=<byte>: <what broke>`, a newline, then the first bytes of the record the break
    cuts through: the row stands for that record and says where the file has to be repaired.
    """
    if params.on_corrupt_file == "fail":
        raise InputError(
            f"{path}: corrupt compressed stream ({brk.describe()}); re-fetch or remove the file, or set "
            "input.on_corrupt_file: quarantine to keep the records that decode"
        )
    cols.quarantine(line, _BREAK_REASONS[brk.kind], f"{brk.describe()}\n".encode() + brk.cut)


# ---- formats ------------------------------------------------------------------------------------

def _read_jsonl(
    cols: _Columns, lines: Iterable[bytes | StreamBreak], path: str, params: ReadParams
) -> Iterator[_Part]:
    relpath = cols.relpath
    text_field, id_field = params.text_field, params.id_field
    url_field, source_field = params.url_field, params.source_field
    n_records = 0
    for number, line in enumerate(lines, start=1):
        yield from cols.ready()
        if isinstance(line, StreamBreak):
            # The bytes after the last `\n` before a break are the break's row, not a document nor an
            # `invalid_json` row: the record is not malformed, its end is lost with the stream (and a
            # cut just before its `\n` would even parse). The break takes this line number; after a
            # resumed `corrupt_member` the first line may be the tail of a record whose start was in
            # the lost member: it is parsed like any line (`invalid_json` unless it happens to be whole).
            n_records += 1
            _stream_break(cols, number, line, path, params)
            continue
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM):]
        if not line.strip():
            continue
        n_records += 1
        try:
            record = _loads(line)
        except _JSONError:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                cols.quarantine(number, "read:invalid_utf8", line)
            else:
                cols.quarantine(number, "read:invalid_json", line)
            continue
        if type(record) is not dict:
            cols.quarantine(number, "read:not_an_object", line)
            continue
        text = record.pop(text_field, _MISSING)
        if type(text) is not str:
            reason = "read:missing_text" if text is _MISSING else "read:text_not_string"
            cols.quarantine(number, reason, line)
            continue
        raw_id = record.get(id_field)
        doc_id = _record_id(raw_id)
        if doc_id is not None or raw_id is None:
            record.pop(id_field, None)  # an id of another type (float, object) stays in meta
        if doc_id is None:
            doc_id = f"{relpath}:{number}"
        url = record.get(url_field)
        if url is None or type(url) is str:
            record.pop(url_field, None)
        else:
            url = None  # a non-string url stays in meta, as it came
        source = record.get(source_field)
        if source is None or type(source) is str:
            record.pop(source_field, None)
        else:
            source = None
        try:
            meta = _dumps(record) if record else None
        except RecursionError:  # orjson encodes 254 levels, json about the interpreter's recursion limit
            cols.quarantine(number, "read:nesting_depth", line)
            continue
        if not cols.add(doc_id, text, url, source, meta):
            cols.quarantine(number, "read:duplicate_id", line)
    if n_records == 0:
        cols.quarantine(0, "read:empty_file", b"")


def _row_json(table: pa.Table, index: int) -> bytes:
    """One Parquet row as JSON bytes, the `raw` of its quarantine row."""
    return _dumps(table.slice(index, 1).to_pylist()[0]).encode()


def _string_column(table: pa.Table, name: str, types: tuple[Any, ...]) -> list[str | None] | None:
    """A column as Python strings when it exists with one of `types`, else None (it stays in meta)."""
    if name not in table.column_names:
        return None
    column = table.column(name)
    if not any(check(column.type) for check in types):
        return None
    return column.cast(pa.string()).to_pylist()


def _parquet_batches(file: pq.ParquetFile, path: str) -> Iterator[pa.Table]:
    """The file's rows `_PARQUET_BATCH_ROWS` at a time; data that does not decode is an InputError."""
    batches = file.iter_batches(batch_size=_PARQUET_BATCH_ROWS)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc}); check input.paths") from exc
        yield pa.Table.from_batches([batch])


def _read_parquet(cols: _Columns, path: str, params: ReadParams) -> Iterator[_Part]:
    """Rows batch by batch; `line` (and a derived id's number) is the 1-based row in the file."""
    relpath = cols.relpath
    with open_input(path) as stream:
        try:
            file = pq.ParquetFile(stream, buffer_size=_PARQUET_BUFFER_BYTES)
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc}); check input.paths") from exc
        schema = file.schema_arrow
        names = schema.names
        field = params.text_field
        if field not in names:
            raise InputError(f"{path}: no column {field!r} (found {names}); set input.text_field")
        text_type = schema.field(field).type
        if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
            raise InputError(f"{path}: column {field!r} is {text_type}, not a string; set input.text_field")
        if file.metadata.num_rows == 0:
            cols.quarantine(0, "read:empty_file", b"")
            return
        is_str = (pa.types.is_string, pa.types.is_large_string)
        row = 0
        for table in _parquet_batches(file, path):
            ids = _string_column(table, params.id_field, (*is_str, pa.types.is_integer))
            urls = _string_column(table, params.url_field, is_str)
            sources = _string_column(table, params.source_field, is_str)
            consumed = {field} | {name for name, col in ((params.id_field, ids), (params.url_field, urls),
                                                         (params.source_field, sources)) if col is not None}
            rest = table.drop_columns([name for name in names if name in consumed])
            metas = [_dumps(record) for record in rest.to_pylist()] if rest.num_columns else None
            for i, text in enumerate(table.column(field).to_pylist()):
                yield from cols.ready()
                row += 1
                if text is None:
                    cols.quarantine(row, "read:text_not_string", _row_json(table, i))
                    continue
                doc_id = ids[i] if ids is not None and ids[i] is not None else f"{relpath}:{row}"
                if not cols.add(doc_id, text, urls[i] if urls else None, sources[i] if sources else None,
                                metas[i] if metas else None):
                    cols.quarantine(row, "read:duplicate_id", _row_json(table, i))


def _read_text(cols: _Columns, path: str, params: ReadParams) -> None:
    """The whole file as one document with id `<relpath>`: a file is one record, read at once."""
    relpath = cols.relpath
    chunks, breaks = [], []
    for item in iter_decoded(path):
        if isinstance(item, StreamBreak):
            breaks.append(item)
        else:
            chunks.append(item[0])
    data = b"".join(chunks)
    if breaks:  # the file is one record: with part of it lost, what is left is not the document
        for brk in breaks:
            _stream_break(cols, 1, brk._replace(cut=data), path, params)
        return
    if not data.strip():
        cols.quarantine(0, "read:empty_file", data)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        cols.quarantine(1, "read:invalid_utf8", data)
        return
    cols.add(relpath, text, None, None, None)


# ---- WARC / WET ---------------------------------------------------------------------------------

HTML_SOURCE = "warc:response"  # `source` of documents whose `text` is HTML: the extract stage's input
TEXT_SOURCE = "wet:conversion"  # `source` of WET text records: extraction already done by the crawler
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CONTENT_ENCODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 47}  # zlib wbits 47: gzip or zlib header
# what a stream cut short or garbled raises, from warcio's parser or its own gzip reader (a payload
# that is itself gzip); AttributeError: warcio 1.8's `recordloader.load_http_headers` calls
# `uri.startswith` on a response or request whose header has no WARC-Target-URI (cut or garbled),
# so it is caught around `next(records)` only, never around our own code
_WARC_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, *DECOMPRESS_ERRORS)
_WARC_PARSE_ERRORS = (*_WARC_ERRORS, AttributeError)


def _header_bytes(record: ArcWarcRecord) -> bytes:
    """The record's WARC header (status line + fields): its quarantine `raw`."""
    return record.rec_headers.to_bytes()


def _decode_html(body: bytes, charset: str | None) -> tuple[str, str]:
    """HTML bytes as text, with the HTTP charset when Python knows it, else the detected one."""
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    if not charset:  # resiliparse reads <meta charset> and falls back to byte statistics
        charset = detect_encoding(body, from_html_meta=True) or "utf-8"
    return body.decode(charset, errors="replace"), charset


def _content_type(value: str | None) -> tuple[str | None, str | None]:
    """`text/html; charset=UTF-8` -> ("text/html", "utf-8")."""
    if not value:
        return None, None
    mime, _, params = value.partition(";")
    match = _CHARSET.search(params)
    return mime.strip().lower() or None, match.group(1).lower() if match else None


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


def _read_body(record: ArcWarcRecord) -> bytes | None:
    """The record's payload as stored; None when the stream ends before its Content-Length or the
    header has no usable Content-Length (garbled), so where the record ends is unknown."""
    if record.length is None:
        return None
    body = record.raw_stream.read()
    header_len = record.http_headers.total_len if record.http_headers is not None else 0
    return body if header_len + len(body) >= record.length else None


def _add_warc_doc(cols: _Columns, number: int, record: ArcWarcRecord, text: str, source: str,
                  content_type: str | None, charset: str | None) -> None:
    headers = record.rec_headers
    record_id = headers.get_header("WARC-Record-ID")
    doc_id = record_id.strip("<>") if record_id else f"{cols.relpath}:{number}"
    url = headers.get_header("WARC-Target-URI")
    meta = _dumps({
        "warc_record_id": record_id,
        "warc_date": headers.get_header("WARC-Date"),
        "content_type": content_type,
        "http_charset": charset,
        "warc_identified_language": headers.get_header("WARC-Identified-Content-Language"),
    })
    if not cols.add(doc_id, text, url.strip("<>") if url else None, source, meta):
        cols.quarantine(number, "read:duplicate_id", _header_bytes(record))


def _read_response(cols: _Columns, number: int, record: ArcWarcRecord) -> bool:
    """One response record -> a document or a quarantine row; False (no row) when it is cut short."""
    http = record.http_headers
    content_type, charset = _content_type(http.get_header("Content-Type") if http is not None else None)
    if content_type is None:  # Common Crawl's payload sniffing, when the server sent no type
        content_type, _ = _content_type(record.rec_headers.get_header("WARC-Identified-Payload-Type"))
    if content_type not in HTML_CONTENT_TYPES:
        cols.quarantine(number, "read:warc_content_type", _header_bytes(record))
        return True
    body = _read_body(record)
    if body is None:
        return False
    encoding = (http.get_header("Content-Encoding") or "").strip().lower() if http is not None else ""
    if encoding in _CONTENT_ENCODINGS:  # Common Crawl stores payloads decoded; other crawlers may not
        try:
            body = zlib.decompress(body, _CONTENT_ENCODINGS[encoding])
        except zlib.error:
            cols.quarantine(number, "read:warc_corrupt", _header_bytes(record))
            return True
    text, detected = _decode_html(body, charset)
    _add_warc_doc(cols, number, record, text, HTML_SOURCE, content_type, charset or detected)
    return True


def _read_conversion(cols: _Columns, number: int, record: ArcWarcRecord) -> bool:
    body = _read_body(record)
    if body is None:
        return False
    try:
        text = body.decode("utf-8")  # WET conversion records are UTF-8 (Common Crawl's WET format)
    except UnicodeDecodeError:
        cols.quarantine(number, "read:invalid_utf8", _header_bytes(record))
        return True
    content_type, _ = _content_type(record.rec_headers.get_header("Content-Type"))
    _add_warc_doc(cols, number, record, text, TEXT_SOURCE, content_type, None)
    return True


class _Parts:
    """A file's decoded bytes as a stream warcio reads, ending at each break in the compressed data.

    `read` returns b"" at a break (`brk` says which) or at the end of the file (`brk` None); `resume`
    goes on after a break that found a next member. A read never spans two members, so what warcio
    has buffered when it fails is the current member's, and `skip_member` restarts at the next one:
    in a `.warc.gz`, the next record. `head` is the first KiB decoded from the current member.
    """

    def __init__(self, items: Iterator[Decoded | StreamBreak]) -> None:
        self.items = items
        self.chunk, self.pos, self.member, self.head = b"", 0, -1, b""
        self.ended = False  # a read has met a break or the end of the file
        self.brk: StreamBreak | None = None

    def _advance(self) -> None:
        item = next(self.items, None)
        if item is None or isinstance(item, StreamBreak):
            self.ended, self.brk = True, item
            return
        chunk, member = item
        if member != self.member:
            self.head = b""
        self.head += chunk[: RAW_PREFIX_BYTES - len(self.head)]
        self.chunk, self.pos, self.member = chunk, 0, member

    def read(self, size: int = -1) -> bytes:
        while self.pos == len(self.chunk) and not self.ended:
            self._advance()
        end = len(self.chunk) if size is None or size < 0 else self.pos + size
        out = self.chunk[self.pos:end]
        self.pos += len(out)
        return out

    def skip_member(self) -> None:
        member = self.member
        self.chunk, self.pos = b"", 0
        while not self.ended and (self.member == member or not self.chunk):
            self._advance()

    def resume(self) -> bool:
        """After a break: True when decoding goes on at a next member."""
        if self.brk is None or self.brk.resumed_at is None:
            return False
        self.ended, self.brk = False, None
        return True


def _error_bytes(exc: Exception) -> bytes:
    return f"{type(exc).__name__}: {exc}".encode()


def _read_records(
    cols: _Columns, stream: _Parts, number: int
) -> Generator[_Part, None, tuple[int, bytes | None]]:
    """Records until `stream` ends or one fails, yielding the parts they fill; returns (records
    numbered so far, `raw` of the failed one).

    A record that fails is numbered; its row is the caller's, which knows whether a break cut it.
    """
    records = ArchiveIterator(stream, no_record_parse=False, ensure_http_headers=False)
    while True:
        yield from cols.ready()
        try:
            record = next(records)
        except StopIteration:
            return number, None
        except _WARC_PARSE_ERRORS as exc:  # the stream cannot be parsed past here
            return number + 1, _error_bytes(exc)
        number += 1
        try:
            if record.rec_type == "response":
                ok = _read_response(cols, number, record)
            elif record.rec_type == "conversion":
                ok = _read_conversion(cols, number, record)
            else:
                cols.quarantine(number, "read:warc_record_type", _header_bytes(record))
                ok = True
        except _WARC_ERRORS as exc:
            return number, _error_bytes(exc)
        if not ok:
            return number, _header_bytes(record)


def _read_warc(cols: _Columns, path: str, params: ReadParams) -> Iterator[_Part]:
    """Every record of a WARC/WET file; `line` in quarantine rows is the 1-based record number.

    Decompression is `iter_decoded`'s (by suffix), not warcio's, whose reader prints a warning and
    returns a short record at a corrupt or cut gzip member.
    """
    stream = _Parts(iter_decoded(path))
    number = 0
    while True:
        number, failed = yield from _read_records(cols, stream, number)
        if failed is not None and not stream.ended:  # a WARC-level fault in data that decodes
            cols.quarantine(number, "read:warc_corrupt", failed)
            stream.skip_member()
            continue
        if stream.brk is None:  # the end of the file
            if failed is not None:
                cols.quarantine(number, "read:warc_corrupt", failed)
            break
        # A record that failed as the data ran out is the one the break cut: one row, the break's,
        # whose `raw` goes on with what decoded of the broken member (in a .warc.gz, that record).
        # (A fault within warcio's 16 KiB read-ahead of the break is attributed to the break too.)
        if failed is None:  # warcio reads a cut header as the end: the break is the next record
            number += 1
        cut = stream.head if stream.member == stream.brk.member_offset else failed or b""
        _stream_break(cols, number, stream.brk._replace(cut=cut), path, params)
        if not stream.resume():
            break
    if number == 0 and not cols.n_rows:
        cols.quarantine(0, "read:empty_file", b"")


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
    cols = _Columns(relpath, params.max_shard_bytes)
    if fmt == "jsonl":
        yield from _read_jsonl(cols, salvage_lines(path), path, params)
    elif fmt == "parquet":
        yield from _read_parquet(cols, path, params)
    elif fmt == "warc":
        yield from _read_warc(cols, path, params)
    else:
        _read_text(cols, path, params)
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
