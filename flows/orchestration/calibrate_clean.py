"""The `calibrate` flow: per-language thresholds of `clean`, chosen from the signals of a corpus.

The signals come from the run's own stages, under the same keys `curate` uses: read → ... → langid,
then `clean.signals` (keyed without thresholds). So a `winnow run` with the calibrated YAML after it
recomputes none of them: only `clean`'s decision and what its new kept set touches. The cuts are
chosen by `tasks/clean/calibrate.py`; this flow writes them as a YAML for `--config`, as JSON with the
distribution behind each, as a Prefect artifact and as an HTML page of per-language histograms.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from flows.config import CurationConfig
from flows.engine.context import RunContext, open_context
from flows.engine.stage import MapCall
from flows.engine.store import StageRef
from flows.stages import STAGES
from tasks.clean import SIGNAL_COLUMNS
from tasks.clean.calibrate import CalibrationParams, calibrate, summary, to_yaml
from tasks.errors import ConfigError

YAML_FILE, JSON_FILE, HTML_FILE = "clean_languages.yaml", "calibration.json", "calibration.html"


class CalibrateConfig(BaseModel):
    """A calibration: the curation whose stages measure the corpus, how cuts are chosen, where they go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    curation: CurationConfig = Field(
        description="Input (the corpus, or a reference set of good text), store and the params of every stage up to "
        "clean: the signals are measured exactly as this curation measures them."
    )
    calibration: CalibrationParams = CalibrationParams()
    output: str = Field("calibration", description=f"Local directory for {YAML_FILE}, {JSON_FILE} and {HTML_FILE}.")


@task(name="clean.signals", cache_policy=NO_CACHE)
def measure_signals(ctx: RunContext) -> StageRef:
    """The stages before `clean`, then its signals phase, each cached in the store as `curate` caches it."""
    ref = None
    for stage in (STAGES.stages[0], *STAGES.order(ctx.cfg)):
        if stage.name == "clean":
            return MapCall(stage.phases[0], stage.version, stage.params(ctx.cfg), ref).run(ctx)
        ref = stage.run(ctx, ref)
    raise ConfigError("the registry has no clean stage")


def signal_table(ctx: RunContext, ref: StageRef) -> pa.Table:
    """`lang` and the signals of every document that reached `clean` (never the text)."""
    tables = [ctx.store.read_view(ref.stage, shard, ["lang", *SIGNAL_COLUMNS]) for shard in ref.shards]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        raise ConfigError("no document reached clean: nothing to calibrate on")
    if "lang" not in tables[0].column_names:
        raise ConfigError("calibration is per language: the documents have no `lang` (is langid off?)")
    return pa.concat_tables(tables)


def calibration_markdown(report: dict, yaml_path: Path) -> str:
    rows = [
        f"| {lang} | {entry['documents']:,} | {sum(c['lang'] == lang for c in report['cuts'])} | "
        f"{entry['kept_before']:.1%} | {entry['kept_after']:.1%} |"
        for lang, entry in report["languages"].items()
    ]
    method = report["calibration"]["method"]
    return (
        f"### Clean calibration ({method})\n\n{len(report['cuts'])} per-language cuts in `{yaml_path}`: "
        f"`winnow run --config {yaml_path}` applies them.\n\n"
        "| language | documents | knobs calibrated | clean keeps (global) | clean keeps (calibrated) |\n"
        "|---|---:|---:|---:|---:|\n" + "\n".join(rows)
    )


@flow(name="calibrate", log_prints=True)
def calibrate_clean(cfg: CalibrateConfig) -> dict:
    """Measure a corpus with the curation's stages and choose per-language `clean` thresholds from it."""
    from flows.report.html import calibration_page  # plotting: kept off workers

    with open_context(cfg.curation, STAGES.warm_models(cfg.curation)) as ctx:
        table = signal_table(ctx, measure_signals(ctx))
    cuts, languages = calibrate(table, cfg.curation.clean, cfg.calibration)
    report = summary(cuts, languages, cfg.calibration)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    yaml_path, html_path = out / YAML_FILE, out / HTML_FILE
    yaml_path.write_text(to_yaml(cuts, languages, cfg.calibration))
    (out / JSON_FILE).write_text(json.dumps(report, indent=1))
    html_path.write_text(calibration_page(report))
    markdown = calibration_markdown(report, yaml_path)
    create_markdown_artifact(
        key="clean-calibration", markdown=markdown, description=f"Per-language cuts in {yaml_path}"
    )
    create_link_artifact(
        key="clean-calibration-report", link=str(html_path.resolve()), description="Histograms and cuts"
    )
    print(markdown)
    print(f"calibrated thresholds: {yaml_path}; distributions: {out / JSON_FILE}; report: {html_path}")
    return report | {"yaml": str(yaml_path), "report": str(html_path)}
