"""Multi-head toxicity: axis labels from HateCheck-style records, multi-head training on both paths,
the `heads` scorer (span maximum, languages), span cutting on an axis, and the packaged model."""

import json

import numpy as np
import pyarrow as pa
import pytest

from tasks import models, toxicity
from tasks.errors import ConfigError, InputError
from tasks.toxicity.axes import AXES, HEADS, record_labels
from tasks.train import EmbeddingHeadTrainParams, FastTextTrainParams, LabelParams, label_heads, train_heads

CALM = ["what a lovely morning in the garden", "we met friends at the cafe", "the train was on time today"]
RUDE = ["you are a stupid worthless idiot", "shut up you pathetic moron", "nobody wants you here loser"]
THREAT = ["i will find you and hurt you", "someone should kill them all", "we will burn your house down"]
SMALL_FASTTEXT = FastTextTrainParams(label="toxicity", epoch=25, bucket=20_000, minn=3, maxn=5, balance=4)


def labelled(n: int) -> tuple[list[str], dict[str, list]]:
    """Calm, rude and threatening sentences: toxic = rude or threat; violence known for two in three."""
    rng = np.random.default_rng(0)
    texts, labels = [], {"toxicity": [], "violence": []}
    for i in range(n):
        kind = ("calm", "rude", "threat")[i % 3]
        pool = {"calm": CALM, "rude": RUDE, "threat": THREAT}[kind]
        texts.append(f"{pool[rng.integers(len(pool))]} {rng.integers(1000)}")
        labels["toxicity"].append(kind != "calm")
        labels["violence"].append((kind == "threat") if i % 4 else None)
    return texts, labels


def test_axes_come_from_the_target_group_and_threats_and_are_unknown_without_them():
    assert record_labels(False) == dict.fromkeys(HEADS, False)
    women = record_labels(True, "women", "derog_neg_emote_h")
    assert women == {"toxicity": True, **dict.fromkeys(AXES, False), "gender_sexuality": True}
    assert record_labels(True, "Muslims", "threat_dir_h")["religion"] is True
    assert record_labels(True, "Muslims", "threat_dir_h")["violence"] is True
    tweet = record_labels(True)  # a toxic record that names no target: its axes are unknown, not negative
    assert tweet == {"toxicity": True, **dict.fromkeys(AXES, None)}
    unlisted = record_labels(True, "pirates", "derog_dehum_h")
    assert [unlisted[a] for a in AXES] == [None, None, None, None, False]


def test_head_labels_are_read_per_field_and_a_record_with_none_is_rejected():
    docs = pa.table(
        {
            "id": ["a", "b", "c"],
            "text": ["x", "y", "z"],
            "meta": [json.dumps({"tox": True, "vio": None}), json.dumps({"tox": False, "vio": False}), "{}"],
        }
    )
    heads = {"toxicity": LabelParams(field="tox"), "violence": LabelParams(field="vio")}

    kept, rejected = label_heads(docs, heads)

    assert kept.column("toxicity").to_pylist() == [True, False]
    assert kept.column("violence").to_pylist() == [None, False]
    assert rejected.column("reason").to_pylist() == ["train:missing_label"]


@pytest.mark.parametrize(
    "params",
    [
        SMALL_FASTTEXT,
        EmbeddingHeadTrainParams(
            label="toxicity", encoder=models.PACKAGED_USE, head="mlp", epochs=30, minibatch=32, lr=1e-3, max_tokens=64
        ),
    ],
    ids=["fasttext", "use"],
)
def test_both_paths_learn_every_head_on_its_known_labels_and_score_by_the_worst_span(tmp_path, params):
    texts, labels = labelled(240)

    train_heads(texts, labels, params, tmp_path, languages=["en", "de"])

    card = json.loads((tmp_path / models.MODEL_CARD).read_text())
    assert card["heads"] == ["toxicity", "violence"] and card["languages"] == ["de", "en"]
    known = sum(v is not None for v in labels["violence"])
    assert card["data"]["violence"]["n_train"] + card["data"]["violence"]["n_validation"] == known
    assert all(card["metrics"][head]["roc_auc"] > 0.9 for head in card["heads"])
    scorer = models.load_scorer(models.HeadsSpec(name="toxicity", model_path=str(tmp_path)))
    assert scorer.columns == ["toxicity_score", "toxicity_violence_score"]
    page = "The weather was fine.\nWe had lunch by the lake. I will find you and hurt you."
    scores = scorer.score([CALM[0], page, page], ["en", "en", "fr"])
    spans = scorer.score_spans(models.text_spans(page, "sentence", 64))
    assert scores[1] == pytest.approx(spans.max(axis=0)) and (scores[1] > scores[0]).all()
    assert np.isnan(scores[2]).all()  # French is not among the model's languages: unscored


