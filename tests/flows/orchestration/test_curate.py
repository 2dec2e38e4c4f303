"""The whole `curate` flow under Prefect's test harness on a real 2-process Dask cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tasks.read
from flows.cli.demo import write_demo_corpus
from flows.config import CurationConfig, load_config
from flows.engine.stage import Registry
from flows.engine.store import ArtifactStore, ShardRef
from flows.orchestration.calibrate_clean import CalibrateConfig, calibrate_clean
from flows.orchestration.curate import curate, curation_flow
from flows.stages import STAGES as REGISTRY
from tasks.clean.calibrate import CalibrationParams, Cut, language_overrides
from tasks.dedup_fuzzy import INDEX_PREFIX
from tasks.read import ReadParams

# the funnel rows, in order: the first stage, every stage the default config runs, then the write
STAGES = ["read", *(stage.name for stage in REGISTRY.order(load_config(overrides=["input.paths=[x]"]))), "write"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "input"
    write_demo_corpus(directory)
    return directory


def demo_config(corpus: Path, output: Path, cluster, *overrides: str):
    return load_config(
        overrides=[
            f"input.paths=[{corpus}]",
            f"output={output}",
            f"run.cluster.address={cluster.scheduler_address}",
            *overrides,
        ]
    )


@pytest.fixture
def config(corpus, tmp_path, dask_cluster):
    return lambda *overrides: demo_config(corpus, tmp_path / "out", dask_cluster, *overrides)


@pytest.fixture(scope="module")
def cold(corpus, tmp_path_factory, dask_cluster, prefect_harness) -> dict:
    """One cold run of the default config over the demo corpus, shared: its summary and output folder.
    Tests that only read a cold run's output read this one; tests that run again start from a copy."""
    output = tmp_path_factory.mktemp("cold") / "out"
    return {"summary": curate(demo_config(corpus, output, dask_cluster)), "output": output}


@pytest.fixture
def after_cold(cold, tmp_path) -> dict:
    """The cold run's output, store included, copied to this test's `out`: the next run there starts
    where a cold run left off, as if the test had run it."""
    shutil.copytree(cold["output"], tmp_path / "out")
    return cold["summary"]


def funnel(summary: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in summary["funnel"]}


def artifact_files(output: Path) -> dict[Path, int]:
    """Stage artifacts and the published dataset (the run summary and the run journal in `_runs/` are
    written by every run)."""
    files = [*(output / ".winnow-store").rglob("*"), *(output / "data").rglob("*")]
    return {p: p.stat().st_mtime_ns for p in files if p.is_file() and not {"_prefect", "_runs"} & set(p.parts)}


def test_full_flow_counts_every_document_in_the_funnel(cold):
    summary, out = cold["summary"], cold["output"]

    rows = funnel(summary)
    assert list(rows) == STAGES
    for before, after in zip(STAGES, STAGES[1:]):
        assert rows[after]["docs_in"] == rows[before]["docs_out"], after
        assert rows[before]["docs_in"] - rows[before]["docs_out"] == sum(rows[before]["drops"].values()), before
    assert {"read:invalid_json", "read:invalid_utf8", "read:text_not_string", "read:missing_text"} <= set(
        rows["read"]["drops"]
    )
    assert rows["dedup_exact"]["drops"]["dedup_exact:text_hash"] > 0
    assert rows["dedup_fuzzy"]["drops"]["dedup_fuzzy:jaccard"] > 0
    assert any(reason.startswith("gopher_repetition:") for reason in rows["clean"]["drops"])
    output = pq.read_table(out / "data")
    assert output.num_rows == rows["write"]["docs_out"] == summary["rows"]
    assert len(set(output.column("id").to_pylist())) == output.num_rows
    assert json.loads((out / "run_summary.json").read_text())["rows"] == output.num_rows
    thresholds = json.loads((out / "run_summary.json").read_text())["score_thresholds"]
    assert [thresholds[c]["n"] + thresholds[c]["n_missing"] for c in ("lang_score", "toxicity_score")] == [
        rows["select"]["docs_in"]
    ] * 2


