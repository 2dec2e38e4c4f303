"""Documents + attributes: a stage's shard stored as a layer over its input, read back as a view.

After Dolma's documents and attributes, a map stage's output shard is a *layer*:

    kept.parquet      `__row` of each kept document, and the columns this stage added
    text.parquet      `__row` and `text` of the kept documents whose text this stage changed
    rejected.parquet  `__row`, `reason` and this stage's columns, of the documents that stop here

`__row` numbers the documents of the `read` shard they came from (whose layer holds every input
column and every text), so it is stable through every stage. A *view* of a shard (what the next
stage reads, what `write` publishes) joins its layers on `__row`: each column from the last layer
that wrote it, each text from the last layer that changed it, the rows of the last layer. A stage
that scores or drops writes a few bytes per document; text is stored once per text version, and
only for the documents a rewrite touched. A reader names its columns: `select` reads only its
scores, the dedup marks only `__row`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.contract import REASON, StageOutput
from tasks.errors import StoreError

ROW = "__row"
TEXT = "text"
KEPT_FILE, TEXT_FILE, REJECTED_FILE = "kept.parquet", "text.parquet", "rejected.parquet"


@dataclass(frozen=True)
class Layer:
    """One stage's shard: its folder under the store root, the columns it wrote, whether it wrote text."""

    dir: str
    columns: tuple[str, ...]
    text: bool


@dataclass(frozen=True)
class View:
    """The documents of a shard after some stage: its layers, base first, and its columns in order."""

    layers: tuple[Layer, ...]
    columns: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "layers": [
                {"dir": layer.dir, "columns": list(layer.columns), "text": layer.text} for layer in self.layers
            ],
            "columns": list(self.columns),
        }

    @classmethod
    def from_json(cls, data: dict) -> View:
        layers = tuple(Layer(layer["dir"], tuple(layer["columns"]), layer["text"]) for layer in data["layers"])
        return cls(layers, tuple(data["columns"]))

    @property
    def upstream(self) -> View:
        """The view the last layer was computed from (its columns: those the last layer did not add)."""
        added = set(self.layers[-1].columns)
        return View(self.layers[:-1], tuple(c for c in self.columns if c not in added))

    def schema(self, store) -> pa.Schema:
        """The view's columns and types, from its layers' file footers (no data read)."""
        fields = {TEXT: pa.field(TEXT, pa.string())}
        for layer in self.layers:
            path = f"{store.root}/{layer.dir}/{KEPT_FILE}"
            fields |= {f.name: f for f in pq.read_schema(path, filesystem=store.fs) if f.name in layer.columns}
        return pa.schema([fields[c] for c in self.columns])

    def rows(self, store) -> pa.Array:
        return _read(store, self.layers[-1], KEPT_FILE, [ROW]).column(ROW).combine_chunks()

    def read(self, store, columns: Sequence[str] | None = None, rows: pa.Array | None = None) -> pa.Table:
        """`__row` and the view's `columns` (default: all; names the view lacks are skipped) of
        `rows` (default: the view's), in that order."""
        wanted = [c for c in (self.columns if columns is None else columns) if c in self.columns]
        rows = self.rows(store) if rows is None else rows
        found: dict[str, pa.ChunkedArray | pa.Array] = {ROW: rows}
        pending = [c for c in wanted if c != TEXT]
        for layer in reversed(self.layers):
            mine = [c for c in pending if c in layer.columns]
            if mine:
                table = _read(store, layer, KEPT_FILE, [ROW, *mine])
                at = pc.index_in(rows, value_set=table.column(ROW).combine_chunks())
                found |= {c: table.column(c).take(at) for c in mine}
                pending = [c for c in pending if c not in mine]
        if TEXT in wanted:
            found[TEXT] = self._texts(store, rows)
        return pa.table({name: found[name] for name in (ROW, *wanted)})

    def _texts(self, store, rows: pa.Array) -> pa.ChunkedArray:
        """Each row's text from the last layer that wrote it (the base layer wrote every row's)."""
        texts = None
        for layer in reversed(self.layers):
            if not layer.text:
                continue
            table = _read(store, layer, TEXT_FILE, [ROW, TEXT])
            found = table.column(TEXT).take(pc.index_in(rows, value_set=table.column(ROW).combine_chunks()))
            texts = found if texts is None else pc.coalesce(texts, found)
            if texts.null_count == 0:
                break
        return texts

    def rejected(self, store, columns: Sequence[str] | None = None) -> pa.Table | None:
        """The documents the last layer rejected: their input columns (`columns`, default all), then
        `reason` and the last layer's own columns; None when it rejected nothing."""
        path = f"{store.root}/{self.layers[-1].dir}/{REJECTED_FILE}"
        if not store.fs.exists(path):
            return None
        own = store.read_table(path)
        if columns is not None:
            own = own.select([c for c in own.column_names if c in (ROW, REASON, *columns)])
        inputs = self.upstream.read(store, columns, rows=own.column(ROW).combine_chunks())
        for name in own.column_names[1:]:
            inputs = inputs.append_column(own.schema.field(name), own.column(name))
        return inputs


