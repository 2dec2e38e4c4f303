"""Per-language cleaning (issue #16): what a threshold change costs, what calibration changes, and
what the signals cost against a baseline commit.

    .venv/bin/python bench/clean_calibration.py [N_DOCS] [--workers 2] [--shards 8] [--baseline 5d49a94]

1. Builds the N-document multilingual bench corpus (bench/corpus.py, default 50,000; about half
   German) in `--shards` files and runs `curate` cold, then with two clean thresholds changed (one
   global, one for German), then with one Japanese threshold changed: prints `clean`'s wall in each
   and its ratio to cold (target: <= 10%), the time of the stages after clean, and the shards each
   stage computed (clean's shards are keyed by their verdicts: later stages redo only the shards a
   change touched).
2. Runs `winnow calibrate` (corpus method) on the same corpus and store, then `curate` with its YAML:
   per language, clean's keep rate and top drop reasons with the global defaults and calibrated.
2b. Runs `winnow calibrate --method reference` on lingua's sentences in 75 languages, 5 a document
   (good text: what FineWeb-2 calibrates on): how many bounds it loosens, and the share of each
   language's good text clean keeps before and after.
3. Runs the 989 labeled pages of ../shared/data/web_raw (html_pages_wetlike.jsonl with
   boilerplate_labels.jsonl) through `curate` with the defaults and with that calibration: per
   language (langid's), the share of pages whose every must-keep snippet survives `clean` and the
   share whose every must-remove snippet is gone (a dropped page removes all; whitespace collapsed).
   The bench corpus is built from these same pages, so this calibration is not held out from them.
4. Docs/s on one core of `tasks.clean.run` (both phases) on 4,000 langid-labeled documents of the
   corpus, this tree against `--baseline` (a `git archive` of that commit), alternated, best of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from bench.corpus import WEB_RAW, build_corpus, lingua_documents  # noqa: E402
from tasks.clean.doc import base_language  # noqa: E402

THRESHOLD_CHANGE = [
    "clean.gopher_quality.min_alpha_words_ratio=0.75",
    "clean.languages={de: {fineweb: {char_dup_threshold: 0.05}}}",
]
# a change few documents feel: Japanese lines end in "。" less often than a web page's lines end in "."
NARROW_CHANGE = ["clean.languages={ja: {fineweb: {line_punct_threshold: 0.05}}}"]
LANGUAGES_SHOWN = 8
REFERENCE_SENTENCES, REFERENCE_MIN_DOCS = 5, 30  # 40 reference documents a language
SPEED_DOCS = 4000
SPEED_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[1])
import pyarrow.parquet as pq
import tasks.clean as clean
table = pq.read_table(sys.argv[2])
best = min(
    (lambda start: (clean.run(table, clean.CleanParams()), time.perf_counter() - start)[1])(time.perf_counter())
    for _ in range(3)
)
print(table.num_rows / best)
"""


def funnel(summary: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in summary["funnel"]}


def clean_view(summary: dict, columns: list[str]):
    """The documents `clean` kept in a run (its view, `columns`), read from the run's store."""
    import pyarrow as pa

    from flows.engine.store import ArtifactStore, ShardRef

    store = ArtifactStore(summary["store"])
    manifest = store.manifest("clean", funnel(summary)["clean"]["key"])
    return pa.concat_tables(
        store.read_view("clean", ShardRef(s["name"], s["key"]), columns) for s in manifest["shards"]
    )


def rejected_langs(summary: dict) -> dict[str, str]:
    """id -> base language of the documents `clean` rejected."""
    from flows.engine.store import ArtifactStore, ShardRef

    store = ArtifactStore(summary["store"])
    manifest = store.manifest("clean", funnel(summary)["clean"]["key"])
    langs = {}
    for s in manifest["shards"]:
        table = store.read_rejected("clean", ShardRef(s["name"], s["key"]), ["id", "lang"])
        if table is not None:
            langs |= {row["id"]: base_language(row["lang"]) or "unknown" for row in table.to_pylist()}
    return langs