def test_identical_rerun_is_cached_everywhere_and_rewrites_nothing(config, after_cold, tmp_path):
    before = artifact_files(tmp_path / "out")

    summary = curate(config())

    assert all(row["cached"] for row in summary["funnel"])
    assert artifact_files(tmp_path / "out") == before


def curate_unable_to_measure():
    """The `curate` flow whose clean signals phase raises if it runs (`int(table, params)`): a
    stage that finds its signals in the store never calls it."""
    clean = REGISTRY["clean"]
    failing = replace(clean, phases=(replace(clean.phases[0], fn=int), *clean.phases[1:]))
    return curation_flow(Registry(tuple(failing if s.name == "clean" else s for s in REGISTRY)), CurationConfig)


def test_a_clean_threshold_change_reruns_clean_and_what_follows_but_measures_no_signal(config, after_cold):
    first = funnel(after_cold)
    unable_to_measure = curate_unable_to_measure()

    second = funnel(
        unable_to_measure(
            config(
                "clean.gopher_quality.min_doc_words=80",
                "clean.languages={en: {fineweb: {max_list_ratio: 0.2}}}",
            )
        )
    )

    assert [s for s in STAGES if second[s]["cached"]] == STAGES[: STAGES.index("clean")]
    assert second["clean"]["docs_out"] < first["clean"]["docs_out"]
    assert second["clean"]["why"] == "parameters changed: clean.gopher_quality.min_doc_words, clean.languages.en"
    assert second[STAGES[STAGES.index("clean") + 1]]["why"] == "its input from clean changed"
    assert second["langid"]["why"] == "unchanged"
    with pytest.raises(TypeError):  # a measure knob does need the signals: the control
        unable_to_measure(config("clean.fineweb.short_line_max_chars=20"))


def test_a_pii_placeholder_change_rewrites_the_text_but_detects_nothing_again(config, after_cold, tmp_path):
    pii = REGISTRY["pii"]
    unable_to_detect = replace(pii, phases=(replace(pii.phases[0], fn=int), *pii.phases[1:]))
    flow = curation_flow(Registry(tuple(unable_to_detect if s.name == "pii" else s for s in REGISTRY)), CurationConfig)

    second = funnel(flow(config("pii.placeholders={email: '[mail]'}")))

    assert [s for s in STAGES if second[s]["cached"]] == STAGES[: STAGES.index("pii")]
    assert second["pii"]["why"] == "parameters changed: pii.placeholders.email"
    texts = pq.read_table(tmp_path / "out" / "data", columns=["text", "pii_email"])
    redacted = [t for t, n in zip(*texts.to_pydict().values()) if n]
    assert redacted and all("[mail]" in t and "<EMAIL>" not in t and "@example.org" not in t for t in redacted)


def test_a_threshold_change_reruns_later_stages_only_on_shards_whose_verdicts_changed(config, after_cold, tmp_path):
    store = ArtifactStore(str(tmp_path / "out" / ".winnow-store"))
    clean = store.read_json(store.manifest_path("clean", funnel(after_cold)["clean"]["key"]))
    lengths = [  # mean word length of every kept document, per shard
        store.read_view("clean", ShardRef(s["name"], s["key"]), ["gopher_quality_mean_word_length"])
        .column(0)
        .to_pylist()
        for s in clean["shards"]
    ]
    longest, runner_up = sorted({value for shard in lengths for value in shard if value is not None})[-1:-3:-1]
    assert [longest in shard for shard in lengths].count(True) == 1  # one shard holds the doc(s) it drops

    rows = funnel(curate(config(f"clean.gopher_quality.max_mean_word_length={(longest + runner_up) / 2}")))

    assert rows["clean"]["docs_out"] == funnel(after_cold)["clean"]["docs_out"] - sum(
        s.count(longest) for s in lengths
    )
    assert rows["clean"]["shards_computed"] == 1  # the other shards' verdicts are as they were: same keys
    deduped = [  # dedup_fuzzy's shard keys, cold and now: a dropped doc can free its duplicates elsewhere
        {
            s["name"]: s["key"]
            for s in store.read_json(store.manifest_path("dedup_fuzzy", run["dedup_fuzzy"]["key"]))["shards"]
        }
        for run in (funnel(after_cold), rows)
    ]
    touched = sum(deduped[0][name] != key for name, key in deduped[1].items())
    assert 0 < touched < len(lengths)
    assert [rows[stage]["shards_computed"] for stage in ("quality", "toxicity", "decontam")] == [touched] * 3


