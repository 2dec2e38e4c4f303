"""Span cutting per Celadon axis, on real text with planted cases the model never saw.

    .venv/bin/python bench/toxicity_spans.py [--docs 990] [--threshold 0.4]

A multi-head model is trained with the packaged recipe (`tasks/models/packaged/toxicity-use/train.yaml`)
on every dev record except HateCheck, through `train_heads`, the function `winnow train` calls. Into
each real news article (`../shared/data/web_raw/news_en_dev.jsonl`: Reuters, Wikinews, GUM, Wikipedia)
go two HateCheck cases at random sentence boundaries: a hateful one and a non-hateful one
(counter-speech, negation, neutral or positive mentions of a group, non-hateful profanity). Then
`tasks.toxicity.cut_toxic_spans` runs once per choice of `toxicity.span_heads`: the main head and
each axis. Per choice it prints:
- the share of hateful plants on that axis that are cut (recall; threats for `violence`),
- the share of hateful plants on other axes that are cut (what the axis does not isolate),
- the share of non-hateful plants cut,
- the share of the articles' own sentences cut, and of articles that lose at least one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.toxicity import PACKAGED, load  # noqa: E402
from tasks import models  # noqa: E402
from tasks.text import span_bounds  # noqa: E402
from tasks.toxicity import ToxicityParams, cut_toxic_spans  # noqa: E402
from tasks.toxicity.axes import AXES, HEADS, OVERALL  # noqa: E402
from tasks.train import EmbeddingHeadTrainParams, train_heads  # noqa: E402

NEWS = ROOT.parent / "shared" / "data" / "web_raw" / "news_en_dev.jsonl"


def model_without_hatecheck(out: Path) -> Path:
    rows = [r for r in load() if r["family"] != "hatecheck"]
    recipe = yaml.safe_load((PACKAGED / "train.yaml").read_text())
    params = EmbeddingHeadTrainParams(**recipe["embedding_head"])
    languages = recipe.get("languages", ())
    return train_heads(
        [r["text"] for r in rows], {h: [r[h] for r in rows] for h in HEADS}, params, out, None, languages
    )


def plant(text: str, case: str, rng: random.Random) -> str:
    """`text` with `case` inserted on its own line at a random sentence boundary, so it is its own span."""
    bounds = span_bounds(text, "sentence")
    at = rng.choice([0] + [end for _, end in bounds])
    return f"{text[:at].rstrip()}\n{case}\n{text[at:].lstrip()}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=990)
    parser.add_argument("--threshold", type=float, default=ToxicityParams().span_threshold)
    args = parser.parse_args()
    rng = random.Random(0)
    articles = [json.loads(line)["text"] for line in NEWS.read_text(encoding="utf-8").splitlines()][: args.docs]
    cases = [r for r in load() if r["family"] == "hatecheck"]
    hateful = [r for r in cases if r[OVERALL]]
    benign = [r for r in cases if not r[OVERALL]]
    plants = [(rng.choice(hateful), rng.choice(benign)) for _ in articles]
    docs = [plant(plant(a, h["text"], rng), b["text"], rng) for a, (h, b) in zip(articles, plants)]
    own_sentences = [[a[start:end] for start, end in span_bounds(a, "sentence")] for a in articles]
    n_own = sum(map(len, own_sentences))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model = model_without_hatecheck(Path(tmp) / "model")
        print(
            f"trained without HateCheck in {time.perf_counter() - started:.0f} s; {len(docs)} articles, "
            f"{n_own:,} of their own sentences, span_threshold {args.threshold}\n"
        )
        spec = models.HeadsSpec(name="toxicity", model_path=str(model))
        columns = ["span_heads", "on-axis hateful cut", "other hateful cut", "non-hateful cut"]
        columns += ["article sentences cut", "articles losing one"]
        print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
        for head in (OVERALL, *AXES):
            params = ToxicityParams(
                scorers=(spec,), span_level=True, span_threshold=args.threshold, span_heads=(head,)
            )
            texts, _ = cut_toxic_spans(docs, params, ["en"] * len(docs))
            on = [not_in(h["text"], t) for (h, _), t in zip(plants, texts) if h[head]]
            off = [not_in(h["text"], t) for (h, _), t in zip(plants, texts) if h[head] is False]
            benign_cut = [not_in(b["text"], t) for (_, b), t in zip(plants, texts)]
            own = [sum(not_in(sentence, t) for sentence in doc) for doc, t in zip(own_sentences, texts)]
            print(
                f"| {head} | {share(on)} | {share(off)} | {share(benign_cut)} | "
                f"{sum(own) / n_own:.2%} ({sum(own)}) | {share([o > 0 for o in own])} |",
                flush=True,
            )


def not_in(case: str, text: str) -> int:
    return int(case not in text)


def share(flags: list) -> str:
    return f"{sum(flags) / len(flags):.1%} of {len(flags)}" if flags else "-"


if __name__ == "__main__":
    main()
