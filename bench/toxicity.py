"""Toxicity heads on data they were not trained on: leave one dataset family out, leave one Multilingual
HateCheck language out, per axis, per HateCheck functionality; the embedding path (multilingual USE +
a trained head per axis), the fastText path (a fastText model per head) and alt-profanity-check.

    .venv/bin/python bench/toxicity.py [--paths use,fasttext,profanity] [--build] [--out FILE]
    .venv/bin/python bench/toxicity.py --cost 2000   # docs/s on one thread, bench corpus documents
    .venv/bin/python bench/toxicity.py --winnow-run 50000   # the toxicity stage in `winnow run`, per path

Data (../shared/data/toxicity/): four families, Davidson (tweets; toxic = hate or offensive),
Stormfront (forum sentences; toxic = hate), HateCheck (English functional tests) and MHC (its German,
Spanish, French, Italian and Portuguese cases). Each record's axis labels come from
`tasks/toxicity/axes.py` (HateCheck's target group and threat functionalities; unknown for a toxic
record without them). Each fold trains with the packaged model's recipe
(`tasks/models/packaged/toxicity-use/train.yaml`; the fastText path: `FASTTEXT` below) through the
same functions `winnow train` uses, on everything but the held-out part:
- family: ROC-AUC of the main head on the left-out family;
- language: ROC-AUC on one MHC language, trained on everything else (HateCheck included);
- axes: ROC-AUC per head, pooled over the six languages' held-out predictions (English: HateCheck
  left out), on the records that have a label for that head;
- functionalities: accuracy at 0.5 per HateCheck functionality with HateCheck left out.
USE embeddings are cached in /tmp/winnow-toxicity-bench. `--cost N` times each scorer on the first N
documents of the bench corpus (`bench/corpus.py`) in this process, on one thread (torch and BLAS):
docs/s/core, model loading excluded. `--winnow-run N` runs `winnow run` on an N-document bench corpus
once per scorer, sharing one store (the stages before `toxicity` are computed once), and prints the
toxicity stage's seconds from each run summary as docs/s/core over the run's workers. `--build`
trains the packaged model on all of it through `winnow train` and writes these figures beside it
(`evaluation.json`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks import models  # noqa: E402
from tasks.toxicity.axes import HEADS, record_labels  # noqa: E402
from tasks.train import (  # noqa: E402
    EmbeddingHeadTrainParams,
    FastTextTrainParams,
    classifier_metrics,
    fit_embedding_heads,
    train_heads,
)

DATA = ROOT.parent / "shared" / "data" / "toxicity"
WEB = ROOT.parent / "shared" / "data" / "web_raw"
# Ordinary web text as negatives on every head: crawled pages with their boilerplate (trafilatura's and
# htmldate's evaluation pages, mostly German and English), their sentences as the scorer cuts them,
# deduplicated, a seeded sample. Without them the heads see only tweets, forum posts and test cases,
# and a clean news article's most heated sentence scores as hate. Never a held-out family.
BACKGROUND = WEB / "html_pages_wetlike.jsonl"
BACKGROUND_SENTENCES = 30_000
# Clean pages the model never saw, for the share of documents it flags: news articles (English) and
# OSCAR/C4/CC samples (the model's languages among their 166).
CLEAN_PAGES = {"news": WEB / "news_en_dev.jsonl", "crawl samples": WEB / "cc_text_docs.jsonl"}
PACKAGED = ROOT / "tasks" / "models" / "packaged" / "toxicity-use"
CACHE = Path("/tmp/winnow-toxicity-bench")
FAMILIES = {
    "davidson": ["davidson_hate_offensive"],
    "stormfront": ["stormfront_hate_speech"],
    "hatecheck": ["hatecheck_en"],
    "mhc": [f"mhc_{lang}" for lang in ("de", "es", "fr", "it", "pt")],
}
MHC_LANGUAGES = ("de", "es", "fr", "it", "pt")
# The fastText path: word bigrams and 3-5 character n-grams, 200k buckets at dim 32, positives
# repeated up to 4 times toward balance.
FASTTEXT = FastTextTrainParams(
    label="toxicity", dim=32, epoch=5, lr=0.5, word_ngrams=2, minn=3, maxn=5, bucket=200_000, balance=4, threads=2
)


def load() -> list[dict]:
    """Every dev record with a toxicity label, as a labelled example: text, family, lang, functionality, heads."""
    rows = []
    for family, files in FAMILIES.items():
        for name in files:
            for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("toxic") is None:
                    continue
                labels = record_labels(record["toxic"], record.get("target_ident"), record.get("functionality"))
                rows.append(
                    {
                        "id": record["id"],
                        "text": record["text"],
                        "family": family,
                        "lang": record.get("lang", "en"),
                        "functionality": record.get("functionality"),
                        **labels,
                    }
                )
    return rows + background()


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file, line by line: not `splitlines()`, which also splits at the U+2028 and
    friends that web text holds."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def background() -> list[dict]:
    """`BACKGROUND_SENTENCES` sentences of `BACKGROUND`, negative on every head (family `web`)."""
    pages = [page["text"] for page in read_jsonl(BACKGROUND)]
    sentences = sorted({s for page in pages for s in models.text_spans(page, "sentence", 64) if len(s.split()) >= 3})
    sample = random.Random(0).sample(sentences, min(BACKGROUND_SENTENCES, len(sentences)))
    negative = record_labels(False)
    return [
        {"id": f"web-{i}", "text": text, "family": "web", "lang": None, "functionality": None, **negative}
        for i, text in enumerate(sample)
    ]


def label_matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[np.nan if r[h] is None else float(r[h]) for h in HEADS] for r in rows])


def use_embeddings(texts: list[str], params: EmbeddingHeadTrainParams) -> np.ndarray:
    key = hashlib.sha256(json.dumps([params.encoder, params.max_tokens, texts]).encode()).hexdigest()[:16]
    path = CACHE / f"use-{key}.npy"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        encoder = models.load_encoder(params.encoder, "cpu")
        emb = models.encode(encoder, texts, params.max_tokens, params.batch_size).numpy()
        np.save(path, emb)
    return np.load(path)


def embedding_path(rows: list[dict], params: EmbeddingHeadTrainParams):
    """fit(train indices) -> predict(test indices or texts) -> (n, heads) scores, on cached USE embeddings."""
    import torch

    emb = torch.from_numpy(use_embeddings([r["text"] for r in rows], params))
    y = label_matrix(rows)

    def fit(train):
        head = fit_embedding_heads(emb[train], y[train], params)

        def predict(test):
            x = torch.from_numpy(use_embeddings(test, params)) if isinstance(test, list) else emb[test]
            with torch.inference_mode():
                return head(x).sigmoid().numpy()

        return predict

    return fit


def fasttext_path(rows: list[dict], params: FastTextTrainParams):
    texts = [r["text"] for r in rows]

    def fit(train):
        out = tempfile.mkdtemp(prefix="winnow-toxicity-ft-")
        labels = {h: [rows[i][h] for i in train] for h in HEADS}
        train_heads([texts[i] for i in train], labels, params, out)
        scorer = models.HeadsScorer(models.HeadsSpec(name="toxicity", model_path=out), "cpu")
        return lambda test: scorer.score_spans(test if isinstance(test, list) else [texts[i] for i in test])

    return fit


def profanity_path(rows: list[dict]):
    """alt-profanity-check needs no training: its overall score, no axes (NaN)."""
    scorer = models.load_scorer(models.ProfanitySpec(name="toxicity"))
    scores = scorer.score([r["text"] for r in rows])

    def fit(train):
        def predict(test):
            out = np.full((len(test), len(HEADS)), np.nan)
            out[:, 0] = scorer.score(test) if isinstance(test, list) else scores[test]
            return out

        return predict

    return fit


def clean_pages(predict, languages: frozenset[str]) -> dict[str, dict]:
    """Share of clean pages (`CLEAN_PAGES`, in `languages`) whose highest sentence reaches 0.5 and 0.9,
    on the main head and on any axis, as the scorer computes a document's scores."""
    result = {}
    for name, path in CLEAN_PAGES.items():
        docs = read_jsonl(path)
        spans = [models.text_spans(d["text"], "sentence", 64) for d in docs if d.get("lang", "en") in languages]
        scores = predict([span for doc in spans for span in doc])
        top = np.maximum.reduceat(scores, np.cumsum([0] + [len(doc) for doc in spans[:-1]]), axis=0)
        result[name] = {"documents": len(spans)}
        for threshold in (0.5, 0.9):
            result[name][f"toxicity >= {threshold}"] = float((top[:, 0] >= threshold).mean())
            axes = top[:, 1:]
            if not np.isnan(axes).all():
                result[name][f"any axis >= {threshold}"] = float((axes >= threshold).any(axis=1).mean())
    return result


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    known = ~np.isnan(y) & ~np.isnan(p)
    return classifier_metrics(y[known] == 1, p[known])["roc_auc"] if known.any() else None


