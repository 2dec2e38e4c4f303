"""The contamination report: per benchmark, documents hit, items hit, and examples side by side."""

from __future__ import annotations

from collections import Counter, defaultdict

from tasks.decontam.semantic import ENGLISH, MULTILINGUAL

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
    limits = ", ".join(f"{name} {t:.2f}" for name, t in params.semantic_thresholds(ENGLISH).items())
    found = f"{ngrams} and embedding neighbours ({params.semantic.encoder}, cosine >= {limits})"
    multilingual = params.semantic.multilingual
    if not multilingual.enabled:
        return found
    limits = ", ".join(f"{name} {t:.2f}" for name, t in params.semantic_thresholds(MULTILINGUAL).items())
    english = ", ".join(multilingual.english)
    return f"{found}; documents not in {english}: translations, by {multilingual.encoder} (cosine >= {limits})"


def evidence(span: dict, params) -> str:
    """Why a span counts, in words: its item's n-gram overlap, or its cosine against the threshold."""
    if span["method"] == "ngram":
        return f"{params.ngram.n}-gram overlap, {span['score']:.0%} of the item"
    path = MULTILINGUAL if span["method"] == "crosslingual" else ENGLISH
    return f"cosine {span['score']:.3f} >= {params.semantic_thresholds(path)[span['benchmark']]:.2f}"


def outcome(row: dict) -> str:
    if not row["kept"]:
        return f"rejected ({row.get('reason')})"
    return f"excised {row['n_contam_chars_cut']:,} chars" if row.get("n_contam_chars_cut") else "flagged, kept whole"


def contamination_report(rows: list[dict], index, params, coverage: dict | None = None) -> tuple[dict, str]:
    """Summary dict and markdown from the contaminated documents' rows.

    Args:
        rows: one dict per contaminated document with `id`, `contam_benchmark`, `contam_items`,
            `contam_spans`, `n_contam_chars_cut`, `kept` (bool) and, when rejected, `reason`.
        index: the `tasks.decontam.Index` the stage matched against (item texts); None when no rows.
        params: the stage's `DecontamParams` (action and methods are named in the report).
        coverage: documents per (`lang`, `contam_semantic_path`) of the whole batch, contaminated or not:
            which encoder looked at which languages, and which languages none did.

    Returns:
        ({"benchmarks": {benchmark: {documents, documents_rejected, items_hit, by_method, examples}},
          "languages": {lang: {documents, contaminated, path}},
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
    languages = by_language(rows, coverage or {})
    report = {"benchmarks": summary, "languages": languages, "documents": documents}
    return report, markdown(summary, documents, len(rows), params) + language_markdown(languages)


def by_language(rows: list[dict], coverage: dict[tuple[str | None, str | None], int]) -> dict[str, dict]:
    """Per language: documents, contaminated documents and the path that embedded them (`none`: no
    encoder covers the language, so only n-grams looked at it)."""
    contaminated = Counter(row.get("lang") or "unknown" for row in rows)
    languages: dict[str, dict] = {}
    for (lang, path), n in sorted(coverage.items(), key=lambda kv: -kv[1]):
        entry = languages.setdefault(lang or "unknown", {"documents": 0, "contaminated": 0, "path": {}})
        entry["documents"] += n
        entry["path"][path or "none"] = entry["path"].get(path or "none", 0) + n
    for lang, n in contaminated.items():
        languages.setdefault(lang, {"documents": n, "contaminated": 0, "path": {}})["contaminated"] = n
    return languages


def language_markdown(languages: dict[str, dict]) -> str:
    """The per-language table, when documents of more than one language were checked."""
    if len(languages) < 2:
        return ""
    unchecked = sum(e["path"].get("none", 0) for e in languages.values())
    lines = [
        "",
        "#### By language",
        "",
        f"{unchecked:,} documents in languages no encoder covers were checked by n-grams only."
        if unchecked
        else "Every document was embedded by an encoder that covers its language.",
        "",
        "| language | documents | contaminated | embedded by |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {lang} | {e['documents']:,} | {e['contaminated']:,} | "
        f"{', '.join(f'{path} {n:,}' for path, n in e['path'].items())} |"
        for lang, e in sorted(languages.items(), key=lambda kv: (-kv[1]["contaminated"], -kv[1]["documents"]))
    ]
    return "\n".join(lines)


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
