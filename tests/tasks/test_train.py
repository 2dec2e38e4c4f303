import json

import numpy as np
import pyarrow as pa
import pytest

from tasks import models
from tasks.errors import InputError
from tasks.train import (
    EmbeddingHeadTrainParams,
    FastTextTrainParams,
    LabelParams,
    classifier_metrics,
    label_examples,
    split_indices,
    train_embedding_head,
    train_fasttext,
)


def test_metrics_of_a_perfect_ranking():
    metrics = classifier_metrics([False, False, True, True], [0.1, 0.2, 0.8, 0.9])

    assert (metrics["accuracy"], metrics["roc_auc"], metrics["pr_auc"]) == (1.0, 1.0, 1.0)
    assert metrics["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    assert sum(b["n"] for b in metrics["calibration"]) == 4


def test_metrics_with_one_class_leave_aucs_undefined():
    metrics = classifier_metrics([True, True], [0.3, 0.9])

    assert metrics["roc_auc"] is None and metrics["pr_auc"] is None
    assert metrics["accuracy"] == 0.5


def test_split_is_seeded_stratified_and_disjoint():
    y = np.array([True] * 30 + [False] * 70)

    train, val = split_indices(y, 0.2, seed=3)

    assert set(train).isdisjoint(val) and len(train) + len(val) == 100
    assert (y[val].sum(), (~y[val]).sum()) == (6, 14)
    assert np.array_equal(val, split_indices(y, 0.2, seed=3)[1])


def test_one_class_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="each class"):
        train_fasttext(["a", "b", "c"], [True, True, True], FastTextTrainParams(), tmp_path)


def test_fasttext_training_beats_chance_and_writes_a_card(tmp_path, separable):
    texts, labels = separable(200)

    path = train_fasttext(texts, labels, FastTextTrainParams(label="toxic", epoch=25, bucket=20_000), tmp_path)

    card = json.loads((tmp_path / "model_card.json").read_text())
    assert path == tmp_path / "model.bin" and path.is_file()
    assert card["data"]["n_validation"] == 40 and card["data"]["n_train"] == 160
    assert card["metrics"]["roc_auc"] > 0.9
    assert models.FastTextSpec.model_validate(card["scorer"]).label == "toxic"


def unspaced_documents(n: int) -> tuple[list[str], list[bool]]:
    """Chinese-like documents without spaces: positives hold characters of one pool, negatives of
    another; every document is a distinct string."""
    rng = np.random.default_rng(0)
    pools = {True: "番茄香草春天花园种子土壤", False: "火车车站旅客时间铁路票价"}
    labels = [bool(i % 2) for i in range(n)]
    common = "的是在了和有这个"
    return ["".join(rng.choice(list(pools[y] + common), 40)) + "。" for y in labels], labels


@pytest.mark.parametrize(("tokens", "learns"), [("script", True), ("whitespace", False)])
def test_fasttext_learns_unspaced_scripts_only_with_script_tokens(tmp_path, tokens, learns):
    texts, labels = unspaced_documents(300)
    params = FastTextTrainParams(label="topic", epoch=25, bucket=20_000, tokens=tokens)

    train_fasttext(texts[:200], labels[:200], params, tmp_path)

    card = json.loads((tmp_path / "model_card.json").read_text())
    scorer = models.load_scorer(models.FastTextSpec.model_validate(card["scorer"]))
    assert card["scorer"]["tokens"] == tokens
    assert (card["metrics"]["roc_auc"] > 0.95) is learns
    assert (classifier_metrics(labels[200:], scorer.score(texts[200:]))["roc_auc"] > 0.95) is learns


def test_embedding_head_training_beats_chance_and_loads_as_a_scorer(tmp_path, separable):
    texts, labels = separable(60)

    out = train_embedding_head(
        texts, labels, EmbeddingHeadTrainParams(label="toxic", head="mlp", hidden_dim=16), tmp_path
    )

    card = json.loads((out / "model_card.json").read_text())
    assert card["metrics"]["roc_auc"] > 0.9 and card["head"]["input_dim"] == 384
    scores = models.load_scorer(models.EmbeddingHeadSpec.model_validate(card["scorer"])).score(
        ["you are a stupid idiot", "the river museum"]
    )
    assert scores[0] > scores[1]


def docs_with_meta(*metas):
    return pa.table(
        {
            "id": [str(i) for i in range(len(metas))],
            "text": ["t"] * len(metas),
            "meta": [None if m is None else json.dumps(m) for m in metas],
        }
    )


def test_labels_match_positive_values_by_type():
    docs = docs_with_meta({"label": True}, {"label": 1}, {"label": "1"}, {"label": False})

    kept, rejected = label_examples(docs, LabelParams(positive=(True,)))

    assert kept.column("label").to_pylist() == [True, False, False, False] and rejected.num_rows == 0


def test_records_without_a_usable_label_are_rejected_with_a_reason():
    docs = docs_with_meta(
        {"label": "hate"}, None, {"label": None}, {"label": 0.5}, {"label": ["a"]}, {"label": "idk"}, {"label": "ok"}
    )

    kept, rejected = label_examples(docs, LabelParams(positive=("hate",), negative=("ok",)))

    assert kept.column("label").to_pylist() == [True, False]
    assert rejected.column("reason").to_pylist() == [
        "train:missing_label",
        "train:missing_label",
        "train:label_type",
        "train:label_type",
        "train:unlisted_label",
    ]