def after_clean(summary: dict) -> float:
    stages = [row["stage"] for row in summary["funnel"]]
    return sum(row["seconds"] for row in summary["funnel"][stages.index("clean") + 1 :])


def print_rerun(change: list[str], cold: dict, rerun: dict) -> None:
    """What a threshold change cost: clean's decision against its cold time, and per later stage the
    shards it computed (clean's shards are keyed by their verdicts: unchanged ones are reused)."""
    from flows.engine.store import ArtifactStore

    store = ArtifactStore(rerun["store"])
    rows, before = funnel(rerun), funnel(cold)
    print(
        f"   after {' '.join(change)}: clean {rows['clean']['seconds']:.2f} s = "
        f"{rows['clean']['seconds'] / before['clean']['seconds']:.1%} of cold (decision only; "
        f"{rows['clean']['docs_out']:,} kept, were {before['clean']['docs_out']:,}); the stages after it "
        f"{after_clean(rerun):.1f} s"
    )
    shards = lambda row: len(store.read_json(store.manifest_path(row["stage"], row["key"]))["shards"])  # noqa: E731
    print(
        "     shards computed: "
        + ", ".join(
            f"{r['stage']} {0 if r['cached'] else r['shards_computed']}/{shards(r)}"
            for r in rerun["funnel"][[r["stage"] for r in rerun["funnel"]].index("clean") :]
            if r["stage"] not in ("select", "write")
        )
    )


def reference_calibration(tmp: Path, cluster_address: str) -> dict:
    """The reference method on real good text in 75 languages: lingua's sentences as documents."""
    from flows.config import load_config
    from flows.orchestration.calibrate_clean import CalibrateConfig, calibrate_clean
    from tasks.clean.calibrate import CalibrationParams

    folder = tmp / "reference"
    folder.mkdir()
    with (folder / "lingua.jsonl").open("w", encoding="utf-8") as out:
        for i, (_, text) in enumerate(lingua_documents(REFERENCE_SENTENCES)):
            out.write(json.dumps({"id": f"lingua-{i}", "text": text}) + "\n")
    return calibrate_clean(
        CalibrateConfig(
            curation=load_config(
                overrides=[
                    f"input.paths=[{folder}]",
                    f"output={tmp / 'reference-out'}",
                    f"run.cluster.address={cluster_address}",
                ]
            ),
            calibration=CalibrationParams(method="reference", min_docs=REFERENCE_MIN_DOCS),
            output=str(tmp / "reference-cal"),
        )
    )


def print_reference(report: dict) -> None:
    languages = {lang: e for lang, e in report["languages"].items() if e["documents"] >= REFERENCE_MIN_DOCS}
    before = sorted(e["kept_before"] for e in languages.values())
    after = sorted(e["kept_after"] for e in languages.values())
    knobs = Counter(cut["knob"] for cut in report["cuts"])
    worst = sorted(languages, key=lambda lang: languages[lang]["kept_before"])[:6]
    print(
        f"\n2b. reference method (FineWeb-2 style) on lingua prose, {REFERENCE_SENTENCES} sentences a document, "
        f"{len(languages)} languages with >= {REFERENCE_MIN_DOCS} documents (langid's labels): {len(report['cuts'])} "
        f"loosened bounds; clean keeps a median {before[len(before) // 2]:.1%} -> {after[len(after) // 2]:.1%} "
        f"of a language's good text (lowest {before[0]:.1%} -> {after[0]:.1%})"
    )
    print("    most loosened: " + ", ".join(f"{knob} x{n}" for knob, n in knobs.most_common(5)))
    print(
        "    lowest before: "
        + ", ".join(
            f"{lang} {languages[lang]['kept_before']:.0%} -> {languages[lang]['kept_after']:.0%}" for lang in worst
        )
    )


