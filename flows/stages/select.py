"""`select`: score thresholds applied last (`tasks/select.py`), so changing one reruns only this stage;
its report section helps choose them: each score's distribution, overall and per language."""

from __future__ import annotations

import pyarrow as pa

import tasks.select
from flows.engine.stage import Stage
from flows.report.section import Section
from tasks.thresholds import (
    LANG_COLUMN,
    score_columns,
    threshold_markdown,
    threshold_report,
)

MAX_LANGUAGES = 5  # histogram lines per score plot: more is unreadable


def score_distributions(ctx, upstream, ref) -> Section:
    """Threshold help over the documents entering `select` (tasks/thresholds.py).

    Reads only the float score columns and `lang` of the shards, never the text: memory is ~4 bytes
    per score column per document plus the language code.
    """
    report = {}
    if upstream.shards:
        columns = score_columns(ctx.store.view(upstream.stage, upstream.shards[0]).schema(ctx.store))
        columns += [LANG_COLUMN]  # skipped where absent
        table = pa.concat_tables(ctx.store.read_view(upstream.stage, shard, columns) for shard in upstream.shards)
        report = threshold_report(table, ctx.cfg.run.threshold_report)
    html = "".join(f"<figure>{plot}</figure>" for plot in score_plots(report))
    return Section("score_thresholds", "score-thresholds", report, threshold_markdown(report), html)


def score_plots(score_report: dict) -> list[str]:
    """One plot per score column: the share of documents per bin, overall and per language."""
    from flows.report.plots import figure, svg

    plots = []
    for column, report in score_report.items():
        hist = report.get("histogram")
        if not hist:
            continue
        edges = hist["edges"]
        centers = [(lo + hi) / 2 for lo, hi in zip(edges, edges[1:])]
        fig, ax = figure(7, 3)
        for group, counts in list(hist["counts"].items())[: MAX_LANGUAGES + 1]:
            total = sum(counts) or 1
            ax.step(
                centers,
                [c / total for c in counts],
                where="mid",
                label=f"{group} ({total:,})",
                linewidth=2.2 if group == "all" else 1.2,
            )
        ax.set_xlabel(column)
        ax.set_ylabel("share of documents")
        ax.set_title(f"{column} by language")
        ax.legend(fontsize=8)
        plots.append(svg(fig))
    return plots


STAGE = Stage(
    "select",
    tasks.select,
    tasks.select.SelectParams,
    report=score_distributions,
    reads=tasks.select.SelectParams.reads,  # never the text
)