def evaluate(rows: list[dict], fit) -> dict:
    y = label_matrix(rows)
    family = np.array([r["family"] for r in rows])
    lang = np.array([r["lang"] for r in rows])
    functionality = np.array([str(r["functionality"]) for r in rows])
    everything = np.arange(len(rows))
    result: dict = {"family": {}, "language": {}, "axes": {}, "functionalities": {}}
    for name in FAMILIES:
        test = everything[family == name]
        scores = fit(everything[family != name])(test)
        result["family"][name] = auc(y[test, 0], scores[:, 0])
        if name == "hatecheck":
            hatecheck = (test, scores)
    pooled = []
    for language in MHC_LANGUAGES:
        test = everything[(family == "mhc") & (lang == language)]
        scores = fit(everything[~((family == "mhc") & (lang == language))])(test)
        result["language"][language] = auc(y[test, 0], scores[:, 0])
        pooled.append((test, scores))
    pooled.append(hatecheck)
    test = np.concatenate([t for t, _ in pooled])
    scores = np.concatenate([s for _, s in pooled])
    result["axes"] = {head: auc(y[test, j], scores[:, j]) for j, head in enumerate(HEADS)}
    test, scores = hatecheck
    for name in sorted(set(functionality[test])):
        part = functionality[test] == name
        result["functionalities"][name] = float(((scores[part, 0] >= 0.5) == (y[test][part, 0] == 1)).mean())
    recipe = yaml.safe_load((PACKAGED / "train.yaml").read_text())
    result["clean pages"] = clean_pages(fit(everything), frozenset(recipe["languages"]))
    return result


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(results: dict[str, dict]) -> str:
    paths = list(results)
    lines = ["| held out | " + " | ".join(paths) + " |", "|---" * (len(paths) + 1) + "|"]
    for section, label in (("family", "family"), ("language", "MHC language"), ("axes", "axis (pooled)")):
        for key in next(iter(results.values()))[section]:
            lines.append(f"| {label} {key} | " + " | ".join(fmt(results[p][section].get(key)) for p in paths) + " |")
    for source in next(iter(results.values()))["clean pages"]:
        for key in next(iter(results.values()))["clean pages"][source]:
            if key != "documents":
                cells = [results[p]["clean pages"][source].get(key) for p in paths]
                lines.append(
                    f"| clean {source} ({results[paths[0]]['clean pages'][source]['documents']}): share with {key} | "
                    + " | ".join("-" if c is None else f"{c:.1%}" for c in cells)
                    + " |"
                )
    for path in paths:
        worst = sorted(results[path]["functionalities"].items(), key=lambda kv: kv[1])
        below = [name for name, acc in worst if acc < 0.6]
        lines.append(
            f"\n{path}: {len(below)} HateCheck functionalities below 0.6 accuracy at 0.5; worst three: "
            + ", ".join(f"{name} {acc:.3f}" for name, acc in worst[:3])
        )
    return "\n".join(lines)


