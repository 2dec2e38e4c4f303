"""Plain text input (`.txt`, optionally `.gz` or `.zst`): the whole file is one document, id `<relpath>`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.io import StreamBreak, iter_decoded
from tasks.read.columns import Columns, stream_break

if TYPE_CHECKING:
    from tasks.read import ReadParams


def read_text(cols: Columns, path: str, params: ReadParams) -> None:
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
            stream_break(cols, 1, brk._replace(cut=data), path, params)
        return
    if not data.strip():
        cols.quarantine(0, "read:empty_file", data)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        cols.quarantine(1, "read:invalid_utf8", data)
        return
    cols.add(relpath, text, None, None, None, 1)
