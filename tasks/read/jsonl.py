"""JSONL input (`.jsonl`, `.json`, `.ndjson`, optionally `.gz` or `.zst`): one document per line.

A line is an object whose text field becomes `text`; its id, url and source fields become columns
when they have a usable type, and every other field goes to `meta` as JSON. A line that is not such
an object is quarantined with the reason it fails, blank lines are skipped, and a break in the
compressed stream is the row of the line it cuts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from tasks.io import StreamBreak
from tasks.read.columns import Columns, Part, stream_break
from tasks.read.json_codec import JSON_ERRORS, dumps, loads

if TYPE_CHECKING:
    from tasks.read import ReadParams

_BOM = b"\xef\xbb\xbf"
_MISSING = object()  # a field absent from a record, told apart from a null one


def _record_id(value: Any) -> str | None:
    """A usable id value: a string, or an int stringified (bools are not ids)."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def read_jsonl(cols: Columns, lines: Iterable[bytes | StreamBreak], path: str, params: ReadParams) -> Iterator[Part]:
    """Every line of a JSONL file; `line` in quarantine rows (and a derived id's number) is 1-based."""
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
            stream_break(cols, number, line, path, params)
            continue
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            continue
        n_records += 1
        try:
            record = loads(line)
        except JSON_ERRORS:
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
            meta = dumps(record) if record else None
        except RecursionError:  # orjson encodes 254 levels, json about the interpreter's recursion limit
            cols.quarantine(number, "read:nesting_depth", line)
            continue
        if not cols.add(doc_id, text, url, source, meta, number):
            cols.quarantine(number, "read:duplicate_id", line)
    if n_records == 0:
        cols.quarantine(0, "read:empty_file", b"")