def print_languages(default: dict, calibrated: dict) -> None:
    rows = {r["lang"]: r for r in default["clean_languages"]["languages"]}
    after = {r["lang"]: r for r in calibrated["clean_languages"]["languages"]}
    print(f"{'lang':<8}{'docs':>8}{'kept (global)':>15}{'kept (calibrated)':>19}  top reasons global | calibrated")
    for lang in list(rows)[:LANGUAGES_SHOWN]:
        top = lambda r: ", ".join(f"{k.split(':')[1]} {v}" for k, v in list(r["drops"].items())[:2]) or "-"  # noqa: E731
        print(
            f"{lang:<8}{rows[lang]['docs_in']:>8,}{rows[lang]['keep_rate']:>15.1%}{after[lang]['keep_rate']:>19.1%}"
            f"  {top(rows[lang])} | {top(after[lang])}"
        )


def labeled_pages(target: Path) -> dict[str, dict]:
    """The labeled pages as curate input, and their labels by id."""
    labels = {row["id"]: row for row in map(json.loads, (WEB_RAW / "boilerplate_labels.jsonl").open())}
    target.mkdir(parents=True)
    with (target / "pages.jsonl").open("w") as out, (WEB_RAW / "html_pages_wetlike.jsonl").open() as pages:
        for page in map(json.loads, pages):
            if page["id"] in labels:
                out.write(json.dumps({"id": page["id"], "text": page["text"], "url": page["url"]}) + "\n")
    return labels


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def boilerplate_scores(summary: dict, labels: dict[str, dict]) -> dict[str, dict]:
    """Per language: pages, share whose must-keep snippets all survive, share whose must-remove all go."""
    kept = {row["id"]: row for row in clean_view(summary, ["id", "lang", "text"]).to_pylist()}
    langs = {i: base_language(row["lang"]) or "unknown" for i, row in kept.items()} | rejected_langs(summary)
    scores: dict[str, dict] = {}
    for page_id, label in labels.items():
        lang = langs.get(page_id, "dropped before clean")
        text = squash(kept[page_id]["text"]) if page_id in kept else ""
        entry = scores.setdefault(lang, {"pages": 0, "keep_survives": 0, "remove_gone": 0})
        entry["pages"] += 1
        entry["keep_survives"] += all(squash(s) in text for s in label["must_keep"])
        entry["remove_gone"] += not any(squash(s) in text for s in label["must_remove"])
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]["pages"]))


def signals_speed(tmp: Path, store_summary: dict, baseline: str) -> None:
    from flows.engine.store import ArtifactStore, ShardRef

    store = ArtifactStore(store_summary["store"])
    langid = funnel(store_summary)["langid"]
    shard = store.manifest("langid", langid["key"])["shards"][0]
    sample = store.read_view("langid", ShardRef(shard["name"], shard["key"]), ["id", "text", "lang"]).slice(
        0, SPEED_DOCS
    )
    print(f"\n4. clean (measure + decide) on {sample.num_rows:,} documents, one core, best of 3 x 2 alternations:")
    compare_speed(tmp, sample, baseline)


