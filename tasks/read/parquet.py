"""Parquet input: one document per row, read a batch of rows at a time.

The text column becomes `text`; the id (string or integer), url and source columns become columns
when they have a usable type, and every other column goes to `meta` as JSON. A row with a null text
is quarantined with the row as JSON. A file that cannot be read, or has no string text column, is an
`InputError`: the user picked the wrong file or the wrong `input.text_field`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.errors import InputError
from tasks.io import open_input
from tasks.read.columns import Columns, Part
from tasks.read.json_codec import dumps

if TYPE_CHECKING:
    from tasks.read import ReadParams

_PARQUET_BATCH_ROWS = 1024  # rows decoded at once: 2 MB at FineWeb's ~2 KB documents
_PARQUET_BUFFER_BYTES = 1 << 20  # column chunks read page by page in 1 MiB reads, not a row group at once


def _row_json(table: pa.Table, index: int) -> bytes:
    """One Parquet row as JSON bytes, the `raw` of its quarantine row."""
    return dumps(table.slice(index, 1).to_pylist()[0]).encode()


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


def read_parquet(cols: Columns, path: str, params: ReadParams) -> Iterator[Part]:
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
            consumed = {field} | {
                name
                for name, col in ((params.id_field, ids), (params.url_field, urls), (params.source_field, sources))
                if col is not None
            }
            rest = table.drop_columns([name for name in names if name in consumed])
            metas = [dumps(record) for record in rest.to_pylist()] if rest.num_columns else None
            for i, text in enumerate(table.column(field).to_pylist()):
                yield from cols.ready()
                row += 1
                if text is None:
                    cols.quarantine(row, "read:text_not_string", _row_json(table, i))
                    continue
                doc_id = ids[i] if ids is not None and ids[i] is not None else f"{relpath}:{row}"
                if not cols.add(
                    doc_id,
                    text,
                    urls[i] if urls else None,
                    sources[i] if sources else None,
                    metas[i] if metas else None,
                    row,
                ):
                    cols.quarantine(row, "read:duplicate_id", _row_json(table, i))
