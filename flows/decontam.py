"""The decontamination index as a store artifact, and the contamination report's data.

The index is built once per benchmark set on one Dask worker, which writes it to
`<store>/decontam/index/<key>/` (tables first, `_SUCCESS` last); the key hashes the stage VERSION,
the benchmark specs (with their files' fingerprints) and the index parameters, so an edited
benchmark file, a new benchmark or another encoder rebuilds it, and a changed action or threshold
does not. Workers load it once each (`tasks.decontam.load_index`, cached by URL). No Prefect here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pyarrow.parquet as pq

import tasks.decontam
from flows.store import ArtifactStore, StageRef, digest
from tasks.decontam.report import contamination_report

if TYPE_CHECKING:
    from flows.stages import Run

SUCCESS = "_SUCCESS"
REPORT_COLUMNS = ["id", "url", "contam_benchmark", "contam_items", "contam_spans", "n_contam_chars_cut"]


def index_key(params: tasks.decontam.DecontamParams) -> str:
    return digest("decontam-index", tasks.decontam.VERSION, *params.index_params())


def index_url(run: Run) -> str:
    """The index for this run's benchmarks, built on a worker unless the store holds it already."""
    key = index_key(run.cfg.decontam)
    if not run.store.fs.exists(f"{index_dir(run.store.root, key)}/{SUCCESS}"):
        run.client.submit(save_index, run.store.url, key, run.cfg.decontam, key=f"decontam-index-{key[:8]}", pure=False).result()
    return index_dir(run.store.url.rstrip("/"), key)


def index_dir(root: str, key: str) -> str:
    return f"{root}/decontam/index/{key}"


def save_index(store_url: str, key: str, params: tasks.decontam.DecontamParams) -> dict:
    """Worker side: build the index and write it atomically, marker last; returns its stats."""
    store = ArtifactStore(store_url)
    index = tasks.decontam.build_index(params.benchmarks, params.ngram, params.semantic)
    for name, table in tasks.decontam.index_tables(index).items():
        store.write_table(f"{index_dir(store.root, key)}/{name}", table)
    store.write_json(f"{index_dir(store.root, key)}/{SUCCESS}", index.stats)
    return index.stats


def report_section(run: Run, ref: StageRef):
    """Per benchmark: contaminated documents and items hit, with examples, from the stage's shards."""
    from flows.report import Section

    if not run.cfg.decontam.benchmarks:
        return Section("decontam", "decontamination-report", {}, "### Decontamination\n\nNo benchmark configured "
                       "(`decontam.benchmarks`): nothing was checked.")
    store = run.store
    rows = []
    for shard in ref.shards:
        for path, kept in ((store.kept_path(ref.stage, shard), True), (store.rejected_path(ref.stage, shard), False)):
            if not store.fs.exists(path):
                continue
            present = pq.read_schema(path, filesystem=store.fs).names  # the report never reads the text
            table = store.read_table(path, columns=[c for c in REPORT_COLUMNS + ["reason"] if c in present])
            table = table.filter(pc.is_valid(table.column("contam_benchmark")))
            rows += [row | {"kept": kept} for row in table.to_pylist()]
    index = tasks.decontam.load_index(index_url(run)) if rows else None
    data, markdown = contamination_report(rows, index, run.cfg.decontam)
    return Section("decontam", "decontamination-report", data, markdown)