def compare_speed(tmp: Path, sample, baseline: str) -> None:
    """Prints docs/s of `tasks.clean.run` on `sample` (a table with text and lang), on one core, in
    this tree and in `baseline`'s `tasks/` (a `git archive`), alternated, best of 3 x 2."""
    import pyarrow.parquet as pq

    pq.write_table(sample, tmp / "sample.parquet")
    old = tmp / "baseline"
    old.mkdir()
    subprocess.run(f"git -C {ROOT} archive {baseline} tasks | tar -x -C {old}", shell=True, check=True)
    speeds: dict[str, list[float]] = {"this tree": [], f"baseline {baseline}": []}
    for _ in range(2):
        for name, tree in (("this tree", ROOT), (f"baseline {baseline}", old)):
            out = subprocess.run(
                [sys.executable, "-c", SPEED_SCRIPT, str(tree), str(tmp / "sample.parquet")],
                capture_output=True,
                text=True,
                check=True,
                env=os.environ | {"OMP_NUM_THREADS": "1"},
            )
            speeds[name].append(float(out.stdout.strip().splitlines()[-1]))
    best = {name: max(values) for name, values in speeds.items()}
    for name, value in best.items():
        print(f"  {name:<22}{value:>8.0f} docs/s")
    print(f"  ratio this/baseline: {best['this tree'] / best[f'baseline {baseline}']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="?", default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8, help="input files of the bench corpus")
    parser.add_argument("--baseline", default="5d49a94", help="commit whose tasks/clean the signals are timed against")
    args = parser.parse_args()

    from distributed import Client

    from flows.config import load_config
    from flows.orchestration.calibrate_clean import CalibrateConfig, calibrate_clean
    from flows.orchestration.curate import curate
    from flows.parallel.cluster import local_cluster
    from tasks.clean.calibrate import CalibrationParams

    with (
        tempfile.TemporaryDirectory() as name,
        local_cluster(args.workers) as cluster,
        Client(cluster, set_as_default=False),
    ):
        tmp = Path(name)
        build_corpus(args.n_docs, tmp / "corpus", n_shards=args.shards)
        base = [
            f"input.paths=[{tmp / 'corpus'}]",
            f"output={tmp / 'out'}",
            f"run.cluster.address={cluster.scheduler_address}",
        ]
        cold = curate(load_config(overrides=base))
        print(
            f"\n1. {args.n_docs:,} documents in {args.shards} files: "
            f"clean cold {funnel(cold)['clean']['seconds']:.1f} s "
            f"(signals + decision), the stages after it {after_clean(cold):.1f} s"
        )
        for change in (THRESHOLD_CHANGE, NARROW_CHANGE):
            print_rerun(change, cold, curate(load_config(overrides=[*base, *change])))

        calibration = calibrate_clean(
            CalibrateConfig(
                curation=load_config(overrides=base),
                calibration=CalibrationParams(method="corpus"),
                output=str(tmp / "cal"),
            )
        )
        yaml_path = Path(calibration["yaml"])
        calibrated = curate(load_config(yaml_path, base))
        print(
            f"\n2. calibrate (corpus method): {len(calibration['cuts'])} cuts in "
            f"{sum(1 for e in calibration['languages'].values() if e['kept_after'] != e['kept_before'])} languages; "
            f"clean after feeding it back: {funnel(calibrated)['clean']['seconds']:.2f} s"
        )
        print_languages(cold, calibrated)

        print_reference(reference_calibration(tmp, cluster.scheduler_address))

        labels = labeled_pages(tmp / "pages")
        pages = [f"input.paths=[{tmp / 'pages'}]", f"run.cluster.address={cluster.scheduler_address}"]
        before = boilerplate_scores(curate(load_config(overrides=[*pages, f"output={tmp / 'p0'}"])), labels)
        after = boilerplate_scores(curate(load_config(yaml_path, [*pages, f"output={tmp / 'p1'}"])), labels)
        print(
            f"\n3. {len(labels)} labeled pages: share with every must-keep snippet surviving clean / every "
            "must-remove snippet gone, global thresholds -> calibrated"
        )
        for lang, entry in before.items():
            a, n = after.get(lang, entry), entry["pages"]
            print(
                f"  {lang:<22}{n:>5} pages  keep survives {entry['keep_survives'] / n:>6.1%} "
                f"-> {a['keep_survives'] / a['pages']:>6.1%}"
                f"   remove gone {entry['remove_gone'] / n:>6.1%} -> {a['remove_gone'] / a['pages']:>6.1%}"
            )

        signals_speed(tmp, cold, args.baseline)


if __name__ == "__main__":
    main()
