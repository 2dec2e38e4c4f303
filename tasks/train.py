"""Train binary document classifiers that plug into `quality`/`toxicity` scorers, with honest metrics.

Two recipes, both with a seeded, stratified held-out validation split (and `train_heads`, either recipe
with several binary heads, such as toxicity and its axes, some labels unknown):
- `train_fasttext`: a supervised fastText classifier (Joulin et al. 2017), the DCLM quality recipe
  (Li et al. 2024: reference "good" documents vs a sample of the raw pool, word bigrams). Writes
  `model.bin`; scorer: `FastTextSpec(model_path=<dir>/model.bin, label=<params.label>)`.
- `train_embedding_head`: a logistic or one-hidden-layer MLP head over frozen MiniLM sentence
  embeddings. Writes `head.npz` (the head's parameters); scorer: `EmbeddingHeadSpec(model_path=<dir>)`.
Each writes `model_card.json` beside the model: data sizes, params, validation metrics, scorer spec.
Labels are booleans (True = the positive class, e.g. toxic or high quality); `label_examples` derives
them from a label field of read documents, excluding records without a usable label, with a reason.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks import models
from tasks.contract import StageOutput, split_by_reason
from tasks.errors import InputError

CALIBRATION_BINS = 10  # equal-width probability bins, as in sklearn's calibration_curve default


# The one registry of reasons a read document does not become a training example.
REASONS: dict[str, str] = {
    "train:missing_label": "the record has no label field, or it is null",
    "train:label_type": "the label is not a bool, an int or a string",
    "train:unlisted_label": "the label is in neither labels.positive nor labels.negative (when negative is set)",
}

LabelValue = bool | int | str


class LabelParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field("label", description="Input field holding each record's label (kept in `meta` by read).")
    positive: tuple[LabelValue, ...] = Field(
        (True,), min_length=1, description="Label values of the positive class (type-exact: true is not 1)."
    )
    negative: tuple[LabelValue, ...] = Field(
        (), description="Label values of the negative class; empty: every value not positive is negative."
    )


def _same(value, candidates: tuple[LabelValue, ...]) -> bool:
    """Membership without Python's True == 1: a bool label matches only bools."""
    return any(type(value) is type(c) and value == c for c in candidates)


def label_examples(docs: pa.Table, params: LabelParams) -> StageOutput:
    """Documents (`contract.DOC_SCHEMA`) -> kept rows with a bool `label` column, rejected rows with a reason.

    The label is read from `meta`, where `read` keeps every input field it does not consume.
    """
    labels, reasons = [], []
    for meta in docs.column("meta").to_pylist():
        label, reason = read_label(json.loads(meta).get(params.field) if meta else None, params)
        labels.append(label)
        reasons.append(reason)
    labeled = docs.append_column("label", pa.array(labels, pa.bool_()))
    return split_by_reason(labeled, pa.array(reasons, pa.string()))


def read_label(value, params: LabelParams) -> tuple[bool | None, str | None]:
    """A field's value as a label: (True/False, None), or (None, the `REASONS` key saying why not)."""
    if value is None:
        return None, "train:missing_label"
    if type(value) not in (bool, int, str):
        return None, "train:label_type"
    if params.negative and not _same(value, params.positive + params.negative):
        return None, "train:unlisted_label"
    return _same(value, params.positive), None


def label_heads(docs: pa.Table, heads: dict[str, LabelParams]) -> StageOutput:
    """Documents -> kept rows with a nullable bool column per head, rejected rows with a reason.

    Each head reads its own field; a missing or null value is unknown for that head (a multi-head
    model masks it), a value of another type is unknown too. A record unknown for every head is
    rejected as `train:missing_label`.
    """
    metas = [json.loads(m) if m else {} for m in docs.column("meta").to_pylist()]
    columns = {head: [read_label(meta.get(p.field), p)[0] for meta in metas] for head, p in heads.items()}
    reasons = [
        None if any(columns[h][i] is not None for h in heads) else "train:missing_label" for i in range(len(metas))
    ]
    for head, values in columns.items():
        docs = docs.append_column(head, pa.array(values, pa.bool_()))
    return split_by_reason(docs, pa.array(reasons, pa.string()))


class SplitParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of examples held out for metrics.")
    seed: int = Field(0, description="Seeds the split and training; the same inputs give the same model.")
    label: str = Field(
        "positive", pattern=r"^[a-z][a-z0-9_]*$", description="Name of the positive class (scorer label)."
    )


class FastTextTrainParams(SplitParams):
    # fastText's supervised defaults (lr 0.1, dim 100, epoch 5) with word bigrams as in DCLM's classifier.
    lr: float = Field(0.1, gt=0.0, description="Learning rate.")
    epoch: int = Field(5, ge=1, description="Passes over the training split.")
    word_ngrams: int = Field(2, ge=1, description="Word n-gram features (DCLM: bigrams).")
    dim: int = Field(100, ge=1, description="Embedding dimension.")
    min_count: int = Field(1, ge=1, description="Minimum word count to enter the vocabulary.")
    # fastText's default: 2M hashed n-gram rows. The model file is ~bucket x dim x 4 bytes (800 MB at
    # the defaults, DCLM-sized); a small reference set loses little with 200k (80 MB).
    bucket: int = Field(
        2_000_000, ge=1, description="Hash buckets for word n-grams; sets the model size (bucket x dim x 4 bytes)."
    )
    # fastText's supervised default is no character n-grams (minn = maxn = 0); 3-5 lets a head match an
    # inflection or a misspelling it never saw (Bojanowski et al. 2017 use 3-6 for word vectors).
    minn: int = Field(0, ge=0, description="Shortest character n-gram (0 with maxn 0: words only).")
    maxn: int = Field(0, ge=0, description="Longest character n-gram (0: none).")
    balance: float = Field(
        1.0,
        ge=1.0,
        description="Multi-head models: repeat a head's positives up to this many times toward class balance.",
    )
    tokens: models.FastTextTokens = Field("script", description=models.TOKENS_DESCRIPTION)
    # One thread: fastText's Hogwild updates make multi-threaded training non-deterministic.
    threads: int = Field(1, ge=1, description="Training threads (1 = reproducible).")


class EmbeddingHeadTrainParams(SplitParams):
    encoder: str = Field(
        models.PACKAGED_MINILM, description="sentence-transformers encoder: packaged MiniLM, a path or hub id."
    )
    head: Literal["logistic", "mlp"] = Field("logistic", description="Head on the frozen embeddings.")
    hidden_dim: int = Field(64, ge=1, description="MLP hidden units (ignored by logistic).")
    epochs: int = Field(200, ge=1, description="Passes over the training split's embeddings.")
    minibatch: int | None = Field(
        None,
        ge=1,
        description="Examples per Adam step; empty: the whole split, one step per pass (multi-head models).",
    )
    lr: float = Field(1e-2, gt=0.0, description="Adam learning rate.")
    weight_decay: float = Field(1e-4, ge=0.0, description="L2 penalty (AdamW decoupled).")
    max_tokens: int = Field(256, ge=1, description="Encoder truncation; the scorer must use the same (MiniLM: 256).")
    batch_size: int = Field(128, ge=1, description="Texts per encoder call.")


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified seeded split: (train, validation) indices, each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_val = max(1, round(len(idx) * fraction))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _check(texts: Sequence[str], labels: Sequence[bool]) -> np.ndarray:
    y = np.asarray(labels, dtype=bool)
    if len(texts) != len(y):
        raise InputError(f"{len(texts)} texts but {len(y)} labels")
    n_pos = int(y.sum())
    if min(n_pos, len(y) - n_pos) < 2:
        raise InputError(
            f"need at least 2 examples of each class to train and validate "
            f"(got {n_pos} positive, {len(y) - n_pos} negative)"
        )
    return y


