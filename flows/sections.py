"""The run report's sections: data for the run summary and Markdown for Prefect and the HTML report.

A stage names its section in the registry (`report=`); the flow adds the version delta. No Prefect
and no plotting here: the registry imports this module, and whatever imports the registry (a worker
re-importing a script's main module) should not pay for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from flows.publish import MANIFEST, OutputDir, delta, delta_markdown
from tasks.clean.doc import base_language
from tasks.thresholds import LANG_COLUMN, score_columns, threshold_markdown, threshold_report


@dataclass(frozen=True)
class Section:
    """One part of the run report: `key` in run_summary.json and a Prefect markdown artifact."""

    key: str
    artifact: str  # Prefect artifact keys: lowercase letters, digits and dashes
    data: dict
    markdown: str

    @property
    def headline(self) -> str:
        """Title and first paragraph, for the terminal; the whole section is in the artifact and report."""
        title, _, rest = self.markdown.partition("\n\n")
        first_paragraph = rest.partition("\n\n")[0]
        return f"{title.removeprefix('### ')}: {first_paragraph}"


SIZE_BUCKETS = ((2, 2), (3, 4), (5, 8), (9, 16), (17, 64), (65, None))
S_CURVE_JACCARDS = tuple(round(0.02 * i, 2) for i in range(51))  # where the report evaluates the S-curve
S_CURVE_SHOWN = ("0.50", "0.60", "0.70", "0.80", "0.90")  # of those, the ones the Markdown lists


def fuzzy_quality(ctx, upstream, fuzzy) -> Section:
    """Clusters of this run's batch, their size histogram, the expected S-curve of the parameters and
    a sampled precision estimate of the fuzzy dedup.

    The S-curve is the probability that a pair at each Jaccard is removed (`removal_probability`:
    LSH candidate and verification); precision is the share of sampled (removed, keeper) pairs whose
    exact shingle Jaccard reaches the target; pairs are spread evenly over the shards, the first of
    each shard's removals.
    """
    import tasks.dedup_fuzzy as fz

    params, store = ctx.cfg.dedup_fuzzy, ctx.store
    clusters_dir = store.manifest("dedup_fuzzy", fuzzy.key)["clusters"]  # None: every shard decided before
    clusters = fz.CLUSTER_SCHEMA.empty_table() if clusters_dir is None else ds.dataset(
        clusters_dir, format="parquet", filesystem=store.fs, schema=fz.CLUSTER_SCHEMA,
    ).to_table(columns=["component", "size"])
    sizes = clusters.group_by("component").aggregate([("size", "max")]).column("size_max").to_pylist()
    sizes = [n for n in sizes if n > 1]  # a member unlike its keeper stays, as a cluster of its own
    histogram = {
        f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}":
        sum(lo <= n and (hi is None or n <= hi) for n in sizes)
        for lo, hi in SIZE_BUCKETS
    }
    per_shard = math.ceil(ctx.cfg.run.report_sample_pairs / max(len(fuzzy.shards), 1))
    rejected = (store.read_rejected("dedup_fuzzy", shard, ["text", "dup_of"]) for shard in fuzzy.shards)
    removed = [  # keepers from the persistent index keep no text: those pairs are not sampled
        row for table in rejected if table is not None
        for row in table.slice(0, per_shard).to_pylist()
        if not row["dup_of"].startswith(fz.INDEX_PREFIX)
    ][: ctx.cfg.run.report_sample_pairs]
    keeper_at = [row["dup_of"].rsplit("\t", 1) for row in removed]  # (shard name, row) of each keeper
    texts_of = {  # each upstream shard that holds a sampled keeper is read once
        shard.name: store.read_view(upstream.stage, shard, ["text"]).column("text")
        for shard in upstream.shards if shard.name in {name for name, _ in keeper_at}
    }
    keepers = [texts_of[name][int(line)].as_py() for name, line in keeper_at]
    jaccards = fz.shingle_jaccard([r["text"] for r in removed], keepers, params)
    bands, rows = params.layout
    report = {
        "clusters": len(sizes),
        "docs_in_clusters": sum(sizes),
        "cluster_sizes": histogram,
        "jaccard_threshold": params.threshold,
        "bands": bands,
        "rows": rows,
        "verify_min_matches": params.min_matches if params.verify else None,
        "num_perm": params.num_perm,
        "removal_at_threshold": round(fz.removal_probability(params.threshold, params), 4),
        "removal_probability": {f"{j:.2f}": round(fz.removal_probability(j, params), 4) for j in S_CURVE_JACCARDS},
        "sampled_pairs": len(jaccards),
        "precision_estimate": round(sum(j >= params.threshold for j in jaccards) / len(jaccards), 4)
        if jaccards else None,
        "sampled_jaccard_min": round(min(jaccards), 4) if jaccards else None,
    }
    return Section("dedup_fuzzy", "dedup-fuzzy-report", report, dedup_markdown(report))


def dedup_markdown(report: dict) -> str:
    sizes = " | ".join(f"{k}: {v}" for k, v in report["cluster_sizes"].items())
    curve = " | ".join(f"{j}: {report['removal_probability'][j]:.2f}" for j in S_CURVE_SHOWN)
    verification = (
        f"verified at >= {report['verify_min_matches']} of {report['num_perm']} agreeing MinHash values"
        if report["verify_min_matches"] is not None else "not verified (every candidate is removed)"
    )
    return (
        f"### Fuzzy dedup\n\n{report['clusters']:,} clusters holding {report['docs_in_clusters']:,} documents "
        f"(sizes {sizes}).\n\nTarget Jaccard {report['jaccard_threshold']}: {report['bands']} x {report['rows']} "
        f"LSH bands, {verification}. Expected S-curve, the share of pairs removed at each Jaccard: {curve}; "
        f"at the target {report['removal_at_threshold']:.2f}.\n\nSampled {report['sampled_pairs']} removed/keeper "
        f"pairs: {report['precision_estimate']} reach the target Jaccard {report['jaccard_threshold']} "
        f"(lowest sampled Jaccard {report['sampled_jaccard_min']})."
    )


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
        rows.append({"lang": lang, "docs_in": n_in, "kept": kept_by.get(lang, 0),
                     "keep_rate": round(kept_by.get(lang, 0) / n_in, 4), "drops": drops})
    rows.sort(key=lambda row: (-row["docs_in"], row["lang"]))
    return Section("clean_languages", "clean-by-language", {"languages": rows}, clean_languages_markdown(rows))


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
        + (", ".join(f"`{reason}` {n:,}" for reason, n in list(r["drops"].items())[:REASONS_SHOWN]) or "-") + " |"
        for r in rows[:LANGUAGES_SHOWN]
    ]
    more = f"\n\n{len(rows) - LANGUAGES_SHOWN} more languages in the run summary." if len(rows) > LANGUAGES_SHOWN else ""
    return (
        f"### Cleaning by language\n\n`clean` kept {total_kept:,} of {total_in:,} documents in {len(rows)} "
        f"languages ({total_kept / max(total_in, 1):.1%}); per language, thresholds from `clean.languages` where "
        "set.\n\n| language | in | kept | keep rate | top drop reasons |\n|---|---:|---:|---:|---|\n"
        + "\n".join(lines) + more
    )


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
    return Section("score_thresholds", "score-thresholds", report, threshold_markdown(report))


def delta_section(ctx, output: dict, stages: dict) -> Section:
    """What the dataset version of this run added and removed (flows/publish.py); nothing when unchanged."""
    out = OutputDir(ctx.cfg.output)
    if output["cached"]:
        report = {"version": output["version"], "unchanged": True}
    else:
        previous = out.read_json(f"{out.version_dir(output['previous'])}/{MANIFEST}") if output["previous"] else None
        report = delta(out, previous, output, ctx.store, stages)
    return Section("delta", "dataset-delta", report, delta_markdown(report))
