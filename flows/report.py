"""The run report: a stage funnel in the terminal, as a Prefect table artifact, and as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from rich.console import Console
from rich.table import Table

SUMMARY_FILE = "run_summary.json"


def format_drops(drops: dict[str, int]) -> str:
    return ", ".join(f"{reason}={n}" for reason, n in sorted(drops.items(), key=lambda kv: -kv[1])) or "-"


def funnel_table(funnel) -> Table:
    table = Table(title="Curation funnel", show_lines=False)
    for column, justify in [("stage", "left"), ("docs in", "right"), ("docs out", "right"),
                            ("dropped by reason", "left"), ("seconds", "right"), ("cached", "center")]:
        table.add_column(column, justify=justify, overflow="fold")
    for row in funnel:
        table.add_row(row.stage, f"{row.docs_in:,}", f"{row.docs_out:,}", format_drops(row.drops),
                      f"{row.seconds:.2f}", "yes" if row.cached else f"no ({row.shards_computed} shards)")
    return table


SIZE_BUCKETS = ((2, 2), (3, 4), (5, 8), (9, 16), (17, 64), (65, None))


def fuzzy_quality(run, upstream, fuzzy) -> dict:
    """Clusters, their size histogram and a sampled precision estimate of the fuzzy dedup.

    Precision is the share of sampled (removed, keeper) pairs whose exact shingle Jaccard reaches
    the LSH threshold; pairs are spread evenly over the shards, the first of each shard's removals.
    """
    import tasks.dedup_fuzzy as fz

    params, store = run.cfg.dedup_fuzzy, run.store
    clusters_dir = f"{store.stage_dir('dedup_fuzzy', run.global_key('dedup_fuzzy', upstream))}/clusters"
    clusters = ds.dataset(clusters_dir, format="parquet", filesystem=store.fs, schema=fz.CLUSTER_SCHEMA)
    sizes = clusters.to_table(columns=["component", "size"]).group_by("component").aggregate([("size", "max")])
    sizes = sizes.column("size_max").to_pylist()
    histogram = {
        f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}":
        sum(lo <= n and (hi is None or n <= hi) for n in sizes)
        for lo, hi in SIZE_BUCKETS
    }
    per_shard = math.ceil(run.cfg.run.report_sample_pairs / max(len(fuzzy.shards), 1))
    removed = [  # keepers from the persistent index keep no text: those pairs are not sampled
        row for shard in fuzzy.shards
        for row in store.read_table(store.rejected_path("dedup_fuzzy", shard), columns=["text", "dup_of"])
        .slice(0, per_shard).to_pylist()
        if not row["dup_of"].startswith(fz.INDEX_PREFIX)
    ][: run.cfg.run.report_sample_pairs]
    keeper_at = [row["dup_of"].rsplit("\t", 1) for row in removed]  # (shard name, row) of each keeper
    texts_of = {  # each upstream shard that holds a sampled keeper is read once
        shard.name: store.read_table(store.kept_path(upstream.stage, shard), columns=["text"]).column("text")
        for shard in upstream.shards if shard.name in {name for name, _ in keeper_at}
    }
    keepers = [texts_of[name][int(line)].as_py() for name, line in keeper_at]
    jaccards = fz.shingle_jaccard([r["text"] for r in removed], keepers, params)
    return {
        "clusters": len(sizes),
        "docs_in_clusters": sum(sizes),
        "cluster_sizes": histogram,
        "jaccard_threshold": round(params.jaccard_threshold, 4),
        "sampled_pairs": len(jaccards),
        "precision_estimate": round(sum(j >= params.jaccard_threshold for j in jaccards) / len(jaccards), 4)
        if jaccards else None,
        "sampled_jaccard_min": round(min(jaccards), 4) if jaccards else None,
    }


def dedup_markdown(report: dict) -> str:
    sizes = " | ".join(f"{k}: {v}" for k, v in report["cluster_sizes"].items())
    return (
        f"### Fuzzy dedup\n\n{report['clusters']:,} clusters holding {report['docs_in_clusters']:,} documents "
        f"(sizes {sizes}).\n\nSampled {report['sampled_pairs']} removed/keeper pairs: "
        f"{report['precision_estimate']} reach the Jaccard threshold {report['jaccard_threshold']} "
        f"(lowest sampled Jaccard {report['sampled_jaccard_min']})."
    )


def publish(run, funnel, output: dict, seconds: float, dedup: dict) -> dict:
    """Print the funnel, publish it to Prefect, write run_summary.json next to the output."""
    Console(width=160).print(funnel_table(funnel))
    create_table_artifact(
        key="curation-funnel",
        table=[
            {"stage": r.stage, "docs_in": r.docs_in, "docs_out": r.docs_out, "drops": format_drops(r.drops),
             "seconds": r.seconds, "cached": r.cached}
            for r in funnel
        ],
        description=f"Stage funnel of the curation into {run.cfg.output}",
    )
    summary = {
        "output": output["data"],
        "rows": output["rows"],
        "seconds": round(seconds, 3),
        "store": run.store.url,
        "config": run.cfg.model_dump(mode="json"),
        "funnel": [asdict(r) for r in funnel],
        "dedup_fuzzy": dedup,
    }
    create_markdown_artifact(key="dedup-fuzzy-report", markdown=dedup_markdown(dedup))
    print(dedup_markdown(dedup).replace("### ", "").replace("\n\n", " "))
    fs, root = fsspec.core.url_to_fs(run.cfg.output)
    fs.pipe(f"{root}/{SUMMARY_FILE}", json.dumps(summary, indent=1).encode())
    print(f"dataset: {output['data']} ({output['rows']:,} documents)")
    print(f"run summary: {root}/{SUMMARY_FILE}; stage artifacts (kept/rejected per shard): {run.store.url}")
    return summary