def classifier_metrics(y_true: Sequence[bool], scores: Sequence[float], threshold: float = 0.5) -> dict:
    """Accuracy at `threshold`, ROC-AUC, PR-AUC (average precision), Brier score and calibration bins.

    AUCs are None when `y_true` holds one class only (undefined).
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y_true, dtype=bool)
    p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    both = 0 < y.sum() < len(y)
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    bins = [
        {
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "n": int((which == b).sum()),
            "mean_score": float(p[which == b].mean()),
            "positive_rate": float(y[which == b].mean()),
        }
        for b in range(CALIBRATION_BINS)
        if (which == b).any()
    ]
    ece = sum(b["n"] * abs(b["mean_score"] - b["positive_rate"]) for b in bins) / max(len(y), 1)
    return {
        "n": int(len(y)),
        "positive_rate": float(y.mean()) if len(y) else 0.0,
        "threshold": threshold,
        "accuracy": float(((p >= threshold) == y).mean()) if len(y) else 0.0,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else 0.0,
        "ece": float(ece),
        "calibration": bins,
    }


def _write_card(out_dir: Path, card: dict) -> None:
    tmp = out_dir / f".{models.MODEL_CARD}.tmp"
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True))
    tmp.replace(out_dir / models.MODEL_CARD)  # the card comes last: a directory with one is complete


def train_supervised(lines: Iterable[str], params: FastTextTrainParams, scratch: Path):
    """A supervised fastText model from `__label__<class> <text>` lines (written to a file in
    `scratch`, which fastText reads, then removed)."""
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=scratch, delete=False) as fh:
        fh.writelines(f"{line}\n" for line in lines)
    try:
        return fasttext.train_supervised(
            input=fh.name,
            lr=params.lr,
            epoch=params.epoch,
            wordNgrams=params.word_ngrams,
            minn=params.minn,
            maxn=params.maxn,
            dim=params.dim,
            minCount=params.min_count,
            bucket=params.bucket,
            thread=params.threads,
            seed=params.seed,
            verbose=0,
        )
    finally:
        Path(fh.name).unlink()


def train_fasttext(
    texts: Sequence[str],
    labels: Sequence[bool],
    params: FastTextTrainParams,
    out_dir: str | Path,
    inputs: dict | None = None,
) -> Path:
    """Train, validate and save a fastText classifier; returns the model file (`<out_dir>/model.bin`).

    `inputs` (files read, records excluded by reason) goes into the model card as provenance.
    """

    y = _check(texts, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = split_indices(y, params.validation_fraction, params.seed)
    pos, neg = f"__label__{params.label}", f"__label__not_{params.label}"
    started = time.perf_counter()
    # fastText reads its file in order while the learning rate decays: a file sorted by class
    # (positive files, then negative files) would bias the model, so the order is shuffled (seeded).
    lines = (
        f"{pos if y[i] else neg} {models.fasttext_line(texts[i], params.tokens)}"
        for i in np.random.default_rng(params.seed).permutation(train_idx)
    )
    model = train_supervised(lines, params, out)
    path = out / models.FASTTEXT_MODEL
    model.save_model(str(path.with_suffix(".tmp")))
    path.with_suffix(".tmp").replace(path)
    models.load_fasttext.cache_clear()  # a retrain to the same path must not score with the old model
    spec = models.FastTextSpec(name=params.label, model_path=str(path), label=params.label, tokens=params.tokens)
    val_scores = models.FastTextScorer(spec, "cpu").score([texts[i] for i in val_idx])
    _write_card(
        out,
        {
            "kind": "fasttext",
            "label": params.label,
            "params": params.model_dump(),
            "data": _sizes(y, train_idx, val_idx),
            "train_seconds": round(time.perf_counter() - started, 3),
            "metrics": classifier_metrics(y[val_idx], val_scores),
            "scorer": spec.model_dump(exclude_computed_fields=True),  # a fingerprint is recomputed on load
            "inputs": inputs or {},
        },
    )
    return path


def train_embedding_head(
    texts: Sequence[str],
    labels: Sequence[bool],
    params: EmbeddingHeadTrainParams,
    out_dir: str | Path,
    inputs: dict | None = None,
) -> Path:
    """Train, validate and save a head over frozen sentence embeddings; returns `out_dir`.

    `inputs` (files read, records excluded by reason) goes into the model card as provenance.
    """
    import torch

    y = _check(texts, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = split_indices(y, params.validation_fraction, params.seed)
    started = time.perf_counter()
    encoder = models.load_encoder(params.encoder, "cpu")
    emb = models.encode(encoder, list(texts), params.max_tokens, params.batch_size).cpu()
    target = torch.as_tensor(y, dtype=torch.float32)
    torch.manual_seed(params.seed)
    head = models.build_head(params.head, emb.shape[1], params.hidden_dim)
    # Classes are often imbalanced (davidson: 83% toxic): weight positives so both count equally.
    n_pos = float(y[train_idx].sum())
    pos_weight = torch.tensor((len(train_idx) - n_pos) / n_pos)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.AdamW(head.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    x_train, y_train = emb[train_idx], target[train_idx]
    for _ in range(params.epochs):
        opt.zero_grad()
        loss_fn(head(x_train).squeeze(-1), y_train).backward()
        opt.step()
    with torch.inference_mode():
        val_scores = head(emb[val_idx]).squeeze(-1).sigmoid().numpy()
    models.save_head(head, out)
    spec = models.EmbeddingHeadSpec(name=params.label, model_path=str(out), max_tokens=params.max_tokens)
    _write_card(
        out,
        {
            "kind": "embedding_head",
            "label": params.label,
            "encoder": params.encoder,
            "head": {"kind": params.head, "input_dim": int(emb.shape[1]), "hidden_dim": params.hidden_dim},
            "params": params.model_dump(),
            "data": _sizes(y, train_idx, val_idx),
            "train_seconds": round(time.perf_counter() - started, 3),
            "metrics": classifier_metrics(y[val_idx], val_scores),
            "scorer": spec.model_dump(exclude_computed_fields=True),  # a fingerprint is recomputed on load
            "inputs": inputs or {},
        },
    )
    return out


def _sizes(y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray) -> dict:
    return {
        "n_train": int(len(train_idx)),
        "n_validation": int(len(val_idx)),
        "n_train_positive": int(y[train_idx].sum()),
        "n_validation_positive": int(y[val_idx].sum()),
    }


def _head_labels(labels: dict[str, Sequence[bool | None]], n: int) -> tuple[list[str], np.ndarray]:
    """Head names and an (examples, heads) float matrix: 1, 0, or NaN where a head's label is unknown."""
    heads = list(labels)
    if not heads:
        raise InputError("a multi-head model needs at least one head")
    y = np.full((n, len(heads)), np.nan)
    for j, head in enumerate(heads):
        column = list(labels[head])
        if len(column) != n:
            raise InputError(f"head {head!r}: {len(column)} labels for {n} texts")
        y[:, j] = [np.nan if v is None else float(v) for v in column]
        known = y[~np.isnan(y[:, j]), j]
        if min(known.sum(), len(known) - known.sum()) < 2:
            raise InputError(
                f"head {head!r}: need at least 2 examples of each class to train and validate "
                f"(got {int(known.sum())} positive, {int(len(known) - known.sum())} negative)"
            )
    return heads, y


