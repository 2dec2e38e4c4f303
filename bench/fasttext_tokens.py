"""fastText on scripts written without spaces: the demo's quality classifier trained with whitespace
tokens and with script tokens (`fasttext.tokens`), scored on the demo corpus, per language.

    .venv/bin/python bench/fasttext_tokens.py

The demo's own examples (`flows/cli/demo.py` `write_training_pages`, `flows/cli/demo_run.py` DEMO_FASTTEXT):
300 reference pages against 300 raw pages; the corpus (600 documents and the malformed records the
reader quarantines) is read by the `read` stage and scored by the `quality` scorer. Prints per
language the score range and median, and the validation ROC-AUC of each model.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tasks.read  # noqa: E402
from flows.cli.demo import write_demo_corpus, write_training_pages  # noqa: E402
from flows.cli.demo_run import DEMO_FASTTEXT  # noqa: E402
from tasks import models  # noqa: E402
from tasks.read import ReadParams  # noqa: E402
from tasks.train import train_fasttext  # noqa: E402


def read_texts(paths: list[Path]) -> tuple[list[str], list[str]]:
    """Texts and their language (from the demo's urls: https://<topic>.example.com/<lang>/...)."""
    texts, langs = [], []
    for path in paths:
        docs, _ = tasks.read.run(str(path), path.name, ReadParams())
        texts += docs.column("text").to_pylist()
        langs += [url.split("/")[3] or "copy" for url in docs.column("url").to_pylist()]
    return texts, langs


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reference, raw = write_training_pages(root / "training")
        examples, _ = read_texts([reference, raw])
        labels = [True] * (len(examples) // 2) + [False] * (len(examples) // 2)
        corpus, langs = read_texts(write_demo_corpus(root / "input"))
        for tokens in ("whitespace", "script"):
            out = root / tokens
            train_fasttext(examples, labels, DEMO_FASTTEXT.model_copy(update={"tokens": tokens}), out)
            card = json.loads((out / models.MODEL_CARD).read_text())
            scores = models.load_scorer(models.FastTextSpec.model_validate(card["scorer"])).score(corpus)
            by_lang = defaultdict(list)
            for lang, score in zip(langs, scores.tolist()):
                by_lang[lang].append(score)
            print(f"tokens={tokens}: validation ROC-AUC {card['metrics']['roc_auc']:.3f}")
            for lang, values in sorted(by_lang.items(), key=lambda kv: -len(kv[1])):
                v = np.array(values)
                print(f"  {lang:5} n={len(v):3}  min {v.min():.3f}  median {np.median(v):.3f}  max {v.max():.3f}")


if __name__ == "__main__":
    main()
