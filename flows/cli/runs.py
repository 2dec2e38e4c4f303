"""`winnow run --from-run`: the config an earlier run used, from the output's run summaries, else from
the Prefect API when `PREFECT_API_URL` is set (a run started from the UI on another output)."""

from __future__ import annotations

import asyncio
import os

from flows.report.history import run_summaries
from tasks.errors import InputError


def config_of_run(run_id: str, output: str) -> dict:
    """The config a run used: from `<output>/runs/`, else from the Prefect API when one is configured;
    less how it showed progress (`run.progress`), which belongs to the command that reruns it.

    `run_id` may be a prefix of the flow run id or the name of the dataset version the run published.
    """
    matches = [s for s in run_summaries(output) if s["run_id"].startswith(run_id) or s.get("version") == run_id]
    if len(matches) == 1:
        return _without_display(matches[0]["config"])
    if len(matches) > 1:
        raise InputError(f"run id {run_id!r} is ambiguous in {output}: {', '.join(s['run_id'] for s in matches)}")
    if os.environ.get("PREFECT_API_URL"):
        return _without_display(asyncio.run(_config_from_prefect(run_id)))
    known = ", ".join(s["run_id"][:8] for s in run_summaries(output)) or "none"
    raise InputError(
        f"no run {run_id!r} in {output}/runs (runs there: {known}); set PREFECT_API_URL to search Prefect"
    )


def _without_display(config: dict) -> dict:
    """A rerun of a `--quiet` run shows progress unless it is `--quiet` itself."""
    run = {key: value for key, value in (config.get("run") or {}).items() if key != "progress"}
    return {**config, "run": run}


async def _config_from_prefect(run_id: str) -> dict:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        try:
            flow_run = await client.read_flow_run(run_id)
        except Exception as exc:  # the client raises httpx/ObjectNotFound/ValueError for a bad id
            raise InputError(f"no flow run {run_id!r} in Prefect at {os.environ['PREFECT_API_URL']} ({exc})") from exc
    if "cfg" not in flow_run.parameters:
        raise InputError(f"flow run {run_id} is not a curate run (parameters: {', '.join(flow_run.parameters)})")
    return flow_run.parameters["cfg"]