def test_the_report_shows_clean_by_language(cold):
    languages = cold["summary"]["clean_languages"]["languages"]

    assert sum(row["docs_in"] for row in languages) == funnel(cold["summary"])["clean"]["docs_in"]
    assert sum(row["kept"] for row in languages) == funnel(cold["summary"])["clean"]["docs_out"]
    en = next(row for row in languages if row["lang"] == "en")
    assert sum(en["drops"].values()) == en["docs_in"] - en["kept"] > 0
    assert "Cleaning by language" in (cold["output"] / "report.html").read_text()


def test_calibrated_thresholds_feed_back_and_rerun_only_the_decision(config, after_cold, tmp_path):
    from prefect import get_client

    report = calibrate_clean(
        CalibrateConfig(
            curation=config(),
            calibration=CalibrationParams(min_docs=20),
            output=str(tmp_path / "calibration"),
        )
    )

    assert report["cuts"] and {cut["lang"] for cut in report["cuts"]} <= set(report["languages"])
    yaml_config = load_config(
        tmp_path / "calibration" / "clean_languages.yaml",
        [
            f"input.paths=[{config().input.paths[0]}]",
            f"output={tmp_path / 'out'}",
            f"run.cluster.address={config().run.cluster.address}",
        ],
    )
    assert {lang: o.changes() for lang, o in yaml_config.clean.languages.items()} == language_overrides(
        [Cut(**cut) for cut in report["cuts"]]
    )
    rows = funnel(curate_unable_to_measure()(yaml_config))  # the signals come from calibrate's run
    assert [s for s in STAGES if not rows[s]["cached"]][0] == "clean"
    page = (tmp_path / "calibration" / "clean_languages.yaml").read_text()
    assert (
        "# winnow calibrate, method corpus" in page
        and "<svg" in (tmp_path / "calibration" / "calibration.html").read_text()
    )
    with get_client(sync_client=True) as client:
        artifacts = client.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["clean-calibration"]}}, "sort": "CREATED_DESC", "limit": 50},
        ).json()
    assert any(str(tmp_path) in a["description"] and "clean_languages.yaml" in a["data"] for a in artifacts)


