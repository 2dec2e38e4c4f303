"""The run report as one self-contained HTML file: plots as inline SVG (matplotlib), no external assets,
so it opens from an object store, an email attachment or the Prefect UI's link without a network.

Pure: `render(summary)` takes the run summary dict (flows/report.py) and returns the page; plots of
sections a run did not produce are left out.
"""

from __future__ import annotations

import html
import io
import re

import matplotlib

matplotlib.use("Agg")  # no display on workers or CI
import matplotlib.pyplot as plt  # noqa: E402

from flows.publish import delta_markdown  # noqa: E402

TOP_REASONS = 15
MAX_LANGUAGES = 5  # histogram lines per score plot: more is unreadable
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #666; } figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog: the SVG is inlined in HTML


def funnel_plot(funnel: list[dict]) -> str:
    stages = [row["stage"] for row in funnel]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(stages) + 1))
    ax.barh(stages, [row["docs_in"] for row in funnel], color="#d9d9d9", label="in")
    ax.barh(stages, [row["docs_out"] for row in funnel], color="#3b7dd8", label="out")
    ax.invert_yaxis()
    ax.set_xlabel("documents")
    ax.legend(loc="lower right")
    ax.set_title("Documents in and out of each stage")
    return _svg(fig)


def reasons_plot(funnel: list[dict]) -> str | None:
    drops = sorted(((n, reason) for row in funnel for reason, n in row["drops"].items()), reverse=True)[:TOP_REASONS]
    if not drops:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(drops) + 1))
    ax.barh([reason for _, reason in drops], [n for n, _ in drops], color="#d8703b")
    ax.invert_yaxis()
    ax.set_xlabel("documents dropped")
    ax.set_title(f"Top {len(drops)} drop reasons")
    return _svg(fig)


def score_plots(score_report: dict) -> list[str]:
    """One plot per score column: the share of documents per bin, overall and per language."""
    plots = []
    for column, report in score_report.items():
        hist = report.get("histogram")
        if not hist:
            continue
        edges = hist["edges"]
        centers = [(lo + hi) / 2 for lo, hi in zip(edges, edges[1:])]
        fig, ax = plt.subplots(figsize=(7, 3))
        for group, counts in list(hist["counts"].items())[: MAX_LANGUAGES + 1]:
            total = sum(counts) or 1
            ax.step(centers, [c / total for c in counts], where="mid", label=f"{group} ({total:,})",
                    linewidth=2.2 if group == "all" else 1.2)
        ax.set_xlabel(column)
        ax.set_ylabel("share of documents")
        ax.set_title(f"{column} by language")
        ax.legend(fontsize=8)
        plots.append(_svg(fig))
    return plots


def cluster_plot(dedup: dict) -> str | None:
    sizes = dedup.get("cluster_sizes") or {}
    if not any(sizes.values()):
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(sizes), list(sizes.values()), color="#6a51a3")
    ax.set_xlabel("documents per near-duplicate cluster")
    ax.set_ylabel("clusters")
    ax.set_title("Fuzzy duplicate cluster sizes")
    return _svg(fig)


def removal_curve_plot(dedup: dict) -> str | None:
    """The fuzzy dedup's expected S-curve: the share of pairs removed at each Jaccard, the target marked."""
    curve = dedup.get("removal_probability") or {}
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([float(j) for j in curve], list(curve.values()), color="#6a51a3")
    ax.axvline(dedup["jaccard_threshold"], color="#999", linestyle="--", label=f"target {dedup['jaccard_threshold']}")
    ax.set_xlabel("Jaccard of the pair's shingle sets")
    ax.set_ylabel("probability removed")
    ax.set_title("Expected removal by Jaccard (S-curve)")
    ax.legend(fontsize=8)
    return _svg(fig)


def contamination_plot(decontam: dict) -> str | None:
    per_benchmark = {name: entry["documents"] for name, entry in decontam.get("benchmarks", {}).items()}
    if not per_benchmark:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(per_benchmark), list(per_benchmark.values()), color="#c0392b")
    ax.set_ylabel("contaminated documents")
    ax.set_title("Contamination by benchmark")
    return _svg(fig)


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{row[c]:,}</td>' if isinstance(row[c], int) and not isinstance(row[c], bool)
            else f"<td>{html.escape(str(row[c]))}</td>"
            for c in columns
        ) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _markdown_body(markdown: str) -> str:
    """A report section's Markdown (a `###` title, then sentences with `code`) as HTML paragraphs."""
    paragraphs = [p for p in markdown.split("\n\n") if not p.startswith("### ")]
    return "".join(
        "<p>" + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(p, quote=False)) + "</p>" for p in paragraphs
    )


def render(summary: dict) -> str:
    funnel = summary["funnel"]
    rows = [
        {"stage": r["stage"], "in": r["docs_in"], "out": r["docs_out"], "cached": "yes" if r["cached"] else "no",
         "seconds": f"{r['seconds']:.2f}", "why": r.get("why", "")}
        for r in funnel
    ]
    figures = [funnel_plot(funnel), reasons_plot(funnel)]
    scores = score_plots(summary.get("score_thresholds") or {})
    dedup = summary.get("dedup_fuzzy") or {}
    parts = [
        f"<h1>Curation report</h1><p class='meta'>version {html.escape(str(summary.get('version')))} · run "
        f"{html.escape(summary['run_id'])} · {summary['rows']:,} documents · {summary['seconds']:.1f} s · "
        f"output {html.escape(summary['output'])}</p>",
        "<h2>Dataset version</h2>" + (_markdown_body(delta_markdown(summary["delta"])) if summary.get("delta") else ""),
        "<h2>Funnel</h2>" + "".join(f"<figure>{f}</figure>" for f in figures if f) + _table(rows, list(rows[0])),
    ]
    if scores:
        parts.append("<h2>Scores</h2>" + "".join(f"<figure>{f}</figure>" for f in scores))
    if dedup_figures := [f for f in (cluster_plot(dedup), removal_curve_plot(dedup)) if f]:
        parts.append(
            "<h2>Near duplicates</h2>" + "".join(f"<figure>{f}</figure>" for f in dedup_figures)
            + f"<p>{dedup.get('clusters', 0):,} clusters; sampled precision {dedup.get('precision_estimate')} at the "
            f"target Jaccard {dedup.get('jaccard_threshold')}, where the S-curve removes "
            f"{dedup.get('removal_at_threshold')} of pairs.</p>"
        )
    if (plot := contamination_plot(summary.get("decontam") or {})) is not None:
        parts.append(f"<h2>Benchmark contamination</h2><figure>{plot}</figure>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Winnow curation report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