def test_the_stage_writes_a_column_per_head_and_cuts_spans_on_the_chosen_axis(tmp_path):
    texts, labels = labelled(240)
    train_heads(texts, labels, SMALL_FASTTEXT, tmp_path)
    spec = models.HeadsSpec(name="toxicity", model_path=str(tmp_path))
    table = pa.table(
        {"id": ["1"], "text": ["We had lunch by the lake.\nI will find you and hurt you."], "lang": ["en"]}
    )
    params = toxicity.ToxicityParams(scorers=(spec,), span_level=True, span_heads=("violence",), span_threshold=0.5)

    kept = toxicity.run(table, params).kept

    assert kept.column("text").to_pylist() == ["We had lunch by the lake.\n"]
    assert kept.column("n_toxic_spans_cut").to_pylist() == [1]
    assert {"toxicity_score", "toxicity_violence_score"} <= set(kept.column_names)
    with pytest.raises(ConfigError, match="not heads"):
        toxicity.run(table, params.model_copy(update={"span_heads": ("religion",)}))


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_a_saved_head_scores_the_same_in_numpy_as_in_torch_and_old_torch_files_still_load(tmp_path, kind):
    import torch

    torch.manual_seed(0)
    head = models.build_head(kind, 16, 8, 3)
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    with torch.inference_mode():
        expected = head(torch.from_numpy(x)).numpy()

    models.save_head(head, tmp_path)
    arrays = models.head_arrays(tmp_path)
    (tmp_path / "legacy").mkdir()
    torch.save(head.state_dict(), tmp_path / "legacy" / models.LEGACY_HEAD_WEIGHTS)

    assert models.head_logits(kind, arrays, x) == pytest.approx(expected, abs=1e-5)
    with torch.inference_mode():
        assert models.load_head(kind, 16, 8, arrays, 3)(torch.from_numpy(x)).numpy() == pytest.approx(expected)
    legacy = models.head_arrays(tmp_path / "legacy")
    assert legacy.keys() == arrays.keys() and all(np.array_equal(legacy[k], arrays[k]) for k in arrays)


def test_a_head_with_one_class_is_an_input_error(tmp_path):
    texts, labels = labelled(30)
    labels["violence"] = [None] * 29 + [True]

    with pytest.raises(InputError, match="head 'violence'"):
        train_heads(texts, labels, SMALL_FASTTEXT, tmp_path)


def test_the_packaged_model_ranks_hate_above_its_negation_in_languages_it_never_saw():
    """The shipped heads on USE: trained on en/de/es/fr/it/pt, asked in Dutch and Polish."""
    scorer = models.load_scorer(models.HeadsSpec(name="toxicity", model_path="winnow:toxicity-use"))
    hateful = ["Ik haat moslims, ze zijn walgelijk.", "Nienawidzę kobiet, są obrzydliwe."]
    neutral = ["Ik heb vandaag brood gekocht bij de bakker.", "Dzisiaj kupiłam chleb w piekarni."]

    scores = scorer.score(hateful + neutral, ["nl", "pl", "nl", "pl"])

    assert scorer.columns[0] == "toxicity_score" and len(scorer.columns) == 1 + len(AXES)
    assert scores[:2, 0].min() > scores[2:, 0].max()
    assert scores[0, 1 + AXES.index("religion")] > scores[0, 1 + AXES.index("ability")]
    assert scores[1, 1 + AXES.index("gender_sexuality")] > scores[1, 1 + AXES.index("race_origin")]


def test_a_repeated_span_is_encoded_once_and_scores_as_if_scored_alone(monkeypatch):
    """Pages repeat menus and share lines: the encoder sees each distinct span once, and every copy
    gets the score that span gets on its own."""
    scorer = models.load_scorer(models.HeadsSpec(name="toxicity", model_path="winnow:toxicity-use"))
    distinct = ["Share this article", "I will find you and hurt you.", "Home", "We had lunch by the lake."]
    spans = [distinct[i] for i in (0, 1, 2, 0, 3, 2, 0)]
    alone = np.concatenate([scorer.score_spans([span]) for span in distinct])
    encoded: list[str] = []
    encode = scorer._encoder.encode
    monkeypatch.setattr(scorer._encoder, "encode", lambda texts: encoded.extend(texts) or encode(texts))

    scores = scorer.score_spans(spans)

    assert sorted(encoded) == sorted(distinct)
    np.testing.assert_allclose(scores, alone[[0, 1, 2, 0, 3, 2, 0]], atol=1e-6)
