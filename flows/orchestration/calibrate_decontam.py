"""The `calibrate-decontam` flow: per-benchmark cosine thresholds of `decontam`'s embedding search, chosen
from the user's own negatives (pages that copy no benchmark item).

The pages go through the run's own stages under the keys `curate` uses, up to the decontam `scan`
phase (keyed without thresholds), so a `winnow run` with the YAML after it re-embeds nothing: only
decontam's decision and what follows it run again. The thresholds are chosen by
`tasks/decontam/calibrate.py`, one set per encoder path (English, multilingual), and written as a YAML
for `--config`, as JSON and as a Prefect artifact.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

import tasks.decontam
from flows.config import CurationConfig
from flows.engine.context import RunContext, open_context
from flows.engine.stage import MapCall
from flows.engine.store import StageRef
from flows.stages import STAGES
from flows.stages.decontam import index_url, scans_windows
from tasks.decontam.calibrate import DecontamCalibration, calibrate, to_yaml
from tasks.errors import ConfigError

YAML_FILE, JSON_FILE = "decontam_thresholds.yaml", "decontam_calibration.json"


class DecontamCalibrateConfig(BaseModel):
    """A calibration: the curation whose stages scan the negatives, how cuts are chosen, where they go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    curation: CurationConfig = Field(
        description="Input (pages that copy no benchmark item), store, the benchmarks and encoders of "
        "`decontam`: the windows are scanned exactly as this curation scans them."
    )
    calibration: DecontamCalibration = DecontamCalibration()
    output: str = Field("calibration", description=f"Local directory for {YAML_FILE} and {JSON_FILE}.")


@task(name="decontam.scan", cache_policy=NO_CACHE)
def scan_negatives(ctx: RunContext) -> StageRef:
    """The stages before `decontam`, then its scan phase, each cached in the store as `curate` caches it."""
    if not scans_windows(ctx.cfg.decontam):
        raise ConfigError("nothing to calibrate: set decontam.benchmarks and keep decontam.semantic.enabled on")
    ref = None
    for stage in (STAGES.stages[0], *STAGES.order(ctx.cfg)):
        if stage.name == "decontam":
            return MapCall(stage.phases[0], stage.version, stage.params(ctx.cfg), ref).run(ctx)
        ref = stage.run(ctx, ref)
    raise ConfigError("decontam is not among this curation's stages")


def calibration_markdown(result: dict, yaml_path: Path) -> str:
    rows = [
        f"| {path} | {name} | {entry['documents']:,} | {value} | {entry['reached'][name]:,} |"
        for path, entry in result.items()
        for name, value in entry["thresholds"].items()
    ]
    return (
        f"### Decontamination calibration\n\nPer-benchmark cosine thresholds in `{yaml_path}`: "
        f"`winnow run --config {yaml_path}` applies them.\n\n"
        "| path | benchmark | negatives | threshold | negatives reaching it |\n|---|---|---:|---:|---:|\n"
        + "\n".join(rows)
    )


@flow(name="calibrate-decontam", log_prints=True)
def calibrate_decontam(cfg: DecontamCalibrateConfig) -> dict:
    """Scan negatives with the curation's stages and choose per-benchmark thresholds from their cosines."""
    with open_context(cfg.curation, STAGES.warm_models(cfg.curation)) as ctx:
        ref = scan_negatives(ctx)
        columns = [tasks.decontam.WINDOWS.name, tasks.decontam.PATH.name]
        tables = [ctx.store.read_view(ref.stage, shard, columns) for shard in ref.shards]
        index = tasks.decontam.load_index(index_url(ctx, cfg.curation.decontam))
    windows = [w for t in tables for w in t.column(columns[0]).to_pylist()]
    paths = [p for t in tables for p in t.column(columns[1]).to_pylist()]
    result = calibrate(windows, paths, index, cfg.calibration)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    yaml_path = out / YAML_FILE
    yaml_path.write_text(to_yaml(result, cfg.calibration))
    (out / JSON_FILE).write_text(json.dumps(result, indent=1))
    markdown = calibration_markdown(result, yaml_path)
    create_markdown_artifact(key="decontam-calibration", markdown=markdown, description=f"Thresholds in {yaml_path}")
    print(markdown)
    print(f"calibrated thresholds: {yaml_path}; details: {out / JSON_FILE}")
    return result | {"yaml": str(yaml_path)}
