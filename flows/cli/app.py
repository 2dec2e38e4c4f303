"""`winnow`: run, inspect, train, calibrate and demo from the terminal; runs are Prefect flows (`curate`,
`train-classifier`, `calibrate`)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tasks.errors import WinnowError

DEMO_ROOT = Path(".winnow/demo")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)

InputOption = Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Input files, globs or URLs.")]
OutputOption = Annotated[Optional[str], typer.Option("--output", "-o", help="Output directory or URL.")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")]
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config value: section.key=value.")]
StoreOption = Annotated[Optional[str], typer.Option(help="Artifact store (default <output>/.winnow-store).")]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress display, and only Prefect's warnings: the funnel and errors remain."
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Also Prefect's task-run lines and a line per finished shard."),
]


def _curation_base(input: list[str] | None, output: str | None, store: str | None) -> dict:
    """The curation config the input/output/store options set, under the YAML and --set."""
    return {"input": {"paths": input} if input else None, "output": output, "store": store}


def _quiet_prefect() -> None:
    """Telemetry calls fail offline and fill the logs (docs/operations/stack.md); the user can still override."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # the ephemeral API server's default 20 s start-up limit fails `winnow run` on busy cores
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _verbosity(quiet: bool, verbose: bool) -> list[str]:
    """The `run.progress` overrides of --quiet and --verbose (after --set: the flag wins). --quiet also
    keeps Prefect's console to warnings; set before Prefect is imported, which reads it then."""
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other")
    if quiet:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
        return ["run.progress.display=off"]
    return ["run.progress.shards=true"] if verbose else []


