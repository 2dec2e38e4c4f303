import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pydantic import TypeAdapter, ValidationError

from tasks import models, quality, toxicity
from tasks.errors import ConfigError, ModelError
from tasks.models import (
    EmbeddingHeadSpec,
    FastTextSpec,
    HFSpec,
    ProfanitySpec,
    ScorerSpec,
)
from tasks.train import (
    EmbeddingHeadTrainParams,
    FastTextTrainParams,
    train_embedding_head,
    train_fasttext,
)

NEUTRAL = "We walked along the river and had a picnic in the park with the children."
TOXIC = "You are a worthless fucking idiot, shut up you stupid piece of shit."
# Lengths vary so length-sorted batching reorders them; each text's score must come back to its slot.
MIXED = ["ok", NEUTRAL * 3, TOXIC, "short text here", NEUTRAL, TOXIC + " " + NEUTRAL, "x y z"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "the", "you", "idiot", "river"]


def table_of(texts: list[str], chunks: int = 1) -> pa.Table:
    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.string())})
    size = max(1, -(-len(texts) // chunks))
    return pa.Table.from_batches(table.to_batches(max_chunksize=size), table.schema)


@pytest.fixture(scope="session")
def fasttext_model(tmp_path_factory, separable) -> str:
    texts, labels = separable(200)
    return str(
        train_fasttext(texts, labels, FastTextTrainParams(label="toxic", epoch=25), tmp_path_factory.mktemp("ft"))
    )


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory) -> str:
    """A real, randomly initialised 1-layer BERT classifier with a 35-entry vocabulary, saved locally."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    path = tmp_path_factory.mktemp("hf")
    (path / "vocab.txt").write_text("\n".join(VOCAB))
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "ok", 1: "toxic", 2: "obscene"},
        label2id={"ok": 0, "toxic": 1, "obscene": 2},
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def embedding_head(tmp_path_factory, separable) -> str:
    texts, labels = separable(60)
    return str(
        train_embedding_head(texts, labels, EmbeddingHeadTrainParams(label="toxic"), tmp_path_factory.mktemp("head"))
    )


def scores_one_by_one(spec, texts):
    scorer = models.load_scorer(spec)
    return np.concatenate([scorer.score([t]) for t in texts])


def test_specs_are_a_union_discriminated_on_backend():
    spec = TypeAdapter(ScorerSpec).validate_python(
        {"backend": "fasttext", "name": "dclm", "model_path": "m.bin", "label": "hq"}
    )

    assert isinstance(spec, FastTextSpec) and spec.column == "dclm_score"
    with pytest.raises(ValidationError):
        TypeAdapter(ScorerSpec).validate_python({"backend": "hf", "name": "Bad-Name", "model": "x"})


def test_scorers_load_once_per_process():
    assert models.load_scorer(ProfanitySpec(name="toxicity")) is models.load_scorer(ProfanitySpec(name="toxicity"))


def test_the_default_toxicity_stage_runs_without_importing_torch():
    """Regression: finding a device imported torch for every scorer, ~180 MiB in each worker. The
    default is the packaged multi-head model: numpy USE and its head in numpy."""
    script = (
        "import sys, pyarrow as pa\n"
        "from tasks import toxicity\n"
        "toxicity.run(pa.table({'id': ['a'], 'text': ['you stupid idiot']}), toxicity.ToxicityParams())\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[2])


def test_profanity_scores_toxic_above_neutral():
    scores = models.load_scorer(ProfanitySpec(name="toxicity")).score([NEUTRAL, TOXIC])

    assert scores.dtype == np.float32 and scores[1] > 0.9 > 0.2 > scores[0]


def test_fasttext_scores_the_configured_label(fasttext_model):
    spec = FastTextSpec(name="toxic", model_path=fasttext_model, label="toxic", batch_size=2)

    scores = models.load_scorer(spec).score(["you are a stupid idiot", "we visited the river\nnear the museum"])

    assert scores.dtype == np.float32 and 0.0 <= scores[1] < 0.5 < scores[0] <= 1.0


def test_fasttext_scores_of_both_labels_sum_to_one(fasttext_model):
    toxic = models.load_scorer(FastTextSpec(name="a", model_path=fasttext_model, label="toxic")).score(MIXED)
    calm = models.load_scorer(FastTextSpec(name="b", model_path=fasttext_model, label="not_toxic")).score(MIXED)

    assert np.allclose(toxic + calm, 1.0, atol=1e-3)


def test_fasttext_unknown_label_is_a_model_error(fasttext_model):
    with pytest.raises(ModelError, match="no label 'hq'"):
        models.load_scorer(FastTextSpec(name="q", model_path=fasttext_model, label="hq"))


@pytest.mark.parametrize("aggregation,label", [("softmax", "toxic"), ("sigmoid", "obscene"), ("regression", "0")])
def test_hf_scores_keep_input_order_under_length_sorting(tiny_hf_model, aggregation, label):
    spec = HFSpec(name="tox", model=tiny_hf_model, label=label, aggregation=aggregation, max_tokens=16, batch_size=3)

    batched = models.load_scorer(spec).score(MIXED)

    assert batched.dtype == np.float32 and np.isfinite(batched).all()
    assert np.allclose(batched, scores_one_by_one(spec, MIXED), atol=1e-5)
    if aggregation != "regression":
        assert ((batched >= 0) & (batched <= 1)).all()


def test_hf_truncates_texts_longer_than_the_model(tiny_hf_model):
    spec = HFSpec(name="tox", model=tiny_hf_model, label="toxic", max_tokens=4096)

    scores = models.load_scorer(spec).score(["the river " * 500])

    assert np.isfinite(scores).all()


def test_hf_three_labels_need_a_label(tiny_hf_model):
    with pytest.raises(ModelError, match="set label"):
        models.load_scorer(HFSpec(name="tox", model=tiny_hf_model))


def test_hf_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load"):
        models.load_scorer(HFSpec(name="tox", model=str(tmp_path / "nothing")))


def test_embedding_head_scores_keep_input_order(embedding_head):
    spec = EmbeddingHeadSpec(name="toxic", model_path=embedding_head, batch_size=2)

    batched = models.load_scorer(spec).score(MIXED)

    assert ((batched >= 0) & (batched <= 1)).all()
    assert np.allclose(batched, scores_one_by_one(spec, MIXED), atol=1e-4)


@pytest.mark.parametrize("chunks", [1, 3])
def test_quality_adds_one_typed_column_per_scorer_and_drops_nothing(fasttext_model, chunks):
    params = quality.QualityParams(
        scorers=(
            FastTextSpec(name="dclm", model_path=fasttext_model, label="toxic"),
            ProfanitySpec(name="profanity"),
        )
    )

    out = quality.run(table_of(MIXED, chunks), params)

    assert out.kept.num_rows == len(MIXED) and out.rejected.num_rows == 0
    assert out.kept.schema.field("dclm_score").type == pa.float32()
    assert out.kept.schema.field("profanity_score").type == pa.float32()
    assert out.rejected.schema.field("reason").type == pa.string()


def test_quality_without_scorers_passes_documents_through():
    table = table_of(MIXED)

    assert quality.run(table, quality.QualityParams()).kept.equals(table)


def test_empty_tables_get_typed_score_columns():
    out = toxicity.run(table_of([]), toxicity.ToxicityParams(span_level=True))

    assert out.kept.schema.field("toxicity_score").type == pa.float32()
    assert out.kept.schema.field("n_toxic_spans_cut").type == pa.int32()
    assert out.kept.num_rows == 0


def test_duplicate_scorer_names_are_rejected_at_load():
    with pytest.raises(ValidationError, match="unique"):
        toxicity.ToxicityParams(scorers=(ProfanitySpec(name="toxicity"), ProfanitySpec(name="toxicity")))


def test_a_scorer_may_not_rewrite_an_existing_column():
    table = table_of(["a"]).append_column("lang_score", pa.array([0.9], pa.float32()))

    with pytest.raises(ConfigError, match="already exists"):
        quality.run(table, quality.QualityParams(scorers=(ProfanitySpec(name="lang"),)))


@pytest.mark.parametrize("chunks", [1, 2])
def test_toxicity_default_scores_toxic_text_above_neutral(chunks):
    out = toxicity.run(table_of([NEUTRAL, TOXIC, NEUTRAL, TOXIC], chunks), toxicity.ToxicityParams())

    scores = out.kept.column("toxicity_score").to_pylist()
    assert scores[1] > scores[0] and scores[3] > scores[2] and out.rejected.num_rows == 0


def test_span_level_cuts_toxic_sentences_and_keeps_the_rest():
    text = f"{NEUTRAL} {TOXIC}\nThe museum opens at nine."

    out = toxicity.run(table_of([text, NEUTRAL]), toxicity.ToxicityParams(span_level=True))

    assert out.kept.column("text").to_pylist() == [f"{NEUTRAL} The museum opens at nine.", NEUTRAL]
    assert out.kept.column("n_toxic_spans_cut").to_pylist() == [1, 0]
    assert out.kept.column("toxicity_score")[0].as_py() < 0.5


def test_paragraph_spans_are_non_blank_lines():
    assert toxicity.span_bounds("one\n\n two\n", "paragraph") == [(0, 3), (5, 9)]


def test_sentence_spans_end_at_terminal_punctuation_before_a_space_not_inside_numbers_or_initials():
    """Regression: "3.2%" and "U.S." ended sentences, and a fragment like "Muslims made up 3." reads
    to a toxicity head like a statement about a group."""
    text = 'Muslims made up 3.2% of it. Other U.S. states agree!! J. Smith said "no." Then\n今天很好。明天呢？'

    spans = [text[start:end] for start, end in toxicity.span_bounds(text, "sentence")]

    assert spans == [
        "Muslims made up 3.2% of it.",
        "Other U.S. states agree!!",
        'J. Smith said "no."',
        "Then",
        "今天很好。",
        "明天呢？",
    ]
