"""The `read` stage: one input file (JSONL, Parquet or plain text) -> documents + quarantine.

Every input record becomes either a row of `contract.DOC_SCHEMA` or a row of
`contract.QUARANTINE_SCHEMA` with a `read:<measure>` reason and its first KiB, so nothing vanishes
(DESIGN §Data contract, STYLE §6). Structural problems a user can fix (a missing file, a Parquet
file without the text column, an unknown suffix) raise `InputError` instead.

Ids are stable across runs: the record's own id field when it has one (ints stringified), else
`<relpath>:<line>` (1-based line, or row for Parquet), and plain text files are one document with
id `<relpath>`. Ids are unique within a file: a repeat is quarantined, the first wins.

JSON parsing uses orjson when installed (it also validates UTF-8 and rejects lone surrogates, so
anything it accepts Arrow can store), the standard library otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA, RAW_PREFIX_BYTES
from tasks.errors import InputError
from tasks.io import detect_format, iter_lines, open_input, read_bytes

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

    format: Literal["auto", "jsonl", "parquet", "text"] = Field(
        "auto",
        description="Input format; 'auto' picks by suffix: .jsonl/.json/.ndjson, .parquet, .txt "
        "(JSONL and text optionally .gz or .zst).",
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
    "read:empty_file": "the file holds no record at all",
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
    _JSONError = (ValueError,)  # JSONDecodeError, UnicodeDecodeError/EncodeError are ValueErrors

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
        if not cols.add(doc_id, text, url, source, _dumps(record) if record else None):
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
    else:
        cols = _read_text(path, relpath)
    return cols.tables()