@pytest.mark.parametrize("column, bound", [("lang_score", "min"), ("toxicity_score", "max")])
def test_changed_select_threshold_reruns_only_select(config, after_cold, tmp_path, column, bound):
    # toxicity_score is null outside its model's languages; select keeps those rows (missing: keep)
    scores = sorted(s for s in pq.read_table(tmp_path / "out" / "data").column(column).to_pylist() if s is not None)
    median = scores[len(scores) // 2]

    rows = funnel(curate(config(f"select.thresholds=[{{column: {column}, {bound}: {median}}}]")))

    assert [s for s in STAGES if not rows[s]["cached"]] == ["select", "write"]  # no scorer ran: no model loaded
    assert rows["select"]["why"] == "parameters changed: select.thresholds"
    failing = sum(s < median for s in scores) if bound == "min" else sum(s > median for s in scores)
    assert rows["select"]["drops"][f"select:{column}"] == failing


def test_output_preserves_input_order_and_carries_stage_columns(cold, corpus):
    output = pq.read_table(cold["output"] / "data")

    ids = output.column("id").to_pylist()
    input_order = [
        doc_id
        for path in sorted(corpus.iterdir())
        for doc_id in tasks.read.run(str(path), path.name, ReadParams())[0].column("id").to_pylist()
    ]
    assert ids == [doc_id for doc_id in input_order if doc_id in set(ids)]
    assert {
        "lang",
        "lang_score",
        "exact_cluster",
        "dup_cluster",
        "dup_cluster_size",
        "pii_email",
        "pii_spans",
        "toxicity_score",
    } <= set(output.column_names)


def test_flow_parameter_schema_renders_the_config_as_a_form():
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(curate.fn).model_dump()

    assert schema["required"] == ["cfg"]
    definitions = schema["definitions"]
    assert {"CurationConfig", "CleanParams", "LangidParams", "GopherQualityParams"} <= set(definitions)


def test_inspect_shows_rejected_documents_with_reason_and_value(cold):
    from typer.testing import CliRunner

    from flows.cli.app import app

    rows = funnel(cold["summary"])
    reason = max(rows["clean"]["drops"], key=rows["clean"]["drops"].get)

    result = CliRunner().invoke(
        app, ["inspect", str(cold["output"]), "--stage", "clean", "--reason", reason, "-n", "2"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.count(reason) == 2
    assert "value=" in result.output and "value=-" not in result.output


def test_inspect_shows_the_pii_spans_as_placeholders_in_context(cold):
    from typer.testing import CliRunner

    from flows.cli.app import app

    result = CliRunner().invoke(
        app, ["inspect", str(cold["output"]), "--stage", "pii", "--spans", "--reason", "email", "-n", "2"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.count("«<EMAIL>»") == 2 and "@example.org" not in result.output
    refused = CliRunner().invoke(app, ["inspect", str(cold["output"]), "--stage", "clean", "--spans"])
    assert refused.exit_code != 0 and "marks no spans" in refused.output


def test_inspect_shows_quarantined_records_of_read(cold):
    from flows.report.rejections import rejected_examples

    examples = rejected_examples(cold["output"], "read", "read:invalid_json", 5)

    assert len(examples) >= 1 and all(e["reason"] == "read:invalid_json" for e in examples)


def test_deleted_shard_file_recomputes_just_that_shard_of_that_stage(config, after_cold, tmp_path):
    first = after_cold
    store = tmp_path / "out" / ".winnow-store"
    clean_key = funnel(first)["clean"]["key"]
    manifest = json.loads((store / "clean" / clean_key / "manifest.json").read_text())
    victim = manifest["shards"][1]
    (store / "clean" / "shards" / victim["key"] / "kept.parquet").unlink()

    rows = funnel(curate(config()))

    assert [(s, rows[s]["shards_computed"]) for s in STAGES if not rows[s]["cached"]] == [("clean", 1)]
    assert pq.read_table(tmp_path / "out" / "data").num_rows == first["rows"]


def test_funnel_is_published_as_a_prefect_table_artifact(cold):
    from prefect import get_client

    summary = cold["summary"]

    with get_client(sync_client=True) as client:
        # the REST filter directly: prefect 3.8.8's read_artifacts sends nulls its own server rejects
        response = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"key": {"any_": ["curation-funnel"]}, "flow_run_id": {"any_": [summary["run_id"]]}},
                "sort": "CREATED_DESC",
                "limit": 1,
            },
        )
    rows = json.loads(response.json()[0]["data"])
    assert [row["stage"] for row in rows] == STAGES
    assert rows[-1]["docs_out"] == summary["rows"]


def test_a_version_carries_its_card_which_the_hub_datasets_and_duckdb_read(cold):
    import datasets
    import duckdb
    from huggingface_hub import DatasetCard
    from prefect import get_client

    summary = cold["summary"]
    version_dir = Path(summary["output"]).parent

    card = DatasetCard.load(version_dir / "README.md")
    loaded = datasets.load_dataset(str(version_dir), split="train")
    counted = duckdb.sql(f"select count(*) from read_parquet('{version_dir}/data/*.parquet')")

    metadata = card.data.to_dict()
    assert metadata["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}
    ]
    assert metadata["size_categories"] == ["n<1K"] and metadata["license"] == ["unknown"]
    assert {"en", "de", "fr", "es"} <= set(metadata["language"])
    assert loaded.num_rows == summary["rows"] == counted.fetchall()[0][0]
    for row in summary["funnel"][:-1]:  # every stage, its documents in and out (the write row is not a stage)
        assert f"| {row['stage']} |" in card.text and f"{row['docs_out']:,}" in card.text
    assert "dedup_semantic**: off" in card.text  # a stage left out still says what that leaves
    assert f"| none declared | {summary['rows']:,} | 100.0% |" in card.text  # the demo's records name no licence
    assert f"## Changes\n\nFirst version: {summary['rows']:,} documents." in card.text
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["dataset-card"]}, "flow_run_id": {"any_": [summary["run_id"]]}}},
        )
    assert response.json()[0]["data"] == (version_dir / "README.md").read_text()


