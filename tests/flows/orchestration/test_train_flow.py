"""The train-classifier flow and `winnow train`, end to end on real labeled tweets (davidson)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli.app import app
from flows.config import load_config
from flows.orchestration.train import EXCLUDED_FILE, TrainConfig, train_classifier
from tasks.errors import ConfigError
from tasks.toxicity import ToxicityParams
from tasks.toxicity import run as toxicity_run
from tasks.toxicity.axes import record_labels
from tasks.train import classifier_metrics

SMALL_FASTTEXT = ["fasttext.bucket=20000", "fasttext.epoch=25"]  # 20k buckets: an 8 MB model, not 800 MB


def davidson(shared_data: Path, start: int, stop: int, step: int) -> list[dict]:
    lines = (shared_data / "toxicity" / "davidson_hate_offensive.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[start:stop:step]]


def write_jsonl(path: Path, records: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("\n".join([json.dumps(r) for r in records] + list(extra_lines)) + "\n", encoding="utf-8")
    return path


def train(tmp_path: Path, *overrides: str) -> dict:
    return train_classifier(load_config(overrides=[f"output={tmp_path / 'model'}", *overrides], schema=TrainConfig))


def test_fasttext_on_labeled_tweets_beats_chance_and_plugs_into_toxicity(shared_data, tmp_path, prefect_harness):
    records = davidson(shared_data, 0, 2400, 6)  # 400 tweets, 85% toxic
    del records[5]["toxic"]
    path = write_jsonl(tmp_path / "labeled.jsonl", records, extra_lines=('{"text": "cut off',))

    result = train(
        tmp_path, f"labeled=[{path}]", "labels.field=toxic", "fasttext.label=toxic", "stage=toxicity", *SMALL_FASTTEXT
    )

    card = result["card"]
    assert card["metrics"]["roc_auc"] > 0.65
    assert card["data"]["n_train"] + card["data"]["n_validation"] == 399
    assert card["inputs"]["excluded"] == {"read:invalid_json": 1, "train:missing_label": 1}
    assert pq.read_table(tmp_path / "model" / EXCLUDED_FILE).column("reason").to_pylist() == [
        "read:invalid_json",
        "train:missing_label",
    ]
    params = ToxicityParams.model_validate(yaml.safe_load(result["snippet"].split("\nor: ")[0])["toxicity"])
    held_out = davidson(shared_data, 2401, 4800, 6)
    scored = toxicity_run(pa.table({"text": [r["text"] for r in held_out]}), params).kept
    assert scored.schema.field("toxic_score").type == pa.float32()
    assert (
        classifier_metrics([r["toxic"] for r in held_out], scored.column("toxic_score").to_numpy())["roc_auc"] > 0.65
    )


def test_metrics_are_published_as_a_prefect_artifact(tmp_path, separable, prefect_harness):
    from prefect import get_client

    texts, labels = separable(60)
    path = write_jsonl(tmp_path / "labeled.jsonl", [{"text": t, "label": y} for t, y in zip(texts, labels)])

    card = train(tmp_path, f"labeled=[{path}]", *SMALL_FASTTEXT)["card"]

    with get_client(sync_client=True) as client:  # the REST filter, as in tests/flows/orchestration/test_curate.py
        response = client.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["classifier-metrics"]}}, "sort": "CREATED_DESC", "limit": 50},
        )
    # this run's (other test processes share the server): its description names the model directory
    [markdown] = [a["data"] for a in response.json() if str(tmp_path) in a["description"]]
    assert f"| {card['metrics']['accuracy']:.3f} |" in markdown and "quality:\n  scorers:" in markdown


def test_a_rerun_on_unchanged_inputs_keeps_the_model_and_a_changed_input_or_knob_retrains(
    tmp_path, separable, prefect_harness
):
    texts, labels = separable(60)
    path = write_jsonl(tmp_path / "labeled.jsonl", [{"text": t, "label": y} for t, y in zip(texts, labels)])
    model = tmp_path / "model" / "model.bin"
    first = train(tmp_path, f"labeled=[{path}]", *SMALL_FASTTEXT)
    trained_at = model.stat().st_mtime_ns

    again = train(tmp_path, f"labeled=[{path}]", *SMALL_FASTTEXT)
    kept_at = model.stat().st_mtime_ns
    other_knob = train(tmp_path, f"labeled=[{path}]", *SMALL_FASTTEXT, "fasttext.dim=20")
    knob_at = model.stat().st_mtime_ns
    write_jsonl(path, [{"text": t, "label": y} for t, y in zip(texts[1:], labels[1:])])
    other_input = train(tmp_path, f"labeled=[{path}]", *SMALL_FASTTEXT, "fasttext.dim=20")

    assert kept_at == trained_at and again["card"] == first["card"] and again["snippet"] == first["snippet"]
    assert knob_at != kept_at and other_knob["card"]["params"]["dim"] == 20
    assert model.stat().st_mtime_ns != knob_at
    assert other_input["card"]["data"]["n_train"] + other_input["card"]["data"]["n_validation"] == 59


def test_embedding_head_on_string_labels_beats_chance(shared_data, tmp_path, prefect_harness):
    path = write_jsonl(tmp_path / "labeled.jsonl", davidson(shared_data, 0, 3000, 20))  # 150 tweets

    result = train(
        tmp_path,
        f"labeled=[{path}]",
        "kind=embedding_head",
        "labels.positive=[hate_speech, offensive_language]",
        "labels.negative=[neither]",
        "embedding_head.label=toxic",
        "embedding_head.validation_fraction=0.3",
    )

    card = result["card"]
    assert card["kind"] == "embedding_head" and card["data"]["n_validation"] == 45
    assert card["metrics"]["roc_auc"] > 0.7
    assert (Path(result["model_dir"]) / "head.npz").is_file()


def test_winnow_train_from_positive_and_negative_files_samples_negatives(tmp_path, separable, prefect_harness):
    texts, labels = separable(200)
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": t} for t, y in zip(texts, labels) if not y])
    raw = write_jsonl(tmp_path / "raw.jsonl", [{"text": t} for t, y in zip(texts, labels) if y])

    result = CliRunner().invoke(
        app,
        [
            "train",
            "--positive",
            str(good),
            "--negative",
            str(raw),
            "--output",
            str(tmp_path / "model"),
            "--set",
            "max_negatives=40",
            "--set",
            "fasttext.label=hq",
            *[arg for s in SMALL_FASTTEXT for arg in ("--set", s)],
        ],
    )

    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["data"]["n_train_positive"] + card["data"]["n_validation_positive"] == 100
    assert card["data"]["n_train"] + card["data"]["n_validation"] == 140
    assert card["metrics"]["roc_auc"] > 0.9
    assert card["scorer"]["model_path"] == str(tmp_path / "model" / "model.bin")


def test_winnow_train_with_one_class_is_a_clear_error(tmp_path, prefect_harness):
    path = write_jsonl(tmp_path / "labeled.jsonl", [{"text": f"doc {i}", "label": True} for i in range(10)])

    result = CliRunner().invoke(app, ["train", "--labeled", str(path), "--output", str(tmp_path / "model")])

    assert result.exit_code == 2
    assert "each class" in result.output


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["labeled=[a.jsonl]", "positive=[b.jsonl]", "negative=[c.jsonl]"], "either labeled files"),
        (["positive=[b.jsonl]"], "go together"),
        ([], "either labeled files"),
        (["labeled=[a.jsonl]", "labels.field=source"], "read consumes"),
    ],
)
def test_config_needs_one_source_of_examples(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides, schema=TrainConfig)


def test_missing_input_fails_before_any_flow_runs(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "--labeled", str(tmp_path / "none-*.jsonl"), "--output", str(tmp_path / "m")]
    )

    assert result.exit_code == 2 and "matches no file" in result.output
    assert not (tmp_path / "m").exists()


def test_winnow_train_with_heads_masks_unknown_labels_and_prints_a_heads_scorer(
    shared_data, tmp_path, prefect_harness
):
    """HateCheck cases with their axis labels (tasks/toxicity/axes.py) plus Davidson tweets whose axes
    are unknown: each head trains on the records that label it, and the snippet plugs in all heads."""
    lines = (shared_data / "toxicity" / "hatecheck_en.jsonl").read_text(encoding="utf-8").splitlines()
    cases = [json.loads(line) for line in lines[::6]]
    records = [
        {"text": r["text"], **record_labels(r["toxic"], r["target_ident"], r["functionality"])} for r in cases
    ] + [{"text": r["text"], **record_labels(r["toxic"])} for r in davidson(shared_data, 0, 600, 3)]
    path = write_jsonl(tmp_path / "labelled.jsonl", records)
    heads = "{toxicity: {field: toxicity}, gender_sexuality: {field: gender_sexuality}, violence: {field: violence}}"

    result = train(
        tmp_path,
        f"labeled=[{path}]",
        f"heads={heads}",
        "languages=[en]",
        "stage=toxicity",
        "fasttext.label=toxicity",
        "fasttext.minn=3",
        "fasttext.maxn=5",
        "fasttext.balance=4",
        *SMALL_FASTTEXT,
    )

    card = result["card"]
    assert card["kind"] == "fasttext_heads" and card["heads"] == ["toxicity", "gender_sexuality", "violence"]
    sizes = {head: card["data"][head]["n_train"] + card["data"][head]["n_validation"] for head in card["heads"]}
    assert sizes["toxicity"] == len(records)
    assert sizes["violence"] == len(records) - sum(r["violence"] is None for r in records) < len(records)
    assert all(card["metrics"][head]["roc_auc"] > 0.6 for head in card["heads"])  # beats chance
    scorer = yaml.safe_load(result["snippet"].split("\nor:")[0])["toxicity"]["scorers"][0]
    assert scorer["backend"] == "heads" and Path(scorer["model_path"]) == tmp_path / "model"
    table = pa.table({"id": ["a"], "text": ["I will kill all women."], "lang": ["en"]})
    scored = toxicity_run(table, ToxicityParams(scorers=(scorer,))).kept
    assert {"toxicity_score", "toxicity_gender_sexuality_score", "toxicity_violence_score"} <= set(scored.column_names)
