"""The run report as one self-contained HTML page: the version delta, the funnel, then every stage's
section (`Section.html_body`), so a stage's figures come with its declaration, not from here.

`render(summary, sections)` takes the run summary dict (flows/orchestration/report.py) and the run's
sections; `calibration_page` draws the `calibrate` flow's page.
"""

from __future__ import annotations

import html
import json

from flows.engine.publish import delta_markdown
from flows.report.plots import figure, subplots, svg
from flows.report.section import Section, html_table, markdown_html

TOP_REASONS = 15
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #666; } figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""


def funnel_plot(funnel: list[dict]) -> str:
    stages = [row["stage"] for row in funnel]
    fig, ax = figure(9, 0.32 * len(stages) + 1)
    ax.barh(stages, [row["docs_in"] for row in funnel], color="#d9d9d9", label="in")
    ax.barh(stages, [row["docs_out"] for row in funnel], color="#3b7dd8", label="out")
    ax.invert_yaxis()
    ax.set_xlabel("documents")
    ax.legend(loc="lower right")
    ax.set_title("Documents in and out of each stage")
    return svg(fig)


def reasons_plot(funnel: list[dict]) -> str | None:
    drops = sorted(((n, reason) for row in funnel for reason, n in row["drops"].items()), reverse=True)[:TOP_REASONS]
    if not drops:
        return None
    fig, ax = figure(9, 0.3 * len(drops) + 1)
    ax.barh([reason for _, reason in drops], [n for n, _ in drops], color="#d8703b")
    ax.invert_yaxis()
    ax.set_xlabel("documents dropped")
    ax.set_title(f"Top {len(drops)} drop reasons")
    return svg(fig)


def render(summary: dict, sections: list[Section]) -> str:
    """The page: header, dataset version, funnel (plots and table), then each stage's section in run order."""
    funnel = summary["funnel"]
    rows = [
        {
            "stage": r["stage"],
            "in": r["docs_in"],
            "out": r["docs_out"],
            "cached": "yes" if r["cached"] else "no",
            "seconds": f"{r['seconds']:.2f}",
            "why": r.get("why", ""),
        }
        for r in funnel
    ]
    figures = [funnel_plot(funnel), reasons_plot(funnel)]
    parts = [
        f"<h1>Curation report</h1><p class='meta'>version {html.escape(str(summary.get('version')))} · run "
        f"{html.escape(summary['run_id'])} · {summary['rows']:,} documents · {summary['seconds']:.1f} s · "
        f"output {html.escape(summary['output'])}</p>",
        "<h2>Dataset version</h2>" + (markdown_html(delta_markdown(summary["delta"])) if summary.get("delta") else ""),
        "<h2>Funnel</h2>" + "".join(f"<figure>{f}</figure>" for f in figures if f) + html_table(rows, list(rows[0])),
    ]
    parts += [f"<h2>{html.escape(s.title)}</h2>{s.html_body}" for s in sections if s.key != "delta"]
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
    fig, axes = subplots(rows, columns, figsize=(12, 2.1 * rows), squeeze=False)
    for ax in axes.flat[len(cuts) :]:
        ax.axis("off")
    for ax, cut in zip(axes.flat, cuts):
        edges = cut["edges"]
        ax.stairs(cut["counts"], edges, fill=True, color="#c6dbef")
        lo, hi = edges[0], edges[-1]
        for value, style in (
            (cut["default"], dict(color="#555", linestyle="--")),
            (cut["value"], dict(color="#c0392b")),
        ):
            if lo <= value <= hi:
                ax.axvline(value, linewidth=1.4, **style)
        ax.set_title(f"{cut['knob'].split('.')[1]}: {cut['default']:g} → {cut['value']:g}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{lang}: signal histograms (p1-p99); dashed: global cut, red: calibrated", fontsize=10)
    fig.tight_layout()
    return svg(fig)


def calibration_page(report: dict) -> str:
    """The `calibrate` flow's page: per language, documents and keep rates, then its histograms."""
    languages, cuts = report["languages"], report["cuts"]
    rows = [
        {
            "language": lang,
            "documents": entry["documents"],
            "knobs": sum(c["lang"] == lang for c in cuts),
            "keeps (global)": f"{entry['kept_before']:.1%}",
            "keeps (calibrated)": f"{entry['kept_after']:.1%}",
        }
        for lang, entry in languages.items()
    ]
    parts = [
        f"<h1>Clean calibration</h1><p class='meta'>{html.escape(json.dumps(report['calibration']))}</p>",
        "<h2>Languages</h2>" + html_table(rows, list(rows[0])) if rows else "",
    ]
    calibrated = [lang for lang in languages if any(c["lang"] == lang for c in cuts)][:CALIBRATION_LANGUAGES]
    for lang in calibrated:
        mine = [c for c in cuts if c["lang"] == lang]
        table = [
            {
                "knob": c["knob"],
                "n": c["n"],
                "global": f"{c['default']:g}",
                "calibrated": f"{c['value']:g}",
                "keeps (global)": f"{c['kept_default']:.1%}",
                "keeps (calibrated)": f"{c['kept']:.1%}",
                "q1 / median / q3": (
                    f"{c['quantiles']['q1']:.4g} / {c['quantiles']['median']:.4g} / {c['quantiles']['q3']:.4g}"
                ),
            }
            for c in mine
        ]
        parts.append(
            f"<h2>{html.escape(lang)}</h2><figure>{calibration_plot(lang, mine)}</figure>"
            + html_table(table, list(table[0]))
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Winnow clean calibration</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
