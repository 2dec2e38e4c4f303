"""The `read` stage: one input file (JSONL, Parquet, plain text, WARC/WET) -> documents + quarantine.

Every input record becomes either a row of `contract.DOC_SCHEMA` or a row of
`contract.QUARANTINE_SCHEMA` with a `read:<measure>` reason and its first KiB, so nothing vanishes
(DESIGN §Data contract, STYLE §6). Structural problems a user can fix (a missing file, a Parquet
file without the text column, an unknown suffix) raise `InputError` instead.

Ids are stable across runs: the record's own id field when it has one (ints stringified), else
`<relpath>:<line>` (1-based line, or row for Parquet), and plain text files are one document with
id `<relpath>`. Ids are unique within a file: a repeat is quarantined, the first wins.

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
from collections.abc import Iterable, Iterator
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


class _Columns:
    """Column lists for both output tables, filled record by record and built into Arrow once."""

    def __init__(self, relpath: str) -> None:
        self.relpath = relpath
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.urls: list[str | None] = []
        self.sources: list[str | None] = []
        self.metas: list[str | None] = []
        self.seen: set[str] = set()
        self.q_lines: list[int] = []
        self.q_reasons: list[str] = []
        self.q_raws: list[bytes] = []

    def quarantine(self, line: int, reason: str, raw: bytes) -> None:
        assert reason in REASONS, reason
        self.q_lines.append(line)
        self.q_reasons.append(reason)
        self.q_raws.append(raw[:RAW_PREFIX_BYTES])

    def add(self, doc_id: str, text: str, url: str | None, source: str | None, meta: str | None) -> bool:
        """Append a document; False (nothing appended) when its id was already seen in this file."""
        if doc_id in self.seen:
            return False
        self.seen.add(doc_id)
        self.ids.append(doc_id)
        self.texts.append(text)
        self.urls.append(url)
        self.sources.append(source)
        self.metas.append(meta)
        return True

    def tables(self) -> tuple[pa.Table, pa.Table]:
        docs = pa.Table.from_arrays(
            [pa.array(c, pa.string()) for c in (self.ids, self.texts, self.urls, self.sources, self.metas)],
            schema=DOC_SCHEMA,
        )
        quarantine = pa.Table.from_arrays(
            [
                pa.array([self.relpath] * len(self.q_lines), pa.string()),
                pa.array(self.q_lines, pa.int64()),
                pa.array(self.q_reasons, pa.string()),
                pa.array(self.q_raws, pa.binary()),
            ],
            schema=QUARANTINE_SCHEMA,
        )
        return docs, quarantine


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
    lines: Iterable[bytes | StreamBreak], path: str, relpath: str, params: ReadParams
) -> _Columns:
    cols = _Columns(relpath)
    text_field, id_field = params.text_field, params.id_field
    url_field, source_field = params.url_field, params.source_field
    n_records = 0
    for number, line in enumerate(lines, start=1):
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
    return cols


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


def _read_parquet(path: str, relpath: str, params: ReadParams) -> _Columns:
    try:
        with open_input(path) as stream:
            table = pq.read_table(stream)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); check input.paths") from exc
    names = table.column_names
    field = params.text_field
    if field not in names:
        raise InputError(f"{path}: no column {field!r} (found {names}); set input.text_field")
    text_type = table.schema.field(field).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise InputError(f"{path}: column {field!r} is {text_type}, not a string; set input.text_field")
    cols = _Columns(relpath)
    if table.num_rows == 0:
        cols.quarantine(0, "read:empty_file", b"")
        return cols
    is_str = (pa.types.is_string, pa.types.is_large_string)
    ids = _string_column(table, params.id_field, (*is_str, pa.types.is_integer))
    urls = _string_column(table, params.url_field, is_str)
    sources = _string_column(table, params.source_field, is_str)
    consumed = {field} | {name for name, col in ((params.id_field, ids), (params.url_field, urls),
                                                 (params.source_field, sources)) if col is not None}
    rest = table.drop_columns([name for name in names if name in consumed])
    metas = [_dumps(row) for row in rest.to_pylist()] if rest.num_columns else None
    texts = table.column(field).to_pylist()
    for i, text in enumerate(texts):
        row = i + 1
        if text is None:
            cols.quarantine(row, "read:text_not_string", _row_json(table, i))
            continue
        doc_id = ids[i] if ids is not None and ids[i] is not None else f"{relpath}:{row}"
        if not cols.add(doc_id, text, urls[i] if urls else None, sources[i] if sources else None,
                        metas[i] if metas else None):
            cols.quarantine(row, "read:duplicate_id", _row_json(table, i))
    return cols


def _read_text(path: str, relpath: str, params: ReadParams) -> _Columns:
    cols = _Columns(relpath)
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
        return cols
    if not data.strip():
        cols.quarantine(0, "read:empty_file", data)
        return cols
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        cols.quarantine(1, "read:invalid_utf8", data)
        return cols
    cols.add(relpath, text, None, None, None)
    return cols


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


def _read_records(cols: _Columns, stream: _Parts, number: int) -> tuple[int, bytes | None]:
    """Records until `stream` ends or one fails: (records numbered so far, `raw` of the failed one).

    A record that fails is numbered; its row is the caller's, which knows whether a break cut it.
    """
    records = ArchiveIterator(stream, no_record_parse=False, ensure_http_headers=False)
    while True:
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


def _read_warc(path: str, relpath: str, params: ReadParams) -> _Columns:
    """Every record of a WARC/WET file; `line` in quarantine rows is the 1-based record number.

    Decompression is `iter_decoded`'s (by suffix), not warcio's, whose reader prints a warning and
    returns a short record at a corrupt or cut gzip member.
    """
    cols = _Columns(relpath)
    stream = _Parts(iter_decoded(path))
    number = 0
    while True:
        number, failed = _read_records(cols, stream, number)
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
    if number == 0 and not cols.q_lines:
        cols.quarantine(0, "read:empty_file", b"")
    return cols


# ---- the stage ----------------------------------------------------------------------------------

def run(path: str, relpath: str, params: ReadParams) -> tuple[pa.Table, pa.Table]:
    """Read one input file into documents and quarantined records.

    Args:
        path: a local path or fsspec URL; `.gz` and `.zst` are decompressed by suffix.
        relpath: the file's name relative to the input root, used in derived ids and `source_file`.
        params: format, field names and what a broken compressed stream does (`on_corrupt_file`).

    Returns:
        `(documents, quarantine)` with exactly `contract.DOC_SCHEMA` and `contract.QUARANTINE_SCHEMA`.

    Raises:
        InputError: the file does not exist, its format cannot be told, (Parquet) it cannot be read
            or lacks the text column, or (`on_corrupt_file="fail"`) its compressed stream breaks.

    Example:
        >>> docs, quarantine = run("crawl/a.jsonl.gz", "a.jsonl.gz", ReadParams())  # doctest: +SKIP
    """
    fmt = detect_format(path) if params.format == "auto" else params.format
    if fmt == "jsonl":
        cols = _read_jsonl(salvage_lines(path), path, relpath, params)
    elif fmt == "parquet":
        cols = _read_parquet(path, relpath, params)
    elif fmt == "warc":
        cols = _read_warc(path, relpath, params)
    else:
        cols = _read_text(path, relpath, params)
    return cols.tables()
