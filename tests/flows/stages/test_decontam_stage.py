"""The decontam stage in the `curate` flow: the benchmark index is a store artifact built once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.cli.demo import write_demo_corpus
from flows.config import load_config
from flows.orchestration.curate import curate

pytestmark = pytest.mark.slow  # two whole flows with the embedding scan

QUESTION = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
    "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 "
    "per fresh duck egg. How much in dollars does she make every day at the farmers' market?"
)


# The same problem as a German page would carry it (translated for this test).
GERMAN = (
    "Janets Enten legen jeden Tag 16 Eier. Drei davon isst sie jeden Morgen zum Frühstück, und mit vier backt "
    "sie täglich Muffins für ihre Freunde. Den Rest verkauft sie jeden Tag auf dem Bauernmarkt für 2 $ pro "
    "frischem Entenei. Wie viele Dollar verdient sie jeden Tag auf dem Bauernmarkt?"
)


GERMAN_BEFORE = (
    "Unsere Schule bietet in diesem Halbjahr wieder einen Förderkurs in Mathematik an. Der Kurs findet jeden "
    "Dienstag und Donnerstag nach dem Unterricht im Raum 204 statt. Wer teilnehmen möchte, meldet sich bitte "
    "bis Ende des Monats im Sekretariat an. Zur Vorbereitung haben wir einige Übungsaufgaben zusammengestellt."
)
GERMAN_AFTER = (
    "Die Lösungen besprechen wir gemeinsam in der ersten Stunde. Bringt bitte einen Taschenrechner, ein Heft und "
    "gute Laune mit. Bei Fragen wendet euch an Frau Becker oder Herrn Schulz, die den Kurs in diesem Jahr leiten."
)


def parsed(line: str) -> dict | None:
    try:  # the demo corpus holds malformed records on purpose
        return json.loads(line)
    except json.JSONDecodeError:
        return None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """The demo corpus with one good document quoting a GSM8K question, and a one-item benchmark."""
    root = tmp_path_factory.mktemp("decontam")
    corpus = root / "input"
    write_demo_corpus(corpus, n_docs=100)
    first = corpus / "demo-000.jsonl"
    good = [
        r
        for r in map(parsed, first.read_text().splitlines())
        if r and r.get("defect") is None and len(r.get("text") or "") > 600 and "/en/" in r["url"]
    ]
    good = good[0] | {
        "text": good[0]["text"] + "\n" + QUESTION + "\n" + good[1]["text"]
    }  # no near-duplicate of either
    german = {"text": "\n".join([GERMAN_BEFORE, GERMAN, GERMAN_AFTER]), "url": "https://schule.example.com/de/mathe"}
    with first.open("a") as f:
        f.write(json.dumps(good | {"id": "quoting-gsm8k"}) + "\n")
        f.write(json.dumps(german | {"id": "translating-gsm8k"}) + "\n")
    benchmark = root / "gsm8k.jsonl"
    benchmark.write_text(
        json.dumps({"id": "gsm8k-test-0000", "question": QUESTION, "answer": "9 * 2 = 18\n#### 18"}) + "\n"
    )
    return corpus, benchmark


def run_overrides(corpus: Path, benchmark: Path, out: Path, cluster) -> list[str]:
    return [
        f"input.paths=[{corpus}]",
        f"output={out}",
        f"run.cluster.address={cluster.scheduler_address}",
        f"decontam.benchmarks=[{{name: gsm8k, layout: gsm8k, path: '{benchmark}'}}]",
    ]


@pytest.fixture(scope="module")
def cold(inputs, tmp_path_factory, dask_cluster, prefect_harness) -> dict:
    """One cold curation of the inputs, shared: its summary and output folder. A test that runs again
    starts from a copy (`shutil.copytree`), as if it had run it."""
    corpus, benchmark = inputs
    output = tmp_path_factory.mktemp("cold") / "out"
    return {
        "summary": curate(load_config(overrides=run_overrides(corpus, benchmark, output, dask_cluster))),
        "output": output,
    }


def test_index_and_window_scan_are_computed_once_and_reused_across_runs(inputs, cold, tmp_path, dask_cluster):
    corpus, benchmark = inputs
    shutil.copytree(cold["output"], tmp_path / "out")
    overrides = run_overrides(corpus, benchmark, tmp_path / "out", dask_cluster)
    index_root = tmp_path / "out" / ".winnow-store" / "decontam" / "index"
    scan_shards = tmp_path / "out" / ".winnow-store" / "decontam.scan" / "shards"

    first = cold["summary"]
    output = pq.read_table(
        tmp_path / "out" / "data",
        columns=["id", "contam_semantic_score", "contam_semantic_path", "contam_spans", "n_contam_chars_cut"],
    ).to_pylist()
    [quoting] = [row for row in output if row["id"] == "quoting-gsm8k"]
    quoting_cut = quoting["n_contam_chars_cut"]
    [index] = [p.parent for p in index_root.rglob("_SUCCESS")]
    built = {p: p.stat().st_mtime_ns for p in index.iterdir()}
    scanned = {p: p.stat().st_mtime_ns for p in scan_shards.rglob("*.parquet")}
    second = curate(load_config(overrides=[*overrides, "decontam.action=drop", "decontam.semantic.threshold=0.9"]))

    rows = {row["stage"]: row for row in second["funnel"]}
    assert not rows["decontam"]["cached"] and rows["decontam"]["drops"] == {"decontam:ngram_overlap": 1}
    assert {p: p.stat().st_mtime_ns for p in index.iterdir()} == built  # a new action reuses the index
    assert [p.parent for p in index_root.rglob("_SUCCESS")] == [index]
    assert (
        scanned and {p: p.stat().st_mtime_ns for p in scan_shards.rglob("*.parquet")} == scanned
    )  # nothing re-embedded
    assert first["decontam"]["benchmarks"]["gsm8k"]["documents"] == 2  # the English quote and the German copy
    assert first["decontam"]["benchmarks"]["gsm8k"]["items_hit"] == 1
    assert "ducks lay 16 eggs" in first["decontam"]["benchmarks"]["gsm8k"]["examples"][0]["document_span"]
    assert [(d["doc_id"], d["method"], d["outcome"]) for d in first["decontam"]["documents"]] == [
        ("quoting-gsm8k", "ngram", f"excised {quoting_cut:,} chars"),
        ("translating-gsm8k", "crosslingual", "flagged, kept whole"),
    ]
    # MiniLM and USE are installed: both paths are on by default; Esperanto is outside USE's languages
    assert all((row["contam_semantic_score"] is None) == (row["contam_semantic_path"] is None) for row in output)
    # the German copy: no n-gram in common, found through the multilingual encoder, flagged and kept whole
    [translating] = [row for row in output if row["id"] == "translating-gsm8k"]
    assert translating["contam_semantic_path"] == "multilingual"
    assert {(s["method"], s["item_id"]) for s in translating["contam_spans"]} == {("crosslingual", "gsm8k-test-0000")}
    assert translating["n_contam_chars_cut"] == 0
    languages = first["decontam"]["languages"]
    assert languages["de"]["contaminated"] == 1 and set(languages["de"]["path"]) == {"multilingual"}
    assert set(languages["en"]["path"]) == {"english"}
    assert {row["contam_semantic_path"] for row in output} == {"english", "multilingual", None}
    assert set(languages["eo"]["path"]) == {"none"}
    assert {span["method"] for span in quoting["contam_spans"]} == {"ngram", "semantic"}


def test_calibration_scans_with_the_runs_keys_and_its_yaml_reruns_only_the_decision(
    inputs, cold, tmp_path, dask_cluster
):
    """`winnow calibrate --stage decontam`'s flow over a store `curate` filled: thresholds per path from
    the windows curate scanned, and a curation with the YAML after it embeds nothing again."""
    from flows.orchestration.calibrate_decontam import DecontamCalibrateConfig, calibrate_decontam
    from tasks.decontam.calibrate import DecontamCalibration

    corpus, benchmark = inputs
    shutil.copytree(cold["output"], tmp_path / "out")
    scanned = {
        p: p.stat().st_mtime_ns for p in (tmp_path / "out" / ".winnow-store" / "decontam.scan").rglob("*.parquet")
    }
    overrides = run_overrides(corpus, benchmark, tmp_path / "out", dask_cluster)
    curation = load_config(overrides=overrides)
    how = DecontamCalibration(target_fpr=0.05, floor=0.3, min_docs=10)

    result = calibrate_decontam(
        DecontamCalibrateConfig(curation=curation, calibration=how, output=str(tmp_path / "cal"))
    )
    yaml_path = tmp_path / "cal" / "decontam_thresholds.yaml"
    calibrated = load_config(yaml_path, overrides)
    rerun = curate(calibrated)

    assert result["english"]["documents"] > 10 and result["multilingual"]["documents"] > 10
    for path in ("english", "multilingual"):
        assert calibrated.decontam.semantic_thresholds(path)["gsm8k"] == result[path]["thresholds"]["gsm8k"] >= 0.3
    rows = {row["stage"]: row for row in rerun["funnel"]}
    assert all(rows[stage]["cached"] for stage in ("read", "langid", "dedup_fuzzy", "toxicity"))
    assert not rows["decontam"]["cached"]  # the new thresholds: its decision step alone runs again
    assert (
        scanned and {p: p.stat().st_mtime_ns for p in scanned} == scanned
    )  # curate's scan serves both: nothing re-embedded


def test_the_index_embeds_its_items_in_blocks_over_the_workers_as_one_call_would(tmp_path, dask_client):
    import numpy as np
    from distributed import get_task_stream

    from flows.engine.store import ArtifactStore
    from flows.stages.decontam import index_dir, save_index
    from tasks.decontam import BenchmarkSpec, DecontamParams, build_index, load_index

    records = [
        {"question": f"Sam has {i} apples and buys {i + 3} more. How many now?", "answer": "#### 1"} for i in range(7)
    ]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    params = DecontamParams(benchmarks=(BenchmarkSpec(name="gsm8k", layout="gsm8k", path=str(path)),))
    store = ArtifactStore(str(tmp_path / "store"))

    with get_task_stream(client=dask_client) as stream:
        dask_client.submit(save_index, store.url, "k", params, 2, pure=False).result()  # 4 blocks per encoder

    saved, whole = load_index(index_dir(store.url, "k")), build_index(params.benchmarks, params.ngram, params.semantic)
    columns = [c for c in ("embedding", "embedding_multilingual") if c in whole.items.column_names]
    assert columns  # MiniLM is installed: the semantic search is on
    blocks = [task for task in stream.data if str(task["key"]).startswith("decontam-index-embed")]
    assert len(blocks) == 4 * len(columns) and len({task["worker"] for task in blocks}) == 2
    for column in columns:
        rows = [saved.items.column(column).to_pylist(), whole.items.column(column).to_pylist()]
        np.testing.assert_allclose(*(np.asarray(r, np.float32) for r in rows), atol=1e-5)
