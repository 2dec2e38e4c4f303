"""The `fasttext` module must be fasttext-wheel's, with training, and predict must work under numpy 2."""

import importlib.metadata
from pathlib import Path

import fasttext

from tasks import models


def test_fasttext_module_comes_from_fasttext_wheel():
    module_dir = Path(fasttext.__file__).resolve().parent
    owned = {
        (Path(f.locate()).resolve().parent)
        for f in importlib.metadata.files("fasttext-wheel")
        if f.name == "__init__.py"
    }

    assert module_dir in owned
    assert hasattr(fasttext, "train_supervised")


def test_no_other_distribution_provides_the_fasttext_module():
    providers = {
        dist.metadata["Name"]
        for dist in importlib.metadata.distributions()
        if any(str(f).startswith("fasttext/") for f in (dist.files or []))
    }

    assert providers == {"fasttext-wheel"}


def test_train_then_predict_a_supervised_model(tmp_path):
    lines = [f"__label__good the garden grows tall flowers {i}" for i in range(50)]
    lines += [f"__label__bad click here buy cheap pills now {i}" for i in range(50)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(str(tmp_path / "train.txt"), epoch=20, lr=0.5, verbose=0, seed=1, thread=1)
    model.save_model(str(tmp_path / "toy.bin"))

    labels, probs = models.fasttext_top_labels(
        models.load_fasttext(str(tmp_path / "toy.bin")),
        [
            "flowers grow in the garden",
            "buy cheap pills\nclick here",
        ],
    )

    assert labels == ["good", "bad"]
    assert all(p > 0.5 for p in probs)


def test_shipped_language_model_predicts_under_numpy2():
    labels, probs = models.fasttext_top_labels(
        models.load_fasttext(models.default_lid_path()), ["Guten Morgen, wie geht es dir heute?"]
    )

    assert labels == ["de"]
    assert probs[0] > 0.8
