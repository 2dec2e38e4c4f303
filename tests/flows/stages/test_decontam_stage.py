"""The decontam stage in the `curate` flow: the benchmark index is a store artifact built once."""

from __future__ import annotations

import json
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
        if r and r.get("defect") is None and len(r.get("text") or "") > 600
    ]
    good = good[0] | {
        "text": good[0]["text"] + "\n" + QUESTION + "\n" + good[1]["text"]
    }  # no near-duplicate of either
    with first.open("a") as f:
        f.write(json.dumps(good | {"id": "quoting-gsm8k"}) + "\n")
    benchmark = root / "gsm8k.jsonl"
    benchmark.write_text(
        json.dumps({"id": "gsm8k-test-0000", "question": QUESTION, "answer": "9 * 2 = 18\n#### 18"}) + "\n"
    )
    return corpus, benchmark


def test_index_and_window_scan_are_computed_once_and_reused_across_runs(
    inputs, tmp_path, dask_cluster, prefect_harness
):
    corpus, benchmark = inputs
    overrides = [
        f"input.paths=[{corpus}]",
        f"output={tmp_path / 'out'}",
        f"run.cluster.address={dask_cluster.scheduler_address}",
        f"decontam.benchmarks=[{{name: gsm8k, layout: gsm8k, path: '{benchmark}'}}]",
    ]
    index_root = tmp_path / "out" / ".winnow-store" / "decontam" / "index"
    scan_shards = tmp_path / "out" / ".winnow-store" / "decontam.scan" / "shards"

    first = curate(load_config(overrides=overrides))
    output = pq.read_table(
        tmp_path / "out" / "data", columns=["id", "contam_semantic_score", "contam_spans", "n_contam_chars_cut"]
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
    assert first["decontam"]["benchmarks"]["gsm8k"]["documents"] == 1
    assert first["decontam"]["benchmarks"]["gsm8k"]["items_hit"] == 1
    assert "ducks lay 16 eggs" in first["decontam"]["benchmarks"]["gsm8k"]["examples"][0]["document_span"]
    assert [(d["doc_id"], d["method"], d["outcome"]) for d in first["decontam"]["documents"]] == [
        ("quoting-gsm8k", "ngram", f"excised {quoting_cut:,} chars")
    ]
    assert all(row["contam_semantic_score"] is not None for row in output)  # MiniLM is installed: on by default
    assert {span["method"] for span in quoting["contam_spans"]} == {"ngram", "semantic"}
