"""`winnow demo`: every capability on the seeded demo corpus, offline, in a few minutes on a laptop.

1. The corpus and the classifier's examples are written (`flows/cli/demo.py`): reference pages, and raw
   crawl pages with the corpus's defects, from the same generator and another seed.
2. The `train-classifier` flow trains a DCLM-style fastText quality classifier, reference pages
   (positives) against raw pages (negatives), seeded; an unchanged rerun keeps the model.
3. The `curate` flow runs with that classifier as the quality scorer (`quality_score`) and with the
   GSM8K sample shipped in `flows/demo_benchmark/` as the decontamination benchmark, in which the
   corpus plants one problem verbatim and one retold. The settings go to `<directory>/demo.yaml`, the
   config to edit and rerun with `winnow run --config`.
4. A guide says where each result is.

`winnow demo --ui` does the same through the Prefect UI: a local server, the deployments served from
a child process, the run triggered through `curate/adhoc`; Ctrl-C stops everything it started.

The embedding search, the costly part of decontamination on CPU (~25 windows/s on 2 cores), runs
with the lexical prefilter (`decontam.semantic.prefilter`): only windows holding enough of some
item's rarer words are embedded, which keeps the demo's cold run bounded (bench/decontam_prefilter.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from flows.cli.demo import DEMO_BENCHMARK, write_demo_corpus, write_training_pages
from flows.config import CurationConfig, load_config
from flows.orchestration.train import TrainConfig, train_classifier
from tasks.train import FastTextTrainParams

# A small model for 600 short documents: 20k n-gram buckets (an 8 MB file, not fastText's 800 MB
# default) and 25 epochs, which small fastText sets need (fastText's tutorial goes to 25).
DEMO_FASTTEXT = FastTextTrainParams(label="quality", bucket=20_000, epoch=25)
# bench/decontam_prefilter.py: with 0.3 of an item's IDF and 3 of its words, 21% of news windows and
# 13% of web windows are embedded.
DEMO_PREFILTER = 0.3


def demo_training(directory: Path) -> TrainConfig:
    """DCLM's recipe at demo scale: reference documents against raw crawl pages, balanced."""
    reference, raw = write_training_pages(directory / "training")
    return TrainConfig(
        positive=(str(reference),),
        negative=(str(raw),),
        fasttext=DEMO_FASTTEXT,
        output=str(directory / "quality-model"),
    )


def demo_settings(directory: Path, scorer: dict) -> dict:
    """What the demo sets on top of the defaults (written to demo.yaml)."""
    return {
        "input": {"paths": [str(directory / "input")]},
        "output": str(directory / "out"),
        "quality": {"scorers": [scorer]},
        "dedup_semantic": {"enabled": True},
        "decontam": {
            "benchmarks": [{"name": "gsm8k", "layout": "gsm8k", "path": str(DEMO_BENCHMARK)}],
            "semantic": {"prefilter": DEMO_PREFILTER},
        },
    }


def prepare(directory: Path) -> tuple[Path, dict]:
    """Corpus, reference set and quality model; returns demo.yaml and the training result."""
    directory = directory.resolve()
    write_demo_corpus(directory / "input")
    trained = train_classifier(demo_training(directory))
    config = directory / "demo.yaml"
    text = f"# `winnow demo`'s settings on top of the defaults: winnow run --config {config}\n" + yaml.safe_dump(
        demo_settings(directory, trained["card"]["scorer"]), sort_keys=False
    )
    if not config.is_file() or config.read_text() != text:
        config.write_text(text)
    return config, trained


def run_demo(directory: Path, overrides: list[str] = ()) -> dict:
    """The demo in this process: prepare, curate, print the guide; returns the run summary."""
    from flows.orchestration.curate import curate

    config, trained = prepare(directory)
    cfg = load_config(config, list(overrides))
    summary = curate(cfg)
    print(guide(directory, config, cfg, summary, trained["card"]))
    return summary


