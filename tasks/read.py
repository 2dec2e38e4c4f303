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
cut short or a stream that stops parsing is `read:warc_corrupt`, and reading stops there. The parser
is warcio: fastwarc reads 3.5x more records/s, but stops without an error on a malformed file
(ccnet's LF-terminated sample) where warcio raises, and reading is <1% of extraction's cost
(`bench/extraction.py`).

JSON parsing uses orjson when installed (it also validates UTF-8 and rejects lone surrogates, so
anything it accepts Arrow can store), the standard library otherwise.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Iterable
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
from tasks.io import DECOMPRESS_ERRORS, detect_format, iter_lines, open_input, read_bytes

try:
    import orjson
except ImportError:  # optional speed-up; the json fallback gives the same documents
    orjson = None

VERSION = 1  # bump when the same input + params give different output

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
    "read:warc_corrupt": "a WARC record cut short or unparseable; reading the file stops there",
}


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


# ---- formats ------------------------------------------------------------------------------------

def _read_jsonl(lines: Iterable[bytes], relpath: str, params: ReadParams) -> _Columns:
    cols = _Columns(relpath)
    text_field, id_field = params.text_field, params.id_field
    url_field, source_field = params.url_field, params.source_field
    n_records = 0
    for number, line in enumerate(lines, start=1):
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


def _read_text(path: str, relpath: str) -> _Columns:
    cols = _Columns(relpath)
    data = read_bytes(path)
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
# what a stream cut short or garbled raises, from warcio's parser or our decompressors
_WARC_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, *DECOMPRESS_ERRORS)


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
    """The record's payload as stored; None when the stream ends before its Content-Length."""
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
    """One response record -> a document or a quarantine row; False when the stream is cut short."""
    http = record.http_headers
    content_type, charset = _content_type(http.get_header("Content-Type") if http is not None else None)
    if content_type is None:  # Common Crawl's payload sniffing, when the server sent no type
        content_type, _ = _content_type(record.rec_headers.get_header("WARC-Identified-Payload-Type"))
    if content_type not in HTML_CONTENT_TYPES:
        cols.quarantine(number, "read:warc_content_type", _header_bytes(record))
        return True
    body = _read_body(record)
    if body is None:
        cols.quarantine(number, "read:warc_corrupt", _header_bytes(record))
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
        cols.quarantine(number, "read:warc_corrupt", _header_bytes(record))
        return False
    try:
        text = body.decode("utf-8")  # WET conversion records are UTF-8 (Common Crawl's WET format)
    except UnicodeDecodeError:
        cols.quarantine(number, "read:invalid_utf8", _header_bytes(record))
        return True
    content_type, _ = _content_type(record.rec_headers.get_header("Content-Type"))
    _add_warc_doc(cols, number, record, text, TEXT_SOURCE, content_type, None)
    return True


def _read_warc(path: str, relpath: str) -> _Columns:
    """Every record of a WARC/WET file; `line` in quarantine rows is the 1-based record number.

    Decompression is `open_input`'s (by suffix), so a corrupt or cut gzip member raises here instead
    of warcio's own reader printing a warning and returning a short record.
    """
    cols = _Columns(relpath)
    number = 0
    with open_input(path) as stream:
        records = ArchiveIterator(stream, no_record_parse=False, ensure_http_headers=False)
        while True:
            try:
                record = next(records)
                number += 1
                if record.rec_type == "response":
                    ok = _read_response(cols, number, record)
                elif record.rec_type == "conversion":
                    ok = _read_conversion(cols, number, record)
                else:
                    cols.quarantine(number, "read:warc_record_type", _header_bytes(record))
                    ok = True
            except StopIteration:
                break
            except _WARC_ERRORS as exc:  # the stream cannot be parsed past here
                cols.quarantine(number + 1, "read:warc_corrupt", f"{type(exc).__name__}: {exc}".encode())
                break
            if not ok:
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
        params: format and field names.

    Returns:
        `(documents, quarantine)` with exactly `contract.DOC_SCHEMA` and `contract.QUARANTINE_SCHEMA`.

    Raises:
        InputError: the file does not exist, its format cannot be told, it cannot be decompressed,
            or (Parquet) it lacks the text column.

    Example:
        >>> docs, quarantine = run("crawl/a.jsonl.gz", "a.jsonl.gz", ReadParams())  # doctest: +SKIP
    """
    fmt = detect_format(path) if params.format == "auto" else params.format
    if fmt == "jsonl":
        cols = _read_jsonl(iter_lines(path), relpath, params)
    elif fmt == "parquet":
        cols = _read_parquet(path, relpath, params)
    elif fmt == "warc":
        cols = _read_warc(path, relpath)
    else:
        cols = _read_text(path, relpath)
    return cols.tables()