def _head_metrics(heads: list[str], y: np.ndarray, scores: np.ndarray) -> dict[str, dict]:
    """Validation metrics per head, over the examples that head has a label for."""
    metrics = {}
    for j, head in enumerate(heads):
        known = ~np.isnan(y[:, j])
        metrics[head] = classifier_metrics(y[known, j] == 1, scores[known, j])
    return metrics


def train_heads(
    texts: Sequence[str],
    labels: dict[str, Sequence[bool | None]],
    params: FastTextTrainParams | EmbeddingHeadTrainParams,
    out_dir: str | Path,
    inputs: dict | None = None,
    languages: Sequence[str] = (),
) -> Path:
    """Train a multi-head model (one binary head per `labels` key; None = unknown, masked) and save it
    with its card; returns `out_dir`. The first head is the model's main score. `params` picks the
    path: fastText models, one per head, or one torch head over frozen sentence embeddings.

    One seeded split, stratified by the first head, validates every head. `languages` (the training
    data's) goes into the card: the scorer leaves documents in other languages unscored.
    """
    heads, y = _head_labels(labels, len(texts))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = split_indices(y[:, 0] == 1, params.validation_fraction, params.seed)
    started = time.perf_counter()
    if isinstance(params, FastTextTrainParams):
        kind, extra = "fasttext_heads", _fit_fasttext_heads(texts, heads, y, train_idx, params, out)
    else:
        kind, extra = "embedding_heads", _fit_embedding_heads(texts, heads, y, train_idx, params, out)
    spec = models.HeadsSpec(name=params.label, model_path=str(out))
    card = {"kind": kind, "label": params.label, "heads": heads, "languages": sorted(languages)}
    card |= {"params": params.model_dump(), **extra}
    models.load_fasttext.cache_clear()  # a retrain to the same path must not score with the old files
    val_scores = models.HeadsScorer(spec, "cpu", card).score_spans([texts[i] for i in val_idx])
    _write_card(
        out,
        {
            **card,
            "data": {
                head: _sizes(y[:, j] == 1, *(idx[~np.isnan(y[idx, j])] for idx in (train_idx, val_idx)))
                for j, head in enumerate(heads)
            },
            "train_seconds": round(time.perf_counter() - started, 3),
            "metrics": _head_metrics(heads, y[val_idx], val_scores),
            "scorer": spec.model_dump(exclude_computed_fields=True),
            "inputs": inputs or {},
        },
    )
    return out