def test_jsonl_output_matches_parquet_output(config, after_cold, tmp_path):
    import gzip

    curate(config("write.jsonl=true"))

    data = tmp_path / "out" / "data"
    jsonl_ids = [json.loads(line)["id"] for path in sorted(data.glob("*.jsonl.gz")) for line in gzip.open(path, "rt")]
    parquet_ids = [i for path in sorted(data.glob("*.parquet")) for i in pq.read_table(path).column("id").to_pylist()]
    assert jsonl_ids == parquet_ids


def test_inspect_finds_the_value_of_stage_level_reasons(cold):
    from flows.report.rejections import rejected_examples

    examples = rejected_examples(cold["output"], "langid", "langid:lang_score", 3)

    assert examples and all(isinstance(e["value"], float) and e["value"] < 0.5 for e in examples)


def test_warc_and_wet_files_run_through_extraction(shared_data, tmp_path, dask_cluster, prefect_harness):
    raw = shared_data / "web_raw" / "raw_formats"
    cfg = load_config(
        overrides=[
            f"input.paths=[{raw}/dolma_sample-0000.warc.gz, {raw}/whirlwind.warc.wet.gz]",
            f"output={tmp_path / 'out'}",
            f"run.cluster.address={dask_cluster.scheduler_address}",
            "url_filter.blocked_substrings=[/about]",
        ]
    )

    rows = funnel(curate(cfg))

    assert rows["read"]["drops"]["read:warc_record_type"] > 0
    assert rows["extract"]["docs_in"] > 0
    output = pq.read_table(tmp_path / "out" / "data")
    assert output.num_rows == rows["write"]["docs_out"] > 0
    assert not any("<html" in text.lower() for text in output.column("text").to_pylist())
    assert set(output.column("source").to_pylist()) <= {"warc:response", "wet:conversion"}