def guide(directory: Path, config: Path, cfg: CurationConfig, summary: dict, card: dict) -> str:
    """Where each capability's result is, beside the funnel."""
    out = Path(cfg.output)
    metrics, data = card["metrics"], card["data"]
    lines = [
        f"\nWhat the demo made ({directory}):",
        f"  dataset     {out / 'data'} -> version {summary['version']}: {summary['rows']:,} documents",
        f"  report      {out / 'report.html'}: funnel, score distributions with candidate thresholds, decontamination",
        f"  quality     quality_score in every document, from a fastText classifier trained on {data['n_train']:,} "
        f"documents (reference pages vs raw crawl pages); ROC-AUC {metrics['roc_auc']:.2f} "
        f"on {data['n_validation']:,} held out",
        f"              model card: {Path(card['scorer']['model_path']).parent / 'model_card.json'}",
    ]
    hits = (summary.get("decontam") or {}).get("documents", [])
    problems = len(DEMO_BENCHMARK.read_text(encoding="utf-8").splitlines())
    lines.append(f"  decontam    GSM8K sample ({DEMO_BENCHMARK.name}, {problems} problems): {len(hits)} documents hit")
    lines += [
        f"                {h['doc_id']}  {h['item_id']}  {h['method']}: {h['evidence']}; {h['outcome']}" for h in hits
    ]
    semantic = summary.get("dedup_semantic") or {}
    if semantic.get("embedded"):
        lines.append(
            f"  semantic    dedup_semantic removed {semantic['removed_copies']:,} of {semantic['embedded']:,} "
            f"embedded documents at cosine >= {semantic['threshold']}: the demo composes its documents from a few "
            "dozen template sentences per language, so many say nearly the same thing"
        )
        for pair in semantic.get("pairs", [])[:1]:
            lines.append(
                f"              {pair['removed_id']} removed, {pair['kept_id']} kept (cosine {pair['cosine']}): "
                f"winnow inspect {out} --stage dedup_semantic -n 5"
            )
    lines.append(f"  rejected    winnow inspect {out} --stage clean -n 5   (any stage; --reason narrows it)")
    quality = summary.get("score_thresholds", {}).get("quality_score", {})  # absent when --set drops the scorer
    for candidate in (c for c in quality.get("candidates", []) if c["rule"] == "p10"):
        lines += [
            f"  rerun       winnow run --config {config} "
            f"--set 'select.thresholds=[{{column: quality_score, min: {candidate['threshold']}}}]'",
            f"              keeps {candidate['kept_if_min']:,} of {summary['rows']:,} "
            "(the report's p10 candidate; its table per "
            "language shows that a classifier trained on mostly English pages scores other languages lower); "
            "only select and write run, the rest is cached",
        ]
    lines.append(
        "  Prefect UI  make demo-ui: the same run through the curate/adhoc deployment, with the nightly schedule"
    )
    return "\n".join(lines)


def run_demo_ui(directory: Path, port: int) -> None:
    """The demo through a local Prefect server and the served deployments, until Ctrl-C."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.orchestration.deployments import prefect_server
    from flows.parallel.cluster import dask_client

    directory = directory.resolve()
    with (
        contextlib.ExitStack() as stack,
        prefect_server(port, home=str(directory / "prefect-home")) as api,
        temporary_settings({PREFECT_API_URL: api}),
    ):
        print(
            f"Prefect server on http://127.0.0.1:{port} (its database and log: {directory / 'prefect-home'})",
            flush=True,
        )
        config, _ = prepare(directory)
        # One local cluster for every run triggered while the demo is up: a run started from the UI
        # starts no cluster of its own, and its workers have the models loaded already.
        address = stack.enter_context(dask_client(load_config(config).run.cluster)).scheduler.address
        print(f"Dask cluster at {address}, used by every run of the served deployments", flush=True)
        log = directory / "serve.log"
        with open(log, "ab") as serve_log:
            serving = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("winnow")),
                    "serve",
                    "--config",
                    str(config),
                    "--set",
                    f"run.cluster.address={address}",
                ],
                env={**os.environ, "PREFECT_API_URL": api},
                stdout=serve_log,
                stderr=subprocess.STDOUT,
            )
        try:
            print(
                f"serving curate/adhoc and curate/recurate-nightly from process {serving.pid} (log: {log})", flush=True
            )
            flow_run = trigger("curate/adhoc")
            print(
                f"triggered curate/adhoc, flow run {flow_run.name}: http://127.0.0.1:{port}/runs/flow-run/{flow_run.id}",
                flush=True,
            )
            state = wait_for(flow_run.id)
            print(
                f"flow run {flow_run.name}: {state.name}; report: {directory / 'out' / 'report.html'}\n"
                f"In the UI (http://127.0.0.1:{port}): the run's task runs and artifacts "
                "(funnel, report sections); the "
                "train-classifier run and its metrics; under Deployments, curate/adhoc and curate/recurate-nightly "
                "with its schedule. Run curate/adhoc again (Run > Quick run): every stage is Cached.\n"
                "Ctrl-C stops the deployments and the server.",
                flush=True,
            )
            while serving.poll() is None:
                time.sleep(1)
            print(f"the serving process ended ({serving.returncode}); see {log}", flush=True)
        finally:
            print("stopping the deployments and the server...", flush=True)
            serving.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                serving.wait(timeout=60)
            serving.kill()


def trigger(name: str, timeout_s: float = 180.0):
    """`run_deployment` without waiting, as soon as the serving process has registered `name`."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return run_deployment(name, timeout=0)
        except ObjectNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def wait_for(flow_run_id, poll_s: float = 2.0):
    """The flow run's final state."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while not (state := client.read_flow_run(flow_run_id).state).is_final():
            time.sleep(poll_s)
    return state
