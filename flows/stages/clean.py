"""`clean`: rule-based cleaning (Gopher quality and repetition, C4, FineWeb, PII redaction), per language
(`tasks/clean/`), and its report section: per language, documents judged, kept and why dropped.

Two phases: the signals (transforms and measures, keyed without thresholds: a new threshold measures
nothing), then the decision, keyed by what it kept and dropped, so a shard whose verdicts a new
threshold leaves as they were keeps its key and the stages after clean reuse their work on it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import tasks.clean
from flows.engine.stage import Phase, Stage
from flows.report.section import Section, html_table
from tasks.clean.doc import base_language
from tasks.thresholds import LANG_COLUMN

LANGUAGES_SHOWN = 12  # rows of the per-language table in Markdown; the summary keeps every language
REASONS_SHOWN = 3


def clean_languages(ctx, upstream, ref) -> Section:
    """Per language: documents `clean` judged, kept, its keep rate and top drop reasons.

    Reads only `lang` and `reason` of the stage's shards, never the text; no `lang` column (language
    ID off) counts every document as unknown.
    """
    kept, dropped = [], []
    for shard in ref.shards:
        kept.append(_languages(ctx.store.read_view(ref.stage, shard, [LANG_COLUMN])))
        rejected = ctx.store.read_rejected(ref.stage, shard, [LANG_COLUMN, "reason"])
        if rejected is not None:
            dropped.append(pa.table({"lang": _languages(rejected), "reason": rejected.column("reason")}))
    kept_by = {}
    for langs in kept:
        for lang, n in zip(*_value_counts(langs)):
            kept_by[lang] = kept_by.get(lang, 0) + n
    reasons: dict[str, dict[str, int]] = {}
    if dropped:
        counts = pa.concat_tables(dropped).group_by(["lang", "reason"]).aggregate([("reason", "count")])
        for row in counts.to_pylist():
            reasons.setdefault(row["lang"], {})[row["reason"]] = row["reason_count"]
    rows = []
    for lang in kept_by.keys() | reasons.keys():
        drops = dict(sorted(reasons.get(lang, {}).items(), key=lambda kv: (-kv[1], kv[0])))
        n_in = kept_by.get(lang, 0) + sum(drops.values())
        rows.append(
            {
                "lang": lang,
                "docs_in": n_in,
                "kept": kept_by.get(lang, 0),
                "keep_rate": round(kept_by.get(lang, 0) / n_in, 4),
                "drops": drops,
            }
        )
    rows.sort(key=lambda row: (-row["docs_in"], row["lang"]))
    return Section(
        "clean_languages",
        "clean-by-language",
        {"languages": rows},
        clean_languages_markdown(rows),
        clean_languages_html(rows) if rows else "",
    )


def _languages(table: pa.Table) -> pa.Array:
    """The table's base languages (as `clean` keys its overrides), "unknown" where there is none."""
    langs = table.column(LANG_COLUMN).to_pylist() if LANG_COLUMN in table.column_names else [None] * table.num_rows
    return pa.array([base_language(lang) or "unknown" for lang in langs], pa.string())


def _value_counts(values: pa.Array) -> tuple[list, list]:
    counts = pc.value_counts(values)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


def clean_languages_markdown(rows: list[dict]) -> str:
    if not rows:
        return "### Cleaning by language\n\nNo documents reached `clean`."
    total_in, total_kept = sum(r["docs_in"] for r in rows), sum(r["kept"] for r in rows)
    lines = [
        f"| {r['lang']} | {r['docs_in']:,} | {r['kept']:,} | {r['keep_rate']:.1%} | "
        + (", ".join(f"`{reason}` {n:,}" for reason, n in list(r["drops"].items())[:REASONS_SHOWN]) or "-")
        + " |"
        for r in rows[:LANGUAGES_SHOWN]
    ]
    more = (
        f"\n\n{len(rows) - LANGUAGES_SHOWN} more languages in the run summary." if len(rows) > LANGUAGES_SHOWN else ""
    )
    return (
        f"### Cleaning by language\n\n`clean` kept {total_kept:,} of {total_in:,} documents in {len(rows)} "
        f"languages ({total_kept / max(total_in, 1):.1%}); per language, thresholds from `clean.languages` where "
        "set.\n\n| language | in | kept | keep rate | top drop reasons |\n|---|---:|---:|---:|---|\n"
        + "\n".join(lines)
        + more
    )


def clean_languages_html(rows: list[dict]) -> str:
    return html_table(
        [
            {
                "language": r["lang"],
                "in": r["docs_in"],
                "kept": r["kept"],
                "keep rate": f"{r['keep_rate']:.1%}",
                "top drop reasons": ", ".join(
                    f"{reason} {n:,}" for reason, n in list(r["drops"].items())[:REASONS_SHOWN]
                )
                or "-",
            }
            for r in rows
        ],
        ["language", "in", "kept", "keep rate", "top drop reasons"],
    )


STAGE = Stage(
    "clean",
    tasks.clean,
    tasks.clean.CleanParams,
    phases=(
        Phase(
            "clean.signals",
            tasks.clean.measure,
            params=tasks.clean.CleanParams.signal_params,
            reads=lambda params: ("text", "lang"),
        ),
        Phase(
            "clean",
            tasks.clean.decide,
            reads=lambda params: ("lang", *tasks.clean.SIGNAL_COLUMNS),
            key_params=tasks.clean.CleanParams.signal_params,
        ),
    ),
    report=clean_languages,
)