def _read(store, layer: Layer, name: str, columns: list[str]) -> pa.Table:
    return store.read_table(f"{store.root}/{layer.dir}/{name}", columns=columns)


def base_layer(table: pa.Table, layer_dir: str) -> tuple[View, dict[str, pa.Table]]:
    """The `read` stage's layer: every input column of every document, numbered by `__row`."""
    rows = pa.array(range(table.num_rows), pa.int64())
    columns = tuple(c for c in table.column_names if c != TEXT)
    files = {
        KEPT_FILE: table.select(columns).add_column(0, ROW, rows),
        TEXT_FILE: pa.table({ROW: rows, TEXT: table.column(TEXT)}),
    }
    return View((Layer(layer_dir, columns, True),), tuple(table.column_names)), files


def stage_layer(
    stage: str, upstream: View, given: pa.Table, output: StageOutput, layer_dir: str
) -> tuple[View, dict[str, pa.Table]]:
    """What a stage's output adds to its input (`given`: the upstream view it read), as layer files.

    The stage must carry `__row` through (tables filtered or appended to do). A column it returns
    that its input view already had but it was not given would shadow another stage's: refused
    (the data contract: a stage never rewrites another's columns).
    """
    kept, rejected = output
    for table in (kept, rejected):
        if table is not None and ROW not in table.column_names:
            raise StoreError(
                f"stage {stage!r} returned a table without the {ROW} column; filter or append to its input table"
            )
    added = [c for c in kept.column_names if c not in given.column_names]
    shadowed = sorted(set(added) & set(upstream.columns))
    if shadowed:
        raise StoreError(f"stage {stage!r} adds columns the documents already have: {', '.join(shadowed)}")
    files = {KEPT_FILE: kept.select([ROW, *added])}
    texts = _changed_texts(given, kept) if TEXT in given.column_names and TEXT in kept.column_names else None
    if texts is not None:
        files[TEXT_FILE] = texts
    if rejected is not None and rejected.num_rows:
        files[REJECTED_FILE] = rejected.select([ROW, REASON, *(c for c in added if c in rejected.column_names)])
    dropped = {c for c in given.column_names if c not in kept.column_names}
    columns = tuple(c for c in upstream.columns if c not in dropped) + tuple(added)
    return View((*upstream.layers, Layer(layer_dir, tuple(added), texts is not None)), columns), files


def _changed_texts(given: pa.Table, kept: pa.Table) -> pa.Table | None:
    """`__row` and `text` of the kept rows whose text differs from what the stage was given."""
    before = given.column(TEXT).take(pc.index_in(kept.column(ROW), value_set=given.column(ROW).combine_chunks()))
    changed = pc.fill_null(pc.not_equal(kept.column(TEXT), before), True)
    if not pc.any(changed).as_py():
        return None
    return kept.select([ROW, TEXT]).filter(changed)
