"""The whole `curate` flow under Prefect's test harness on a real 2-process Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.config import load_config
from flows.curate import curate
from flows.demo import write_demo_corpus
import tasks.read
from tasks.dedup_fuzzy import INDEX_PREFIX
from tasks.read import ReadParams

STAGES = [
    "read", "url_filter", "extract", "normalize", "langid", "clean", "dedup_exact", "dedup_fuzzy", "quality",
    "toxicity", "select", "write",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "input"
    write_demo_corpus(directory)
    return directory


@pytest.fixture
def config(corpus, tmp_path, dask_cluster):
    def make(*overrides: str):
        return load_config(overrides=[
            f"input.paths=[{corpus}]", f"output={tmp_path / 'out'}",
            f"run.cluster.address={dask_cluster.scheduler_address}", *overrides,
        ])
    return make


def funnel(summary: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in summary["funnel"]}


def artifact_files(output: Path) -> dict[Path, int]:
    """Stage artifacts and the published dataset (the run summary is rewritten by every run)."""
    files = [*(output / ".winnow-store").rglob("*"), *(output / "data").rglob("*")]
    return {p: p.stat().st_mtime_ns for p in files if p.is_file() and "_prefect" not in p.parts}


def test_full_flow_counts_every_document_in_the_funnel(config, prefect_harness, tmp_path):
    summary = curate(config())

    rows = funnel(summary)
    assert list(rows) == STAGES
    for before, after in zip(STAGES, STAGES[1:]):
        assert rows[after]["docs_in"] == rows[before]["docs_out"], after
        assert rows[before]["docs_in"] - rows[before]["docs_out"] == sum(rows[before]["drops"].values()), before
    assert {"read:invalid_json", "read:invalid_utf8", "read:text_not_string", "read:missing_text"} <= set(rows["read"]["drops"])
    assert rows["dedup_exact"]["drops"]["dedup_exact:text_hash"] > 0
    assert rows["dedup_fuzzy"]["drops"]["dedup_fuzzy:jaccard"] > 0
    assert any(reason.startswith("gopher_repetition:") for reason in rows["clean"]["drops"])
    output = pq.read_table(tmp_path / "out" / "data")
    assert output.num_rows == rows["write"]["docs_out"] == summary["rows"]
    assert len(set(output.column("id").to_pylist())) == output.num_rows
    assert json.loads((tmp_path / "out" / "run_summary.json").read_text())["rows"] == output.num_rows


def test_identical_rerun_is_cached_everywhere_and_rewrites_nothing(config, prefect_harness, tmp_path):
    curate(config())
    before = artifact_files(tmp_path / "out")

    summary = curate(config())

    assert all(row["cached"] for row in summary["funnel"])
    assert artifact_files(tmp_path / "out") == before


def test_changed_clean_parameter_reruns_clean_and_what_follows(config, prefect_harness):
    first = funnel(curate(config()))

    second = funnel(curate(config("clean.gopher_quality.min_doc_words=80")))

    assert [s for s in STAGES if second[s]["cached"]] == ["read", "url_filter", "extract", "normalize", "langid"]
    assert second["clean"]["docs_out"] < first["clean"]["docs_out"]


@pytest.mark.parametrize("column, bound", [("lang_score", "min"), ("toxicity_score", "max")])
def test_changed_select_threshold_reruns_only_select(config, prefect_harness, tmp_path, column, bound):
    curate(config())
    scores = sorted(pq.read_table(tmp_path / "out" / "data").column(column).to_pylist())
    median = scores[len(scores) // 2]

    rows = funnel(curate(config(f"select.thresholds=[{{column: {column}, {bound}: {median}}}]")))

    assert [s for s in STAGES if not rows[s]["cached"]] == ["select", "write"]  # no scorer ran: no model loaded
    failing = sum(s < median for s in scores) if bound == "min" else sum(s > median for s in scores)
    assert rows["select"]["drops"][f"select:{column}"] == failing


def test_output_preserves_input_order_and_carries_stage_columns(config, prefect_harness, tmp_path, corpus):
    curate(config())

    output = pq.read_table(tmp_path / "out" / "data")

    ids = output.column("id").to_pylist()
    input_order = [
        doc_id for path in sorted(corpus.iterdir())
        for doc_id in tasks.read.run(str(path), path.name, ReadParams())[0].column("id").to_pylist()
    ]
    assert ids == [doc_id for doc_id in input_order if doc_id in set(ids)]
    assert {"lang", "lang_score", "exact_cluster", "dup_cluster", "dup_cluster_size", "n_pii_redacted",
            "toxicity_score"} <= set(output.column_names)


def test_flow_parameter_schema_renders_the_config_as_a_form():
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(curate.fn).model_dump()

    assert schema["required"] == ["cfg"]
    definitions = schema["definitions"]
    assert {"CurationConfig", "CleanParams", "LangidParams", "GopherQualityParams"} <= set(definitions)


def test_inspect_shows_rejected_documents_with_reason_and_value(config, prefect_harness, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    rows = funnel(curate(config()))
    reason = max(rows["clean"]["drops"], key=rows["clean"]["drops"].get)

    result = CliRunner().invoke(app, ["inspect", str(tmp_path / "out"), "--stage", "clean", "--reason", reason, "-n", "2"])

    assert result.exit_code == 0, result.output
    assert result.output.count(reason) == 2
    assert "value=" in result.output and "value=-" not in result.output


def test_inspect_shows_quarantined_records_of_read(config, prefect_harness, tmp_path):
    from flows.rejections import rejected_examples

    curate(config())

    examples = rejected_examples(tmp_path / "out", "read", "read:invalid_json", 5)

    assert len(examples) >= 1 and all(e["reason"] == "read:invalid_json" for e in examples)


def test_deleted_shard_file_recomputes_just_that_shard_of_that_stage(config, prefect_harness, tmp_path):
    first = curate(config())
    store = tmp_path / "out" / ".winnow-store"
    clean_key = funnel(first)["clean"]["key"]
    manifest = json.loads((store / "clean" / clean_key / "manifest.json").read_text())
    victim = manifest["shards"][1]
    (store / "clean" / "shards" / victim["key"] / "kept.parquet").unlink()

    rows = funnel(curate(config()))

    assert [(s, rows[s]["shards_computed"]) for s in STAGES if not rows[s]["cached"]] == [("clean", 1)]
    assert pq.read_table(tmp_path / "out" / "data").num_rows == first["rows"]


def test_funnel_is_published_as_a_prefect_table_artifact(config, prefect_harness):
    from prefect import get_client

    summary = curate(config())

    with get_client(sync_client=True) as client:
        # the REST filter directly: prefect 3.8.8's read_artifacts sends nulls its own server rejects
        response = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": ["curation-funnel"]}}, "sort": "CREATED_DESC", "limit": 1,
        })
    rows = json.loads(response.json()[0]["data"])
    assert [row["stage"] for row in rows] == STAGES
    assert rows[-1]["docs_out"] == summary["rows"]


def test_jsonl_output_matches_parquet_output(config, prefect_harness, tmp_path):
    import gzip

    curate(config("write.jsonl=true"))

    data = tmp_path / "out" / "data"
    jsonl_ids = [json.loads(line)["id"] for path in sorted(data.glob("*.jsonl.gz")) for line in gzip.open(path, "rt")]
    parquet_ids = [i for path in sorted(data.glob("*.parquet")) for i in pq.read_table(path).column("id").to_pylist()]
    assert jsonl_ids == parquet_ids


def test_inspect_finds_the_value_of_stage_level_reasons(config, prefect_harness, tmp_path):
    from flows.rejections import rejected_examples

    curate(config())

    examples = rejected_examples(tmp_path / "out", "langid", "langid:lang_score", 3)

    assert examples and all(isinstance(e["value"], float) and e["value"] < 0.5 for e in examples)


def test_warc_and_wet_files_run_through_extraction(shared_data, tmp_path, dask_cluster, prefect_harness):
    raw = shared_data / "web_raw" / "raw_formats"
    cfg = load_config(overrides=[
        f"input.paths=[{raw}/dolma_sample-0000.warc.gz, {raw}/whirlwind.warc.wet.gz]",
        f"output={tmp_path / 'out'}", f"run.cluster.address={dask_cluster.scheduler_address}",
        "url_filter.blocked_substrings=[/about]",
    ])

    rows = funnel(curate(cfg))

    assert rows["read"]["drops"]["read:warc_record_type"] > 0
    assert rows["extract"]["docs_in"] > 0
    output = pq.read_table(tmp_path / "out" / "data")
    assert output.num_rows == rows["write"]["docs_out"] > 0
    assert not any("<html" in text.lower() for text in output.column("text").to_pylist())
    assert set(output.column("source").to_pylist()) <= {"warc:response", "wet:conversion"}


def test_kept_documents_do_not_depend_on_how_the_input_is_sharded(corpus, tmp_path, dask_cluster, prefect_harness):
    docs = [
        line for path in sorted(corpus.iterdir())
        for line in tasks.read.run(str(path), path.name, ReadParams())[0].select(["id", "text"]).to_pylist()
    ]
    kept = []
    for n_files in (2, 5):
        directory = tmp_path / f"split{n_files}"
        directory.mkdir()
        size = -(-len(docs) // n_files)
        for i in range(n_files):
            lines = [json.dumps(d) for d in docs[i * size:(i + 1) * size]]
            (directory / f"part-{i}.jsonl").write_text("\n".join(lines) + "\n")
        cfg = load_config(overrides=[
            f"input.paths=[{directory}]", f"output={tmp_path / f'out{n_files}'}",
            f"run.cluster.address={dask_cluster.scheduler_address}",
        ])
        curate(cfg)
        kept.append(pq.read_table(tmp_path / f"out{n_files}" / "data").column("id").to_pylist())

    assert kept[0] == kept[1]


def test_fuzzy_dedup_report_counts_clusters_and_estimates_precision(config, prefect_harness):
    summary = curate(config())

    report = summary["dedup_fuzzy"]
    removed = funnel(summary)["dedup_fuzzy"]["drops"]["dedup_fuzzy:jaccard"]
    assert report["docs_in_clusters"] - report["clusters"] == removed
    assert sum(report["cluster_sizes"].values()) == report["clusters"]
    assert report["sampled_pairs"] == min(removed, 200)
    assert report["precision_estimate"] == 1.0  # the demo's planted near-duplicates differ by one sentence


def test_persistent_index_dedups_a_new_batch_against_earlier_ones(corpus, tmp_path, dask_cluster, prefect_harness):
    docs = [
        d for path in sorted(corpus.iterdir())
        for d in tasks.read.run(str(path), path.name, ReadParams())[0].to_pylist()
        if d["meta"] and json.loads(d["meta"]).get("defect") is None and d["id"].startswith("demo-")
    ]
    first, fresh = docs[:40], docs[40:60]
    copies = [{**d, "id": f"{d['id']}-again", "text": d["text"] + " One more closing sentence was added here."}
              for d in first[:5]]
    batches = {"batch1": first, "batch2": copies + fresh}

    for name, batch in batches.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "part.jsonl").write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in batch))

    def run_batch(name: str) -> dict:
        directory = tmp_path / name
        return curate(load_config(overrides=[
            f"input.paths=[{directory}]", f"output={tmp_path / ('out-' + name)}", f"store={tmp_path / 'store'}",
            f"run.cluster.address={dask_cluster.scheduler_address}", "dedup_fuzzy.index=main",
        ]))

    run_batch("batch1")
    second = run_batch("batch2")
    again = run_batch("batch2")

    kept = set(pq.read_table(tmp_path / "out-batch2" / "data").column("id").to_pylist())
    assert not kept & {d["id"] for d in copies}
    manifest = json.loads(next((tmp_path / "store" / "dedup_fuzzy").glob(f"{funnel(second)['dedup_fuzzy']['key']}/manifest.json")).read_text())
    rejected = pq.read_table(tmp_path / "store" / "dedup_fuzzy" / "shards" / manifest["shards"][0]["key"] / "rejected.parquet")
    dup_of = dict(zip(rejected.column("id").to_pylist(), rejected.column("dup_of").to_pylist()))
    assert all(dup_of[d["id"]].startswith(INDEX_PREFIX) for d in copies)  # their keepers are batch 1's documents
    assert funnel(second)["dedup_fuzzy"]["drops"]["dedup_fuzzy:jaccard"] >= len(copies)
    assert all(row["cached"] for row in again["funnel"])
