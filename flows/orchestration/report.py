"""The run report: a stage funnel in the terminal, as a Prefect table artifact, and as JSON; the report
sections (flows/report/section.py) as Prefect markdown artifacts, summary keys and the HTML report."""

from __future__ import annotations

from dataclasses import asdict

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from rich.console import Console
from rich.table import Table

from flows.engine.publish import OutputDir
from flows.report.history import stage_reasons
from flows.report.html import render
from flows.report.section import Section


def format_drops(drops: dict[str, int]) -> str:
    return ", ".join(f"{reason}={n}" for reason, n in sorted(drops.items(), key=lambda kv: -kv[1])) or "-"


def funnel_table(funnel) -> Table:
    table = Table(title="Curation funnel", show_lines=False)
    for column, justify in [
        ("stage", "left"),
        ("docs in", "right"),
        ("docs out", "right"),
        ("dropped by reason", "left"),
        ("seconds", "right"),
        ("cached", "center"),
        ("why", "left"),
    ]:
        table.add_column(column, justify=justify, overflow="fold")
    for row in funnel:
        table.add_row(
            row.stage,
            f"{row.docs_in:,}",
            f"{row.docs_out:,}",
            format_drops(row.drops),
            f"{row.seconds:.2f}",
            "yes" if row.cached else f"no ({row.shards_computed} shards)",
            row.why,
        )
    return table


def publish(
    ctx,
    run_id: str,
    funnel,
    output: dict,
    seconds: float,
    sections: list[Section],
    config_sections: dict[str, str],
) -> dict:
    """Print the funnel and sections, publish them to Prefect, write the run summary next to the output.

    `config_sections` names each stage's config section, where the "why" of its row looks for changes."""
    out = OutputDir(ctx.cfg.output)
    inputs = {f.relpath: f.fingerprint for f in ctx.inputs}
    config = ctx.cfg.model_dump(mode="json")
    reasons = stage_reasons(funnel, config, inputs, out.last_summary(), config_sections)
    for row in funnel:
        row.why = reasons[row.stage]
    Console(width=200).print(funnel_table(funnel))
    create_table_artifact(
        key="curation-funnel",
        table=[
            {
                "stage": r.stage,
                "docs_in": r.docs_in,
                "docs_out": r.docs_out,
                "drops": format_drops(r.drops),
                "seconds": r.seconds,
                "cached": r.cached,
                "why": r.why,
            }
            for r in funnel
        ],
        description=f"Stage funnel of the curation into {ctx.cfg.output}",
    )
    summary = {
        "run_id": run_id,
        "version": output["version"],
        "output": output["data"],
        "rows": output["rows"],
        "seconds": round(seconds, 3),
        "store": ctx.store.url,
        "dashboard": ctx.progress.dashboard_link,  # the Dask dashboard, while the cluster lived
        "config": config,
        "inputs": inputs,
        "funnel": [asdict(r) for r in funnel],
        **{section.key: section.data for section in sections},
    }
    for section in sections:
        create_markdown_artifact(key=section.artifact, markdown=section.markdown)
        print(section.headline)
    summary["report"] = out.write_report(run_id, render(summary, sections))
    create_link_artifact(key="run-report", link=summary["report"], description="Self-contained HTML run report")
    path = out.write_summary(summary)
    print(f"dataset: {output['data']} ({output['rows']:,} documents, version {output['version']})")
    print(
        f"run summary: {path}; report: {summary['report']}; stage artifacts (kept/rejected per shard): {ctx.store.url}"
    )
    return summary