def test_kept_documents_do_not_depend_on_how_the_input_is_sharded(corpus, tmp_path, dask_cluster, prefect_harness):
    docs = [  # the first 240 of the corpus's documents: its defects and near-duplicates, at 40% of the cost
        line
        for path in sorted(corpus.iterdir())
        for line in tasks.read.run(str(path), path.name, ReadParams())[0].select(["id", "text"]).to_pylist()
    ][:240]
    kept = []
    for n_files in (2, 5):
        directory = tmp_path / f"split{n_files}"
        directory.mkdir()
        size = -(-len(docs) // n_files)
        for i in range(n_files):
            lines = [json.dumps(d) for d in docs[i * size : (i + 1) * size]]
            (directory / f"part-{i}.jsonl").write_text("\n".join(lines) + "\n")
        cfg = load_config(
            overrides=[
                f"input.paths=[{directory}]",
                f"output={tmp_path / f'out{n_files}'}",
                f"run.cluster.address={dask_cluster.scheduler_address}",
            ]
        )
        curate(cfg)
        kept.append(pq.read_table(tmp_path / f"out{n_files}" / "data").column("id").to_pylist())

    assert kept[0] == kept[1]


def test_fuzzy_dedup_report_counts_clusters_and_estimates_precision(cold):
    summary = cold["summary"]

    report = summary["dedup_fuzzy"]
    removed = funnel(summary)["dedup_fuzzy"]["drops"]["dedup_fuzzy:jaccard"]
    assert report["docs_in_clusters"] - report["clusters"] == removed
    assert sum(report["cluster_sizes"].values()) == report["clusters"]
    assert report["sampled_pairs"] == min(removed, 200)
    # the demo's planted near-duplicates differ by one sentence; its sentence-shuffled pages put many
    # pairs near 0.5 Jaccard, which the S-curve removes with probability ~0.005 each
    assert report["precision_estimate"] >= 0.9
    assert report["removal_probability"]["0.50"] < 0.05
    assert report["removal_at_threshold"] >= 0.95


def test_highest_score_keeper_scores_quality_before_fuzzy_dedup(config, after_cold, tmp_path):
    summary = curate(
        config(
            "quality.scorers=[{backend: profanity, name: quality}]",
            "dedup_fuzzy.keeper=highest_score",
        )
    )

    order = [row["stage"] for row in summary["funnel"]]
    assert order.index("quality") < order.index("dedup_fuzzy")
    store, fuzzy = ArtifactStore(str(tmp_path / "out" / ".winnow-store")), funnel(summary)["dedup_fuzzy"]
    shards = [ShardRef(**s) for s in store.manifest("dedup_fuzzy", fuzzy["key"])["shards"]]
    columns = ["dup_cluster", "quality_score"]
    kept = [row for s in shards for row in store.read_view("dedup_fuzzy", s, columns).to_pylist()]
    removed = [
        row
        for s in shards
        if (t := store.read_rejected("dedup_fuzzy", s, columns)) is not None
        for row in t.to_pylist()
    ]
    keeper_score = {row["dup_cluster"]: row["quality_score"] for row in kept}
    assert removed
    assert all(row["quality_score"] <= keeper_score[row["dup_cluster"]] for row in removed)


@pytest.mark.parametrize("index", [None, "nightly"])
def test_recuration_of_a_grown_input_computes_the_new_shard_and_reports_the_delta(
    corpus, tmp_path, dask_cluster, prefect_harness, index
):
    docs = [
        d
        for path in sorted(corpus.iterdir())
        for d in tasks.read.run(str(path), path.name, ReadParams())[0].to_pylist()
        if d["meta"] and json.loads(d["meta"]).get("defect") is None and d["id"].startswith("demo-")
    ]
    shards = {f"part-{k}.jsonl": docs[30 * k : 30 * k + 30] for k in range(3)}
    copies = [
        {**d, "id": f"{d['id']}-again", "text": d["text"] + " One more closing sentence was added here."}
        for d in shards["part-0.jsonl"][:2]
    ]
    copies.append({**shards["part-1.jsonl"][0], "id": "exact-copy"})  # changes part-1's exact-dedup marks
    inputs = tmp_path / "in"
    inputs.mkdir()

    def add(name: str, batch: list[dict]) -> None:
        (inputs / name).write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in batch))

    def recurate() -> dict:
        return curate(
            load_config(
                overrides=[
                    f"input.paths=[{inputs}/*.jsonl]",
                    f"output={tmp_path / 'out'}",
                    f"run.cluster.address={dask_cluster.scheduler_address}",
                    f"dedup_exact.index={index or 'null'}",
                    f"dedup_fuzzy.index={index or 'null'}",
                ]
            )
        )

    for name, batch in shards.items():
        add(name, batch)
    first = recurate()
    add("part-3.jsonl", docs[90:110] + copies)
    second = recurate()

    rows = funnel(second)
    computed = {stage: row["shards_computed"] for stage, row in rows.items() if stage not in ("write", "select")}
    if index:  # old shards keep the marks their batch gave them: only the new shard goes through
        assert set(computed.values()) == {1}, computed
    else:  # part-0 gained near-duplicates and part-1 an exact copy in the new shard: their clusters changed
        assert computed == {
            **{stage: 1 for stage in computed},
            "dedup_exact": 2,
            **{s: 3 for s in computed if STAGES.index(s) >= STAGES.index("dedup_fuzzy")},
        }, computed
    assert rows["read"]["why"] == "1 new input file (part-3.jsonl)"
    old, new = (
        set(pq.read_table(tmp_path / "out" / "versions" / s["version"] / "data").column("id").to_pylist())
        for s in (first, second)
    )
    assert old < new  # nothing published before is lost, and the first version stays readable
    assert not new & {d["id"] for d in copies}
    delta = second["delta"]
    assert delta["previous_version"] == first["version"]
    assert delta["added"] == delta["added_from_new_shards"] == len(new - old)
    assert delta["removed"] == 0 and delta["new_shards"] == ["part-3.jsonl"]
    latest = json.loads((tmp_path / "out" / "latest.json").read_text())
    assert (
        latest["version"] == second["version"] == sorted(p.name for p in (tmp_path / "out" / "versions").iterdir())[-1]
    )
    assert set(pq.read_table(tmp_path / "out" / "data").column("id").to_pylist()) == new
    if index:
        # the new shard's near-duplicates were removed against the index: their keepers are batch 1's
        store = ArtifactStore(str(tmp_path / "out" / ".winnow-store"))
        manifest = store.read_json(store.manifest_path("dedup_fuzzy", rows["dedup_fuzzy"]["key"]))
        [part3] = [ShardRef(s["name"], s["key"]) for s in manifest["shards"] if s["name"] == "part-3.jsonl"]
        rejected = store.read_rejected("dedup_fuzzy", part3)
        dup_of = dict(zip(rejected.column("id").to_pylist(), rejected.column("dup_of").to_pylist()))
        assert all(dup_of[d["id"]].startswith(INDEX_PREFIX) for d in copies if d["id"].endswith("-again"))
        assert all(row["cached"] for row in recurate()["funnel"])  # an unchanged rerun decides nothing again
        # a modified file is deduplicated again, not against its own earlier version
        add("part-2.jsonl", shards["part-2.jsonl"] + docs[110:111])
        third = recurate()
        assert set(pq.read_table(tmp_path / "out" / "data").column("id").to_pylist()) == new | {docs[110]["id"]}
        assert third["delta"]["removed"] == 0


