"""What a rerun costs: cold run vs unchanged rerun vs one-threshold rerun vs one-new-shard re-curation,
then the HTML report of the last run rendered by headless Chromium.

    .venv/bin/python bench/recuration.py [N_DOCS] [--shards 8] [--chromium /usr/bin/chromium]
        [--index NAME] [--benchmark gsm8k ../shared/data/benchmarks/gsm8k_test.jsonl]

Builds a corpus of N_DOCS (default 20,000) with bench/corpus.py in `--shards` shards, holds the last
shard back, and runs the full `curate` flow four times into one output on one LocalCluster (started
once, so every run pays the same orchestration): (1) cold, (2) unchanged, (3) `select` threshold on
`lang_score` changed, (4) the held-back shard added; with `--benchmark`, decontamination against it
runs throughout and a run with a new `decontam.semantic.threshold` comes after (3). Prints wall
seconds per run, the ratio to the cold run, the shards each stage computed, and the delta report of
run 4. All runs share one ephemeral Prefect server (prefect_test_harness), so server start-up is not
in the figures.
Then screenshots `report.html` with Chromium (Debian `chromium`) at 1200 px wide and checks the PNG
is not blank (distinct colours) and that the plots' colours are present.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from flows.config import load_config  # noqa: E402
from flows.options import ClusterOptions  # noqa: E402
from flows.orchestration.curate import curate  # noqa: E402
from flows.parallel.cluster import dask_client  # noqa: E402

PLOT_COLOURS = {"funnel bars": (0x3B, 0x7D, 0xD8), "drop-reason bars": (0xD8, 0x70, 0x3B)}


def timed_run(corpus: Path, output: Path, address: str, *overrides: str) -> tuple[float, dict]:
    """One flow run's wall seconds and summary."""
    start = time.perf_counter()
    summary = curate(
        load_config(
            overrides=[
                f"input.paths=[{corpus}/*.jsonl]",
                f"output={output}",
                f"run.cluster.address={address}",
                *overrides,
            ]
        )
    )
    return time.perf_counter() - start, summary


def screenshot(chromium: str, page: Path, png: Path) -> dict:
    """Render `page` headless and measure the PNG: size, distinct colours, plot colours present."""
    from PIL import Image

    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={png}",
            "--window-size=1200,2400",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16).reshape(-1, 3)
    near = lambda colour: int((np.abs(pixels - colour) <= 12).all(axis=1).sum())  # noqa: E731 (antialiasing)
    return {
        "size": Image.open(png).size,
        "distinct_colours": len(np.unique(pixels, axis=0)),
        "non_white_share": round(float((pixels != 255).any(axis=1).mean()), 3),
        **{f"{name} pixels": near(np.array(colour)) for name, colour in PLOT_COLOURS.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="?", default=20_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--index", default=None, help="persistent dedup index name (as curate/recurate-nightly)")
    parser.add_argument(
        "--benchmark",
        nargs=2,
        metavar=("LAYOUT", "PATH"),
        default=None,
        help="decontaminate against this benchmark file, and add a run with a new semantic threshold",
    )
    args = parser.parse_args()
    overrides = [f"dedup_exact.index={args.index}", f"dedup_fuzzy.index={args.index}"] if args.index else []
    if args.benchmark:
        layout, path = args.benchmark
        overrides.append(f"decontam.benchmarks=[{{name: {layout}, layout: {layout}, path: '{Path(path).resolve()}'}}]")

    from prefect.testing.utilities import prefect_test_harness

    work = Path(tempfile.mkdtemp(prefix="winnow-recuration-"))
    corpus, held_back, output = work / "corpus", work / "held_back", work / "out"
    paths = build_corpus(args.n_docs, corpus, n_shards=args.shards)
    held_back.mkdir()
    last = paths[-1].rename(held_back / paths[-1].name)
    runs = {}
    with (
        prefect_test_harness(server_startup_timeout=120),
        dask_client(ClusterOptions(n_workers=args.workers)) as client,
    ):
        address = client.scheduler.address
        runs["cold"] = timed_run(corpus, output, address, *overrides)
        runs["unchanged rerun"] = timed_run(corpus, output, address, *overrides)
        threshold = runs["cold"][1]["score_thresholds"]["lang_score"]["quantiles"]["p10"]  # drops ~10% more
        tighter = f"select.thresholds=[{{column: lang_score, min: {threshold}}}]"
        runs["one-threshold rerun"] = timed_run(corpus, output, address, tighter, *overrides)
        if args.benchmark:  # the window scan is cached without the threshold: nothing is re-embedded
            runs["decontam-threshold rerun"] = timed_run(
                corpus, output, address, tighter, *overrides, "decontam.semantic.threshold=0.7"
            )
        last.rename(corpus / last.name)
        runs["one-new-shard re-curation"] = timed_run(corpus, output, address, tighter, *overrides)

    cold = runs["cold"][0]
    print(
        f"corpus: {args.n_docs:,} documents in {args.shards} shards (the last held back until run 4), "
        f"{args.workers} workers, persistent dedup index: {args.index or 'none'}"
    )
    print(f"{'run':28} {'wall s':>8} {'ratio':>6}  stages that computed shards")
    for name, (seconds, summary) in runs.items():
        computed = (
            ", ".join(f"{r['stage']}:{r['shards_computed']}" for r in summary["funnel"] if r["shards_computed"])
            or "none"
        )
        print(f"{name:28} {seconds:8.1f} {seconds / cold:6.2f}  {computed}")
    print("benchmark:", " ".join(args.benchmark) if args.benchmark else "none (decontam adds empty columns)")
    print(
        "delta of the re-curation:",
        json.dumps({k: v for k, v in runs["one-new-shard re-curation"][1]["delta"].items() if k != "examples"}),
    )

    page = output / "report.html"
    print(f"report: {page} ({page.stat().st_size / 1024:.0f} KiB, {page.read_text().count('<svg')} inline SVG plots)")
    if Path(args.chromium).exists():
        print(
            "chromium screenshot:", screenshot(args.chromium, page, work / "report.png"), f"-> {work / 'report.png'}"
        )
    else:
        print(f"chromium not found at {args.chromium}: install Debian's `chromium` for the screenshot check")


if __name__ == "__main__":
    main()
