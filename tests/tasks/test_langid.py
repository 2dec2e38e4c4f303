import pyarrow as pa
import pytest

from tasks.errors import ModelError
from tasks.langid import LangidParams, run

SENTENCES = {
    "en": "The weather was warm and the children played in the garden until the evening.",
    "de": "Das Wetter war warm und die Kinder spielten bis zum Abend im Garten.",
    "fr": "Il faisait chaud et les enfants ont joué dans le jardin jusqu'au soir.",
}


def table_of(texts: list[str]) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})


def test_top_label_and_score_are_stored_for_every_document():
    out = run(table_of(list(SENTENCES.values())), LangidParams())

    assert out.kept.column("lang").to_pylist() == ["en", "de", "fr"]
    assert all(0.5 <= s <= 1.0 for s in out.kept.column("lang_score").to_pylist())
    assert out.kept.schema.field("lang_score").type == pa.float32()


def test_languages_outside_the_allow_list_are_rejected():
    out = run(table_of(list(SENTENCES.values())), LangidParams(languages=("en", "fr")))

    assert out.rejected.column("reason").to_pylist() == ["langid:lang"]
    assert out.rejected.column("lang").to_pylist() == ["de"]


def test_low_scores_are_rejected_with_the_score_kept():
    out = run(table_of(["zzz qqq 123", SENTENCES["en"]]), LangidParams(min_score=0.9))

    assert out.rejected.column("reason").to_pylist() == ["langid:lang_score"]
    assert out.rejected.column("lang_score")[0].as_py() < 0.9


def test_multiline_documents_are_classified_as_one():
    text = "\n".join([SENTENCES["de"]] * 3)

    out = run(table_of([text]), LangidParams())

    assert out.kept.column("lang").to_pylist() == ["de"]


def test_missing_model_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such fastText model"):
        run(table_of(["x"]), LangidParams(model_path=str(tmp_path / "lid.bin")))


def test_sentence_accuracy_on_lingua_test_data(shared_data):
    import json

    from tasks import models

    known = {label.removeprefix("__label__") for label in models.load_fasttext(models.default_lid_path()).get_labels()}
    records = [
        json.loads(line) for line in (shared_data / "langid" / "lingua_langid_eval.jsonl").read_text().splitlines()
    ]
    sentences = [r for r in records if r["kind"] == "sentence" and r["lang"] in known]

    out = run(table_of([r["text"] for r in sentences]), LangidParams(min_score=0.0))

    correct = sum(label == r["lang"] for label, r in zip(out.kept.column("lang").to_pylist(), sentences))
    assert correct / len(sentences) > 0.85