def test_a_tighter_threshold_publishes_a_version_whose_delta_names_the_reason(config, after_cold, tmp_path):
    first = after_cold
    scores = sorted(pq.read_table(tmp_path / "out" / "data").column("lang_score").to_pylist())

    second = curate(config(f"select.thresholds=[{{column: lang_score, min: {scores[10]}}}]"))

    delta = second["delta"]
    assert (
        delta["removed"]
        == sum(s < scores[10] for s in scores)
        == second["delta"]["removed_by_reason"]["select:lang_score"]
    )
    assert delta["added"] == 0
    assert second["version"] != first["version"]
    card = (tmp_path / "out" / "versions" / second["version"] / "README.md").read_text()  # the card says it too
    assert f"removed {delta['removed']:,}: `select:lang_score` {delta['removed']:,}." in card.split("## Changes")[1]
    assert pq.read_table(tmp_path / "out" / "versions" / first["version"] / "data").num_rows == first["rows"]
    third = curate(config(f"select.thresholds=[{{column: lang_score, min: {scores[10]}}}]"))
    assert third["version"] == second["version"] and third["delta"] == {
        "version": second["version"],
        "unchanged": True,
    }


def test_from_run_reruns_an_earlier_config_with_one_change(corpus, after_cold, tmp_path, prefect_api):
    """The cold run, then a rerun through the real `winnow` command, as a user types it (reporting to
    a running Prefect server, as after `winnow ui`)."""
    first, out = after_cold, tmp_path / "out"

    winnow = Path(sys.executable).parent / "winnow"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    rerun = subprocess.run(
        [
            str(winnow),
            "run",
            "--from-run",
            first["run_id"][:8],
            "--output",
            str(out),
            "--set",
            "select.thresholds=[{column: lang_score, min: 0.9}]",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads((out / "run_summary.json").read_text())
    rows = {row["stage"]: row for row in summary["funnel"]}
    assert [stage for stage, row in rows.items() if not row["cached"]] == ["select", "write"]
    assert rows["select"]["why"] == "parameters changed: select.thresholds"
    assert summary["config"]["input"]["paths"] == [str(corpus)]
    assert summary["run_id"] != first["run_id"]


def test_a_failing_shard_is_retried_then_reported_with_its_shard_and_attempts(config, after_cold, tmp_path):
    from prefect import get_client

    from tasks.errors import StoreError

    first = after_cold
    store = tmp_path / "out" / ".winnow-store"
    manifest = json.loads((store / "langid" / funnel(first)["langid"]["key"] / "manifest.json").read_text())
    victim = manifest["shards"][2]
    (store / "langid" / "shards" / victim["key"] / "kept.parquet").write_bytes(b"not parquet")
    clean = json.loads((store / "clean" / funnel(first)["clean"]["key"] / "manifest.json").read_text())
    (store / "clean" / "shards" / clean["shards"][2]["key"] / "stats.json").unlink()

    with pytest.raises(StoreError, match="unreadable artifact"):
        curate(config("run.shard_retries=0", "run.stage_retries_by_stage={clean: {retries: 1, delay_seconds: 0}}"))

    with get_client(sync_client=True) as client:  # this run's: other test processes share the server
        [artifact] = [
            a
            for a in client.request(
                "POST",
                "/artifacts/filter",
                json={"artifacts": {"key": {"any_": ["curation-failure"]}}, "sort": "CREATED_DESC", "limit": 50},
            ).json()
            if str(tmp_path) in a["data"]
        ]
        task_runs = client.request(
            "POST",
            "/task_runs/filter",
            json={
                "flow_runs": {"id": {"any_": [artifact["flow_run_id"]]}},
                "task_runs": {"name": {"like_": "clean"}},
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": 1,
            },
        ).json()
    assert f"shard '{victim['name']}'" in artifact["data"]
    assert "1 per shard (Dask) x 2 of the stage (Prefect)" in artifact["data"]
    assert task_runs[0]["run_count"] == 2 and task_runs[0]["state"]["type"] == "FAILED"


def test_fuzzy_marks_manifest_names_its_clusters_before_the_merge_writes_it_again(
    config, after_cold, tmp_path, monkeypatch
):
    """Regression: two runs on one store raced. The marks map wrote the stage's manifest without its
    clusters pointer, the merge wrote it again with it, and the other run's report read in between
    (KeyError 'clusters'). A run stopped right after the marks map leaves a manifest that names them."""
    import flows.engine.corpus

    store = tmp_path / "out" / ".winnow-store"
    manifest = store / "dedup_fuzzy" / funnel(after_cold)["dedup_fuzzy"]["key"] / "manifest.json"
    cold = json.loads(manifest.read_text())
    manifest.unlink()
    (store / "dedup_fuzzy" / "shards" / cold["shards"][0]["key"] / "stats.json").unlink()

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the merge")

    monkeypatch.setattr(flows.engine.corpus, "_merge", stop)
    with pytest.raises(RuntimeError, match="stopped before the merge"):
        curate(config("run.stage_retries={retries: 0, delay_seconds: 0}"))

    batch = Path(cold["clusters"]).parent.name  # the cold run's store, copied here
    assert json.loads(manifest.read_text())["clusters"] == str(store / "dedup_fuzzy" / batch / "clusters")


def test_html_report_is_self_contained_with_its_plots(cold):
    from html.parser import HTMLParser

    from prefect import get_client

    summary = cold["summary"]

    page = (cold["output"] / "report.html").read_text()
    assert page == (cold["output"] / "runs" / f"{summary['run_id']}.html").read_text()
    tags = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append((tag, dict(attrs)))
    parser.feed(page)
    assert sum(tag == "svg" for tag, _ in tags) >= 3  # funnel, drop reasons, cluster sizes
    assert not [attrs for tag, attrs in tags if tag in ("script", "link", "img")]  # nothing to fetch
    assert "Top" in page and "Fuzzy duplicate cluster sizes" in page
    with get_client(sync_client=True) as client:
        link = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"key": {"any_": ["run-report"]}, "flow_run_id": {"any_": [summary["run_id"]]}},
                "sort": "CREATED_DESC",
                "limit": 1,
            },
        ).json()[0]
    assert summary["report"] in link["data"]