def _fit_fasttext_heads(texts, heads, y, train_idx, params: FastTextTrainParams, out: Path) -> dict:
    """One fastText model per head on the examples that head has a label for, lower-cased; positives
    repeated up to `balance` times toward the negatives' count (fastText has no class weights)."""

    lines = {i: models.fasttext_line(texts[i].lower(), params.tokens) for i in train_idx}
    rng = np.random.default_rng(params.seed)
    for j, head in enumerate(heads):
        known = train_idx[~np.isnan(y[train_idx, j])]
        pos, neg = known[y[known, j] == 1], known[y[known, j] == 0]
        repeat = int(min(params.balance, max(1, round(len(neg) / len(pos)))))
        rows = [f"{models.POSITIVE} {lines[i]}" for i in pos] * repeat + [f"__label__0 {lines[i]}" for i in neg]
        model = train_supervised((rows[k] for k in rng.permutation(len(rows))), params, out)
        tmp = out / f".{head}.tmp"
        model.save_model(str(tmp))
        tmp.replace(out / f"{head}.bin")
    return {}


def _fit_embedding_heads(texts, heads, y, train_idx, params: EmbeddingHeadTrainParams, out: Path) -> dict:
    """Embed the training split, fit the head, save its weights; returns what the card adds."""

    encoder = models.load_encoder(params.encoder, "cpu")
    emb = models.encode(encoder, [texts[i] for i in train_idx], params.max_tokens, params.batch_size).cpu()
    head = fit_embedding_heads(emb, y[train_idx], params)
    models.save_head(head, out)
    return {
        "encoder": params.encoder,
        "head": {"kind": params.head, "input_dim": int(emb.shape[1]), "hidden_dim": params.hidden_dim},
    }


def fit_embedding_heads(emb, y: np.ndarray, params: EmbeddingHeadTrainParams):
    """A torch head with an output per column of `y` (1, 0, NaN = unknown) over embeddings `emb`:
    minibatch AdamW on a masked, class-weighted binary cross-entropy (an unknown label adds no loss)."""
    import torch

    target = torch.as_tensor(np.nan_to_num(y), dtype=torch.float32)
    known = torch.as_tensor(~np.isnan(y))
    n_pos = (target * known).sum(0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(known.sum(0) - n_pos) / n_pos.clamp(min=1), reduction="none")
    torch.manual_seed(params.seed)
    head = models.build_head(params.head, emb.shape[1], params.hidden_dim, y.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    order = torch.Generator().manual_seed(params.seed)
    for _ in range(params.epochs):
        for batch in torch.randperm(len(emb), generator=order).split(params.minibatch or len(emb)):
            opt.zero_grad()
            mask = known[batch]
            loss = (loss_fn(head(emb[batch]), target[batch]) * mask).sum() / mask.sum().clamp(min=1)
            loss.backward()
            opt.step()
    return head.eval()
