"""The run report: a stage funnel in the terminal, as a Prefect table artifact, and as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

import fsspec
from prefect.artifacts import create_table_artifact
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


def publish(run, funnel, output: dict, seconds: float) -> dict:
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
    }
    fs, root = fsspec.core.url_to_fs(run.cfg.output)
    fs.pipe(f"{root}/{SUMMARY_FILE}", json.dumps(summary, indent=1).encode())
    print(f"dataset: {output['data']} ({output['rows']:,} documents)")
    print(f"run summary: {root}/{SUMMARY_FILE}; stage artifacts (kept/rejected per shard): {run.store.url}")
    return summary
