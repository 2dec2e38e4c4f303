"""The contamination report: per benchmark, documents hit, items hit, and examples side by side."""

from __future__ import annotations

from collections import defaultdict

EXAMPLES_PER_BENCHMARK = 3
SPAN_CHARS = 300  # an example shows this much of each side
DOCUMENTS_LISTED = 50  # the "why" table: enough to review a run by eye, not a dump of the column


def clip(text: str, limit: int = SPAN_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def methods(params) -> str:
    """Which searches ran: a report that finds nothing must say whether paraphrases were looked for."""
    ngrams = f"{params.ngram.n}-gram overlap"
    if not params.semantic.enabled:
        return f"{ngrams} only (embedding search off: `decontam.semantic.enabled`)"
    limits = ", ".join(f"{name} {t:.2f}" for name, t in params.semantic_thresholds().items())
    return f"{ngrams} and embedding neighbours ({params.semantic.encoder}, cosine >= {limits})"


def evidence(span: dict, params) -> str:
    """Why a span counts, in words: its item's n-gram overlap, or its cosine against the threshold."""
    if span["method"] == "ngram":
        return f"{params.ngram.n}-gram overlap, {span['score']:.0%} of the item"
    return f"cosine {span['score']:.3f} >= {params.semantic_thresholds()[span['benchmark']]:.2f}"


def outcome(row: dict) -> str:
    if not row["kept"]:
        return f"rejected ({row.get('reason')})"
    return f"excised {row['n_contam_chars_cut']:,} chars" if row.get("n_contam_chars_cut") else "flagged, kept whole"


def contamination_report(rows: list[dict], index, params) -> tuple[dict, str]:
    """Summary dict and markdown from the contaminated documents' rows.

    Args:
        rows: one dict per contaminated document with `id`, `contam_benchmark`, `contam_items`,
            `contam_spans`, `n_contam_chars_cut`, `kept` (bool) and, when rejected, `reason`.
        index: the `tasks.decontam.Index` the stage matched against (item texts); None when no rows.
        params: the stage's `DecontamParams` (action and methods are named in the report).

    Returns:
        ({"benchmarks": {benchmark: {documents, documents_rejected, items_hit, by_method, examples}},
          "documents": [{doc_id, benchmark, item_id, method, evidence, outcome}, ...]}, markdown):
        `documents` says for each of the first DOCUMENTS_LISTED contaminated documents why (its
        strongest span) and what was done.
    """
    text_of = {}
    if index is not None:
        keys = zip(index.items.column("benchmark").to_pylist(), index.items.column("item_id").to_pylist())
        text_of = dict(zip(keys, index.items.column("text").to_pylist()))
    documents = []
    per: dict[str, dict] = defaultdict(
        lambda: {
            "documents": 0,
            "documents_rejected": 0,
            "items": set(),
            "by_method": defaultdict(int),
            "examples": [],
        }
    )
    for row in rows:
        if len(documents) < DOCUMENTS_LISTED:
            best = max(row["contam_spans"], key=lambda s: (s["method"] == "ngram", s["score"]))
            documents.append(
                {
                    "doc_id": row["id"],
                    "benchmark": best["benchmark"],
                    "item_id": best["item_id"],
                    "method": best["method"],
                    "evidence": evidence(best, params),
                    "outcome": outcome(row),
                }
            )
        for benchmark in sorted({s["benchmark"] for s in row["contam_spans"]}):
            entry = per[benchmark]
            spans = [s for s in row["contam_spans"] if s["benchmark"] == benchmark]
            entry["documents"] += 1
            entry["documents_rejected"] += not row["kept"]
            entry["items"].update(s["item_id"] for s in spans)
            for method in sorted({s["method"] for s in spans}):
                entry["by_method"][method] += 1
            if len(entry["examples"]) < EXAMPLES_PER_BENCHMARK:
                best = max(spans, key=lambda s: (s["method"] == "ngram", s["score"]))
                entry["examples"].append(
                    {
                        "doc_id": row["id"],
                        "item_id": best["item_id"],
                        "method": best["method"],
                        "score": round(float(best["score"]), 4),
                        "document_span": clip(best["text"]),
                        "benchmark_item": clip(text_of.get((benchmark, best["item_id"]), "")),
                    }
                )
    summary = {
        name: {
            "documents": e["documents"],
            "documents_rejected": e["documents_rejected"],
            "items_hit": len(e["items"]),
            "by_method": dict(e["by_method"]),
            "examples": e["examples"],
        }
        for name, e in sorted(per.items())
    }
    return {"benchmarks": summary, "documents": documents}, markdown(summary, documents, len(rows), params)


def markdown(summary: dict, documents: list[dict], n_rows: int, params) -> str:
    searched = f"Searched by {methods(params)}."
    actions = f"action: n-gram hits {params.action}, embedding-only hits {params.semantic_action}"
    if not summary:
        return f"### Decontamination\n\nNo document matched a benchmark item ({actions}). {searched}"
    lines = [
        f"### Decontamination ({actions})",
        "",
        searched,
        "",
        "| benchmark | documents | rejected | items hit | by method |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {e['documents']:,} | {e['documents_rejected']:,} | {e['items_hit']:,} | "
        f"{', '.join(f'{m} {n}' for m, n in e['by_method'].items())} |"
        for name, e in summary.items()
    ]
    for name, e in summary.items():
        lines += [
            "",
            f"#### {name}: examples",
            "",
            "| document | matched span | benchmark item | method (score) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{x['doc_id']}` | {cell(x['document_span'])} | `{x['item_id']}`: {cell(x['benchmark_item'])} | "
            f"{x['method']} ({x['score']}) |"
            for x in e["examples"]
        ]
    shown = f"the first {len(documents)} of {n_rows:,}" if n_rows > len(documents) else f"all {n_rows:,}"
    lines += [
        "",
        f"#### Why each document was flagged ({shown})",
        "",
        "| document | benchmark item | evidence | outcome |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{x['doc_id']}` | {x['benchmark']} `{x['item_id']}` | {x['method']}: {x['evidence']} | {x['outcome']} |"
        for x in documents
    ]
    return "\n".join(lines)


def cell(text: str) -> str:
    return text.replace("|", "\\|")
