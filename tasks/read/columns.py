"""The rows a reader fills, record by record, and the parts they are sealed into.

Every format's reader appends documents and quarantine rows to one `Columns`, which seals a part as
soon as the next row would take it past `max_shard_bytes`; the reader yields the sealed parts at its
next record boundary, so a part never splits a record and memory follows the limit, not the file.
Also here: a break in the compressed stream (`tasks/io.py`, `iter_decoded`) as a quarantine row,
which the JSONL, text and WARC readers share.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA, RAW_PREFIX_BYTES
from tasks.errors import InputError
from tasks.io import StreamBreak

if TYPE_CHECKING:
    from tasks.read import ReadParams

Part = tuple[pa.Table, pa.Table]  # (documents, quarantine) of one part of a file
_BATCH_ROWS = 4096  # rows kept as Python lists before they become Arrow arrays: bounds that overhead
_BREAK_REASONS = {"truncated_stream": "read:truncated_stream", "corrupt_member": "read:corrupt_member"}


def _utf8_len(value: str | None) -> int:
    if value is None:
        return 0
    return len(value) if value.isascii() else len(value.encode())


class Columns:
    """The rows of the part being read, filled record by record; full parts are sealed as Arrow.

    A row's bytes are a document's UTF-8 strings (id, text, url, source, meta; its provenance, a few
    bytes, is not counted) or a quarantine row's `raw`. Before a row that would take
    the part past `max_bytes`, a part holding a row already is sealed into `sealed`, which the
    readers yield at their next record boundary (`ready`). Rows become Arrow every `_BATCH_ROWS`, so
    Python objects stay few whatever the documents' sizes. Only
    `seen` (the ids, for `read:duplicate_id`) and `n_rows` span the whole file. `reasons` is the
    stage's registry of reason codes: a quarantine row's reason must be one of them.
    """

    def __init__(self, relpath: str, max_bytes: int, reasons: Collection[str]) -> None:
        self.relpath = relpath
        self.max_bytes = max_bytes
        self.reasons = reasons
        self.seen: set[str] = set()
        self.n_rows = 0  # rows of the whole file so far
        self.sealed: list[Part] = []
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
        self.records: list[int] = []
        self.warc_ids: list[str | None] = []
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
            provenance = [
                pa.array([self.relpath] * len(self.ids), pa.string()),
                pa.array(self.records, pa.int64()),
                pa.array(self.warc_ids, pa.string()),
            ]
            self.doc_batches.append(
                pa.RecordBatch.from_arrays(
                    [pa.array(column, pa.string()) for column in columns] + provenance, schema=DOC_SCHEMA
                )
            )
        if self.q_lines:
            self.q_batches.append(
                pa.RecordBatch.from_arrays(
                    [
                        pa.array([self.relpath] * len(self.q_lines), pa.string()),
                        pa.array(self.q_lines, pa.int64()),
                        pa.array(self.q_reasons, pa.string()),
                        pa.array(self.q_raws, pa.binary()),
                    ],
                    schema=QUARANTINE_SCHEMA,
                )
            )
        self._new_batch()

    def _seal(self) -> None:
        self._batch()
        self.sealed.append(
            (
                pa.Table.from_batches(self.doc_batches or [pa.RecordBatch.from_pylist([], DOC_SCHEMA)]),
                pa.Table.from_batches(self.q_batches or [pa.RecordBatch.from_pylist([], QUARANTINE_SCHEMA)]),
            )
        )
        self._new_part()

    def quarantine(self, line: int, reason: str, raw: bytes) -> None:
        assert reason in self.reasons, reason
        raw = raw[:RAW_PREFIX_BYTES]
        self._admit(len(raw))
        self.q_lines.append(line)
        self.q_reasons.append(reason)
        self.q_raws.append(raw)
        if len(self.q_lines) == _BATCH_ROWS:
            self._batch()

    def add(
        self,
        doc_id: str,
        text: str,
        url: str | None,
        source: str | None,
        meta: str | None,
        record: int,
        warc_record_id: str | None = None,
    ) -> bool:
        """Append a document read from `record` (its line, row or WARC record number, as quarantine rows
        count them); False (nothing appended) when its id was already seen in this file."""
        if doc_id in self.seen:
            return False
        self.seen.add(doc_id)
        self._admit(sum(map(_utf8_len, (doc_id, text, url, source, meta))))
        self.ids.append(doc_id)
        self.texts.append(text)
        self.urls.append(url)
        self.sources.append(source)
        self.metas.append(meta)
        self.records.append(record)
        self.warc_ids.append(warc_record_id)
        if len(self.ids) == _BATCH_ROWS:
            self._batch()
        return True

    def ready(self) -> Iterator[Part]:
        """The parts sealed since the last call, in file order."""
        while self.sealed:
            yield self.sealed.pop(0)

    def finish(self) -> Iterator[Part]:
        """At the end of the file: the sealed parts, then the open one unless it holds no row."""
        if self.n_part_rows:
            self._seal()
        yield from self.ready()


def stream_break(cols: Columns, line: int, brk: StreamBreak, path: str, params: ReadParams) -> None:
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
