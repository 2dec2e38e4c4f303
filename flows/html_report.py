"""The run report as one self-contained HTML file: plots as inline SVG (matplotlib), no external assets,
so it opens from an object store, an email attachment or the Prefect UI's link without a network.

Pure: `render(summary)` takes the run summary dict (flows/report.py) and returns the page; plots of
sections a run did not produce are left out.
"""

from __future__ import annotations

import html
import io
import json
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
    if languages := (summary.get("clean_languages") or {}).get("languages"):
        parts.append("<h2>Cleaning by language</h2>" + _table(
            [{"language": r["lang"], "in": r["docs_in"], "kept": r["kept"], "keep rate": f"{r['keep_rate']:.1%}",
              "top drop reasons": ", ".join(f"{reason} {n:,}" for reason, n in list(r["drops"].items())[:3]) or "-"}
             for r in languages],
            ["language", "in", "kept", "keep rate", "top drop reasons"],
        ))
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


CALIBRATION_LANGUAGES = 8  # languages with histograms (most documents first); the tables list every one


def calibration_plot(lang: str, cuts: list[dict]) -> str:
    """One language's calibrated knobs: each signal's histogram (p1-p99), the global cut dashed, the
    calibrated one red."""
    columns = 4
    rows = -(-len(cuts) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 2.1 * rows), squeeze=False)
    for ax in axes.flat[len(cuts):]:
        ax.axis("off")
    for ax, cut in zip(axes.flat, cuts):
        edges = cut["edges"]
        ax.stairs(cut["counts"], edges, fill=True, color="#c6dbef")
        lo, hi = edges[0], edges[-1]
        for value, style in ((cut["default"], dict(color="#555", linestyle="--")), (cut["value"], dict(color="#c0392b"))):
            if lo <= value <= hi:
                ax.axvline(value, linewidth=1.4, **style)
        ax.set_title(f"{cut['knob'].split('.')[1]}: {cut['default']:g} → {cut['value']:g}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{lang}: signal histograms (p1-p99); dashed: global cut, red: calibrated", fontsize=10)
    fig.tight_layout()
    return _svg(fig)


def calibration_page(report: dict) -> str:
    """The `calibrate` flow's page: per language, documents and keep rates, then its histograms."""
    languages, cuts = report["languages"], report["cuts"]
    rows = [
        {"language": lang, "documents": entry["documents"], "knobs": sum(c["lang"] == lang for c in cuts),
         "keeps (global)": f"{entry['kept_before']:.1%}", "keeps (calibrated)": f"{entry['kept_after']:.1%}"}
        for lang, entry in languages.items()
    ]
    parts = [
        f"<h1>Clean calibration</h1><p class='meta'>{html.escape(json.dumps(report['calibration']))}</p>",
        "<h2>Languages</h2>" + _table(rows, list(rows[0])) if rows else "",
    ]
    calibrated = [lang for lang in languages if any(c["lang"] == lang for c in cuts)][:CALIBRATION_LANGUAGES]
    for lang in calibrated:
        mine = [c for c in cuts if c["lang"] == lang]
        table = [
            {"knob": c["knob"], "n": c["n"], "global": f"{c['default']:g}", "calibrated": f"{c['value']:g}",
             "keeps (global)": f"{c['kept_default']:.1%}", "keeps (calibrated)": f"{c['kept']:.1%}",
             "q1 / median / q3": f"{c['quantiles']['q1']:.4g} / {c['quantiles']['median']:.4g} / {c['quantiles']['q3']:.4g}"}
            for c in mine
        ]
        parts.append(f"<h2>{html.escape(lang)}</h2><figure>{calibration_plot(lang, mine)}</figure>" + _table(table, list(table[0])))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Winnow clean calibration</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
