"""`decontam`: benchmark decontamination (`tasks/decontam/`): its index as a store artifact, its two
phases and its report section.

The index is built once per benchmark set on one Dask worker, which writes it to
`<store>/decontam/index/<key>/` (tables first, `_SUCCESS` last); the key hashes the stage VERSION,
the benchmark specs (with their files' fingerprints) and the index parameters, so an edited
benchmark file, a new benchmark or another encoder rebuilds it, and a changed action or threshold
does not. Workers load it once each (`tasks.decontam.load_index`, cached by URL). The scan (embedding
windows) is keyed without the threshold and the action: a new one re-embeds nothing. No Prefect here.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable

import numpy as np
import pyarrow.compute as pc

import tasks.decontam
from flows.engine.context import RunContext
from flows.engine.executor import spread
from flows.engine.stage import Phase, Stage
from flows.engine.store import ArtifactStore, StageRef, digest
from flows.report.section import Section
from tasks.decontam.report import contamination_report

SUCCESS = "_SUCCESS"
REPORT_COLUMNS = ["id", "url", "lang", "contam_benchmark", "contam_items", "contam_spans", "n_contam_chars_cut"]


def index_key(params: tasks.decontam.DecontamParams) -> str:
    return digest("decontam-index", tasks.decontam.VERSION, *params.index_params())


def index_url(ctx: RunContext, params: tasks.decontam.DecontamParams) -> str:
    """The index for these benchmarks, built on a worker unless the store holds it already."""
    key = index_key(params)
    if not ctx.store.fs.exists(f"{index_dir(ctx.store.root, key)}/{SUCCESS}"):
        ctx.client.submit(save_index, ctx.store.url, key, params, key=f"decontam-index-{key[:8]}", pure=False).result()
    return index_dir(ctx.store.url.rstrip("/"), key)


def index_args(ctx: RunContext, params: tasks.decontam.DecontamParams, upstream: StageRef) -> Callable[[int], tuple]:
    """Each shard's extra argument: the index URL (`tasks.decontam.scan` and `run` load it once per worker)."""
    url = index_url(ctx, params)
    return lambda i: (url,)


def scans_windows(params: tasks.decontam.DecontamParams) -> bool:
    return bool(params.benchmarks) and params.semantic.enabled


def index_dir(root: str, key: str) -> str:
    return f"{root}/decontam/index/{key}"


# Benchmark items per embedding task when the index is built: four dev benchmarks hold ~16,000 items,
# minutes of one encoder on one core, so the blocks go to every worker (`spread`).
INDEX_EMBED_ITEMS = 1_000


def embed_on_workers(texts: list[str], encoder, block_items: int = INDEX_EMBED_ITEMS) -> np.ndarray:
    """`tasks.decontam.embed_items` over blocks of `block_items` texts, spread over the workers."""
    blocks = [texts[i : i + block_items] for i in range(0, len(texts), block_items)]
    return np.concatenate(spread(tasks.decontam.embed_items, blocks, "decontam-index-embed", encoder=encoder))


def save_index(
    store_url: str, key: str, params: tasks.decontam.DecontamParams, block_items: int = INDEX_EMBED_ITEMS
) -> dict:
    """Worker side: build the index and write it atomically, marker last; returns its stats."""
    store = ArtifactStore(store_url)
    embed_all = functools.partial(embed_on_workers, block_items=block_items)
    index = tasks.decontam.build_index(params.benchmarks, params.ngram, params.semantic, embed_all)
    for name, table in tasks.decontam.index_tables(index).items():
        store.write_table(f"{index_dir(store.root, key)}/{name}", table)
    store.write_json(f"{index_dir(store.root, key)}/{SUCCESS}", index.stats)
    return index.stats


def report_section(ctx: RunContext, upstream: StageRef, ref: StageRef) -> Section:
    """Per benchmark: contaminated documents and items hit, with examples, from the stage's shards."""
    params = ctx.cfg.decontam
    if not params.benchmarks:
        return Section(
            "decontam",
            "decontamination-report",
            {},
            "### Decontamination\n\nNo benchmark configured (`decontam.benchmarks`): nothing was checked.",
        )
    store = ctx.store
    rows, coverage = [], collections.Counter()
    for shard in ref.shards:  # the report never reads the text
        kept = store.read_view(ref.stage, shard, REPORT_COLUMNS + [tasks.decontam.PATH.name])
        rejected = store.read_rejected(ref.stage, shard, REPORT_COLUMNS + [tasks.decontam.PATH.name, "reason"])
        for table, is_kept in ((kept, True), (rejected, False)):
            if table is not None:
                langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * table.num_rows
                coverage.update(zip(langs, table.column(tasks.decontam.PATH.name).to_pylist()))
                table = table.filter(pc.is_valid(table.column("contam_benchmark")))
                rows += [row | {"kept": is_kept} for row in table.to_pylist()]
    index = tasks.decontam.load_index(index_url(ctx, params)) if rows else None
    data, markdown = contamination_report(rows, index, params, dict(coverage))
    return Section("decontam", "decontamination-report", data, markdown, contamination_html(data, markdown))


def contamination_html(report: dict, markdown: str) -> str:
    """Contaminated documents per benchmark as a bar chart, then the section's text."""
    from flows.report.plots import bars
    from flows.report.section import markdown_html

    per_benchmark = {name: entry["documents"] for name, entry in report.get("benchmarks", {}).items()}
    plot = (
        bars(
            list(per_benchmark),
            list(per_benchmark.values()),
            "#c0392b",
            "Contamination by benchmark",
            "contaminated documents",
        )
        if per_benchmark
        else ""
    )
    return (f"<figure>{plot}</figure>" if plot else "") + markdown_html(markdown)


def scan_reads(params: tasks.decontam.ScanParams) -> tuple[str, ...]:
    """The scan reads the text, and each document's `lang` when it routes them to two encoders."""
    return ("text", "lang") if params.multilingual else ("text",)


def run_reads(params: tasks.decontam.DecontamParams) -> tuple[str, ...]:
    scanned = (tasks.decontam.WINDOWS.name, tasks.decontam.PATH.name)
    return ("text",) + (scanned if scans_windows(params) else ())


def limits(params: tasks.decontam.DecontamParams) -> tuple[str, ...]:
    """What decontamination leaves, for the dataset card."""
    if not params.benchmarks:
        return ("no benchmark was checked (`decontam.benchmarks` is empty)",)
    notes = [f"checked against {', '.join(spec.name for spec in params.benchmarks)} only"]
    if not params.semantic.enabled:
        notes.append("paraphrases were not searched: n-gram overlap only")
    return tuple(notes)


STAGE = Stage(
    "decontam",
    tasks.decontam,
    tasks.decontam.DecontamParams,
    phases=(
        Phase(
            "decontam.scan",
            tasks.decontam.scan,
            params=lambda params: params.scan_params(),
            when=scans_windows,
            shard_args=index_args,
            reads=scan_reads,
            split=True,  # an encoder's forward passes over every window: a large shard's rows go to every worker
        ),
        Phase("decontam", tasks.decontam.run, shard_args=index_args, reads=run_reads),
    ),
    uses_torch=scans_windows,
    limits=limits,
    report=report_section,
)