def build(rows: list[dict]) -> None:
    """Train the packaged model on every dev record through `winnow train` (the train-classifier flow)."""
    with tempfile.TemporaryDirectory() as tmp:
        labelled = Path(tmp) / "toxicity-labelled.jsonl"
        labelled.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        winnow = Path(sys.executable).with_name("winnow")
        command = [str(winnow), "train", "--config", str(PACKAGED / "train.yaml")]
        command += ["--set", f"labeled=[{labelled}]", "--set", f"output={PACKAGED}"]
        subprocess.run(command, check=True)
    # The card as shipped: the scorer is `winnow:<name>`, the inputs the dev files, not this machine's paths.
    card = models.read_model_card(PACKAGED)
    card["scorer"]["model_path"] = f"{models.PACKAGED_PREFIX}{PACKAGED.name}"
    labeled = [f"{DATA.parent.name}/{DATA.name}/{n}.jsonl" for f in FAMILIES.values() for n in f]
    labeled.append(f"{DATA.parent.name}/{WEB.name}/{BACKGROUND.name} ({BACKGROUND_SENTENCES:,} sentences, negative)")
    card["inputs"]["files"] = {"labeled": labeled}
    (PACKAGED / models.MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True))


def cost(n_docs: int) -> dict[str, float]:
    """Docs/s on one thread of each toxicity scorer over the first `n_docs` bench-corpus documents."""
    import torch

    from bench.corpus import build_corpus

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_corpus(n_docs, Path(tmp), n_shards=1)
        texts = [record["text"] for record in read_jsonl(paths[0])]
    rates = {}
    for name, spec in scorer_specs(fasttext_heads_model()).items():
        scorer = models.load_scorer(spec, "cpu")
        scorer.score(texts[:8])  # warm: first-call allocations
        started = time.perf_counter()
        scorer.score(texts)
        rates[name] = round(len(texts) / (time.perf_counter() - started), 1)
        print(f"{name}: {rates[name]} docs/s/core", flush=True)
    spans = sum(len(models.text_spans(t, "sentence", 64)) for t in texts)
    print(f"{len(texts):,} documents, {spans / len(texts):.1f} sentence spans each")
    return rates