def _fail(exc: WinnowError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def run(
    input: InputOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    set_: SetOption = [],
    store: StoreOption = None,
    from_run: Annotated[
        Optional[str],
        typer.Option(
            "--from-run",
            help="Rerun an earlier run's config (its run id, a prefix, or its dataset version), with "
            "--set changes on top: only the stages a change touches recompute. Looked up in --output (default out), "
            "else in Prefect when PREFECT_API_URL is set.",
        ),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Curate a corpus with the full flow. Progress goes to stderr: a live line per running stage on a
    terminal, plain lines otherwise (`run.progress`); `winnow status` reads it from elsewhere."""
    from flows.cli.runs import config_of_run
    from flows.config import load_config

    _quiet_prefect()
    overrides = [*set_, *_verbosity(quiet, verbose)]
    try:
        start = config_of_run(from_run, output or "out") if from_run else None
        cfg = load_config(config, overrides, base=_curation_base(input, output, store), start=start)
        _run_flow(cfg)
    except WinnowError as exc:
        _fail(exc)


def _run_flow(cfg) -> dict:
    """Inputs and models are checked before Prefect or Dask start, so a typo costs nothing."""
    from flows.engine.context import discover_inputs
    from flows.orchestration.curate import curate

    discover_inputs(cfg.input.paths)
    return curate(cfg)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option(help="Where the demo corpus, model, store and output go.")] = DEMO_ROOT,
    ui: Annotated[
        bool,
        typer.Option(
            "--ui",
            help="Run it through a local Prefect server and the served "
            "deployments (curate/adhoc), and keep them up for the UI until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="With --ui: the Prefect server's port on 127.0.0.1.")] = 4200,
    set_: SetOption = [],
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Write the seeded demo corpus, train its quality classifier and curate it with the full flow on a
    local Dask cluster; prints where each result is."""
    from flows.cli.demo_run import run_demo, run_demo_ui

    _quiet_prefect()
    try:
        if ui:
            with contextlib.suppress(KeyboardInterrupt):
                run_demo_ui(directory, port)
        else:
            run_demo(directory, [*set_, *_verbosity(quiet, verbose)])
    except WinnowError as exc:
        _fail(exc)


@app.command()
def inspect(
    output: Annotated[str, typer.Argument(help="An output directory or URL with a run_summary.json.")],
    stage: Annotated[str, typer.Option(help="Stage whose rejected documents to show (read = quarantine).")],
    reason: Annotated[Optional[str], typer.Option(help="Only this reason code (with --spans: this type).")] = None,
    n: Annotated[int, typer.Option("-n", help="How many documents.")] = 5,
    chars: Annotated[int, typer.Option(help="Characters of text to show per document.")] = 400,
    spans: Annotated[
        bool, typer.Option("--spans", help="Show the spans the stage marked in kept documents (pii: pii_spans).")
    ] = False,
) -> None:
    """Why was this dropped? Show rejected documents with their reason and measured value, or with
    --spans, what a stage marked (`winnow inspect out/ --stage pii --spans --reason phone`)."""
    from flows.report.rejections import rejected_examples, span_examples

    try:
        if spans:
            marked = span_examples(output, stage, reason, n, max(chars // 2, 20))
        else:
            examples = rejected_examples(output, stage, reason, n)
    except WinnowError as exc:
        _fail(exc)
    if spans:
        for example in marked:
            typer.secho(f"── {example['id']}  {example['type']}", bold=True)
            typer.echo(example["text"])
        if not marked:
            typer.echo(f"no spans for stage {stage!r}" + (f" of type {reason!r}" if reason else ""))
        return
    for example in examples:
        typer.secho(f"── {example['id']}  {example['reason']}  value={example['value']}", bold=True)
        typer.echo(example["text"][:chars] + ("…" if len(example["text"]) > chars else ""))
    if not examples:
        typer.echo(f"no rejected documents for stage {stage!r}" + (f" and reason {reason!r}" if reason else ""))


@app.command()
def status(
    target: Annotated[str, typer.Argument(help="An output directory or URL, or the artifact store of a run.")] = "out",
) -> None:
    """Where the run in progress and the last finished run stand, stage by stage: complete, running
    (shards done, rates, ETA) or not started; after a crash, what a rerun will reuse. Reads only the
    store's run journals and shard files, never text: another terminal, S3 and a dead run all work."""
    from rich.console import Console

    from flows.report.status import run_status, status_renderable

    try:
        Console().print(status_renderable(run_status(target)))
    except WinnowError as exc:
        _fail(exc)


@app.command()
def train(
    labeled: Annotated[Optional[list[str]], typer.Option("--labeled", help="Labeled files, globs or URLs.")] = None,
    positive: Annotated[
        Optional[list[str]], typer.Option("--positive", help="Files of positive documents (DCLM: the reference set).")
    ] = None,
    negative: Annotated[
        Optional[list[str]], typer.Option("--negative", help="Files of negative documents (DCLM: raw corpus).")
    ] = None,
    kind: Annotated[Optional[str], typer.Option(help="fasttext or embedding_head.")] = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    set_: SetOption = [],
) -> None:
    """Train a classifier (the train-classifier flow) and print the scorer config that plugs it in."""
    from flows.config import load_config
    from flows.orchestration.train import TrainConfig, resolve_inputs, train_classifier

    _quiet_prefect()
    try:
        cfg = load_config(
            config,
            set_,
            schema=TrainConfig,
            base={
                "labeled": labeled,
                "positive": positive,
                "negative": negative,
                "kind": kind,
                "output": output,
            },
        )
        resolve_inputs(cfg)
        train_classifier(cfg)
    except WinnowError as exc:
        _fail(exc)


@app.command()
def calibrate(
    input: InputOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    set_: SetOption = [],
    store: StoreOption = None,
    method: Annotated[
        str,
        typer.Option(
            help="corpus (CulturaX: fences of the input's own distribution) or "
            "reference (FineWeb-2: the input is good text to keep)."
        ),
    ] = "corpus",
    min_docs: Annotated[
        int,
        typer.Option(help="Languages (clean) or encoder paths (decontam) with fewer documents keep their thresholds."),
    ] = 100,
    stage: Annotated[
        str,
        typer.Option(
            help="clean: per-language rule thresholds; decontam: per-benchmark cosine thresholds of the embedding "
            "search, from an input of pages that copy no benchmark item."
        ),
    ] = "clean",
    target_fpr: Annotated[
        float, typer.Option(help="decontam: share of the input all benchmarks together may flag, per encoder.")
    ] = 0.005,
    to: Annotated[Path, typer.Option(help="Directory for the YAML, JSON and HTML it writes.")] = Path("calibration"),
) -> None:
    """Choose `clean` thresholds per language, or `decontam` thresholds per benchmark, from a corpus (the
    calibrate flows); prints the YAML to feed back with --config."""
    from pydantic import ValidationError

    from flows.config import load_config
    from flows.engine.context import discover_inputs
    from tasks.errors import ConfigError

    _quiet_prefect()
    try:
        curation = load_config(config, set_, base=_curation_base(input, output, store))
        discover_inputs(curation.input.paths)
        if stage == "decontam":
            if not curation.decontam.benchmarks or not curation.decontam.semantic.enabled:
                raise ConfigError(
                    "calibrate --stage decontam scans for embedding neighbours: set decontam.benchmarks "
                    "(--set or --config) and keep decontam.semantic.enabled on"
                )
            from flows.orchestration.calibrate_decontam import DecontamCalibrateConfig, calibrate_decontam
            from tasks.decontam.calibrate import DecontamCalibration

            how = DecontamCalibration(target_fpr=target_fpr, min_docs=min_docs)
            calibrate_decontam(DecontamCalibrateConfig(curation=curation, calibration=how, output=str(to)))
            return
        if stage != "clean":
            raise ConfigError(f"--stage must be clean or decontam, not {stage!r}")
        from flows.orchestration.calibrate_clean import CalibrateConfig, calibrate_clean
        from tasks.clean.calibrate import CalibrationParams

        calibration = CalibrationParams(method=method, min_docs=min_docs)
        calibrate_clean(CalibrateConfig(curation=curation, calibration=calibration, output=str(to)))
    except WinnowError as exc:
        _fail(exc)
    except ValidationError as exc:
        _fail(ConfigError(str(exc)))


@app.command()
def ui(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4200) -> None:
    """Start the Prefect server and UI on 127.0.0.1 (SQLite by default; Postgres by
    PREFECT_API_DATABASE_CONNECTION_URL). Runs started with PREFECT_API_URL set report to it."""
    from flows.orchestration.deployments import prefect_server

    with prefect_server(port) as api:
        typer.echo(f"Prefect UI: http://127.0.0.1:{port}   (Ctrl-C stops it)")
        typer.echo(f"point runs at it: export PREFECT_API_URL={api}")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


@app.command()
def serve(
    input: InputOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    set_: SetOption = [],
    cron: Annotated[str, typer.Option(help="Schedule of curate/recurate-nightly.")] = "0 3 * * *",
) -> None:
    """Serve the deployments curate/adhoc and curate/recurate-nightly from this process
    (needs PREFECT_API_URL, e.g. from `winnow ui`)."""
    from prefect import serve as serve_deployments

    from flows.config import load_config
    from flows.orchestration.deployments import deployments

    _quiet_prefect()
    try:
        cfg = load_config(config, set_, base={"input": {"paths": input} if input else None, "output": output})
    except WinnowError as exc:
        _fail(exc)
    serve_deployments(*deployments(cfg, cron))


@app.command()
def schema(
    markdown: Annotated[
        bool, typer.Option(help="A reference table (as in the docs' config reference) instead of JSON schema.")
    ] = False,
) -> None:
    """Print the config's JSON schema (the Prefect UI form of the curate flow) or its reference table."""
    from flows.config import CurationConfig, reference_markdown

    typer.echo(reference_markdown() if markdown else json.dumps(CurationConfig.model_json_schema(), indent=1))


def main() -> None:
    """The `winnow` console script; in-process callers (tests) use `app` and run unsupervised."""
    from flows.cli.supervise import main as supervised_main

    supervised_main(app, long_running={"run", "demo", "train", "serve"})
