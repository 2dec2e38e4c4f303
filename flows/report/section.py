"""A run report's section: data for the run summary, Markdown for Prefect and the terminal, HTML for the page.

A stage names its section in its declaration (`Stage.report`, `flows/stages/`); the flow adds the
version delta (`delta_section`). No Prefect and no plotting here: stage modules import this one,
and whatever imports them (a worker re-importing a script's main module) should not pay for them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from flows.engine.publish import MANIFEST, OutputDir, delta, delta_markdown


@dataclass(frozen=True)
class Section:
    """One part of the run report: `key` in run_summary.json and a Prefect markdown artifact.

    `html` is the section's body in the HTML report (figures, tables); empty: its Markdown's
    paragraphs. It is not kept in the summary.
    """

    key: str
    artifact: str  # Prefect artifact keys: lowercase letters, digits and dashes
    data: dict
    markdown: str
    html: str = ""

    @property
    def title(self) -> str:
        return self.markdown.partition("\n\n")[0].removeprefix("### ")

    @property
    def headline(self) -> str:
        """Title and first paragraph, for the terminal; the whole section is in the artifact and report."""
        first_paragraph = self.markdown.partition("\n\n")[2].partition("\n\n")[0]
        return f"{self.title}: {first_paragraph}"

    @property
    def html_body(self) -> str:
        return self.html or markdown_html(self.markdown)


def markdown_html(markdown: str) -> str:
    """A section's Markdown (a `###` title, then sentences with `code`) as HTML paragraphs."""
    paragraphs = [p for p in markdown.split("\n\n") if not p.startswith("### ")]
    return "".join(
        "<p>" + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(p, quote=False)) + "</p>" for p in paragraphs
    )


def html_table(rows: list[dict], columns: list[str]) -> str:
    """Rows as an HTML table, integers right-aligned with thousands separators."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{row[c]:,}</td>'
            if isinstance(row[c], int) and not isinstance(row[c], bool)
            else f"<td>{html.escape(str(row[c]))}</td>"
            for c in columns
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def delta_section(ctx, output: dict, stages: dict) -> Section:
    """What the dataset version of this run added and removed (flows/engine/publish.py); nothing when unchanged."""
    out = OutputDir(ctx.cfg.output)
    if output["cached"]:
        report = {"version": output["version"], "unchanged": True}
    elif "delta" in output:  # measured by `write` on the staged version, for its dataset card
        report = output["delta"]
    else:
        previous = out.read_json(f"{out.version_dir(output['previous'])}/{MANIFEST}") if output["previous"] else None
        report = delta(out, previous, output, ctx.store, stages)
    return Section("delta", "dataset-delta", report, delta_markdown(report))