def scorer_specs(fasttext_dir: str) -> dict[str, models.ScorerSpec]:
    return {
        "profanity (the cheap option)": models.ProfanitySpec(name="toxicity"),
        "heads, fastText path": models.HeadsSpec(name="toxicity", model_path=fasttext_dir),
        "heads, USE path (winnow:toxicity-use, the default)": models.HeadsSpec(
            name="toxicity", model_path="winnow:toxicity-use"
        ),
    }


def fasttext_heads_model() -> str:
    """The fastText path's model, trained on every dev record into a temporary directory."""
    out = tempfile.mkdtemp(prefix="winnow-toxicity-ft-")
    rows = load()
    train_heads([r["text"] for r in rows], {h: [r[h] for r in rows] for h in HEADS}, FASTTEXT, out)
    return out


def winnow_runs(n_docs: int) -> dict[str, float]:
    """Docs/s/core of the toxicity stage in `winnow run` on an `n_docs` bench corpus, per scorer."""
    from bench.corpus import build_corpus
    from flows.options import ClusterOptions

    work = Path(tempfile.mkdtemp(prefix="winnow-toxicity-run-"))
    build_corpus(n_docs, work / "input")
    workers = ClusterOptions().n_workers  # the default LocalCluster, one single-threaded worker per core
    rates = {}
    for name, spec in scorer_specs(fasttext_heads_model()).items():
        scorer = json.dumps([spec.model_dump(exclude_computed_fields=True)])
        output = work / f"out-{len(rates)}"
        command = [str(Path(sys.executable).with_name("winnow")), "run", "--set", f"input.paths=[{work / 'input'}]"]
        command += [
            "--set",
            f"output={output}",
            "--set",
            f"store={work / 'store'}",
            "--set",
            f"toxicity.scorers={scorer}",
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        summary = json.loads((output / "run_summary.json").read_text())
        row = next(r for r in summary["funnel"] if r["stage"] == "toxicity")
        rates[name] = round(row["docs_in"] / (row["seconds"] * workers), 1)
        print(
            f"{name}: toxicity {row['seconds']} s for {row['docs_in']:,} documents on {workers} workers = "
            f"{rates[name]} docs/s/core; whole run {summary['seconds']} s",
            flush=True,
        )
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="use,fasttext,profanity")
    parser.add_argument("--build", action="store_true", help="train the packaged model and write its evaluation")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--cost", type=int, metavar="N", help="only time the scorers on N bench-corpus documents")
    parser.add_argument("--winnow-run", type=int, metavar="N", help="only time the toxicity stage in winnow run")
    args = parser.parse_args()
    if args.winnow_run:
        winnow_runs(args.winnow_run)
        return
    if args.cost:
        cost(args.cost)
        return
    rows = load()
    recipe = yaml.safe_load((PACKAGED / "train.yaml").read_text())
    use_params = EmbeddingHeadTrainParams(**recipe["embedding_head"])
    fits = {
        "use": lambda: embedding_path(rows, use_params),
        "fasttext": lambda: fasttext_path(rows, FASTTEXT),
        "profanity": lambda: profanity_path(rows),
    }
    results, seconds = {}, {}
    for path in args.paths.split(","):
        started = time.perf_counter()
        results[path] = evaluate(rows, fits[path]())
        seconds[path] = round(time.perf_counter() - started, 1)
    print(markdown(results))
    print(f"\n{len(rows):,} records; seconds per path (all folds): {seconds}")
    figures = {"records": len(rows), "results": results, "seconds": seconds}
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    if args.build:
        build(rows)
        (PACKAGED / "evaluation.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
