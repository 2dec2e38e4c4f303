"""Scorer backends: texts in, one float32 score per text out, batched; built once per process.

`load_scorer` builds the scorer for a spec (lru_cache on the frozen spec), so a Dask worker keeps it
across shards. torch, transformers and sentence-transformers are imported only when a backend that
needs them loads.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from tasks.errors import ConfigError, ModelError
from tasks.models.encoders import CHARS_PER_TOKEN_BOUND, PackagedUSE, encode, encode_use, load_encoder
from tasks.models.lid import load_fasttext
from tasks.models.specs import (
    EmbeddingHeadSpec,
    FastTextSpec,
    HeadsSpec,
    HFSpec,
    ProfanitySpec,
    ScorerSpec,
    resolve_model_path,
)
from tasks.models.training import POSITIVE, head_arrays, head_logits, load_head, read_model_card
from tasks.text import CHARACTER_TOKEN_RE, span_bounds


class Scorer(Protocol):
    spec: ScorerSpec

    def score(self, texts: list[str]) -> np.ndarray:
        """One float32 score per text, in input order."""


def load_scorer(spec: ScorerSpec, device: str | None = None) -> Scorer:
    """The scorer for `spec`, built once per process. `device` (torch backends): default CUDA if present.

    Raises ModelError when the model is missing or does not have the configured label.
    """
    if not spec.uses_torch:  # finding the device imports torch: ~180 MiB per worker for nothing
        device = "cpu"
    return _load_scorer(spec, device or default_device())


@functools.lru_cache(maxsize=16)
def _load_scorer(spec: ScorerSpec, device: str) -> Scorer:
    builders = {
        "profanity": ProfanityScorer,
        "fasttext": FastTextScorer,
        "hf": HFScorer,
        "embedding_head": EmbeddingHeadScorer,
        "heads": HeadsScorer,
    }
    return builders[spec.backend](spec, device)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def set_torch_threads(n: int) -> None:
    """Intra-op CPU threads for torch in this process: one Dask worker's share of the cores.

    MiniLM collapses when several processes each take every core (docs/operations/stack.md), so a worker plugin calls
    this with cores // workers before the first shard.
    """
    import torch

    torch.set_num_threads(max(1, n))


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _empty_scores() -> np.ndarray:
    return np.empty(0, np.float32)


class ProfanityScorer:
    """alt-profanity-check: TF-IDF + calibrated linear SVM on ~200k labeled tweets, shipped in the wheel."""

    def __init__(self, spec: ProfanitySpec, device: str):
        import profanity_check

        self.spec = spec
        self._predict = profanity_check.predict_prob

    def score(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return _empty_scores()
        parts = [self._predict(texts[s]) for s in _batches(len(texts), self.spec.batch_size)]
        return np.concatenate(parts).astype(np.float32)


def fasttext_line(text: str, tokens: str) -> str:
    """A document as one line of fastText input, split as `tokens` says (`FastTextSpec.tokens`)."""
    if tokens == "script":
        return " ".join(CHARACTER_TOKEN_RE.findall(text))
    return text.replace("\n", " ")


class FastTextScorer:
    """Probability of one label of a supervised fastText model; newlines folded (one line per input)."""

    def __init__(self, spec: FastTextSpec, device: str):
        self.spec = spec
        self._model = load_fasttext(spec.model_path)
        self._label = spec.label if spec.label.startswith("__label__") else f"__label__{spec.label}"
        labels = self._model.get_labels()
        if self._label not in labels:
            raise ModelError(
                f"{spec.model_path}: no label {spec.label!r} "
                f"(found {[label.removeprefix('__label__') for label in labels]}); "
                f"set label in the {spec.name!r} scorer"
            )

    def score(self, texts: list[str]) -> np.ndarray:
        return label_probabilities(self._model.f, [fasttext_line(t, self.spec.tokens) for t in texts], self._label)


def label_probabilities(model, lines: list[str], label: str) -> np.ndarray:
    """float32 probability of `label` for each line, from a fastText model's low-level `predict`.

    Per-line low-level calls: fasttext-wheel 0.9.2's list `predict` under numpy 2 repeats the top
    probability for every rank when k > 1 (tests/tasks/test_scoring.py), and the label we want may rank
    last. `predict()` appends the newline itself; the low-level call needs it (docs/operations/stack.md).
    """
    out = np.zeros(len(lines), np.float32)
    for i, line in enumerate(lines):
        pairs = model.predict(line + "\n", -1, 0.0, "strict")
        out[i] = next((prob for prob, name in pairs if name == label), 0.0)
    return np.clip(out, 0.0, 1.0)  # fastText's softmax can exceed 1 by float error


class HFScorer:
    """A transformers sequence classifier: length-sorted batches, truncation, bf16 autocast on CUDA."""

    def __init__(self, spec: HFSpec, device: str):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.spec = spec
        self.device = torch.device(device)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(spec.model)
            model = AutoModelForSequenceClassification.from_pretrained(spec.model)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{spec.model}: cannot load a sequence classifier ({exc}); set model in the {spec.name!r} scorer"
            ) from exc
        if self._tokenizer.pad_token is None:  # GPT-style tokenizers ship without one
            self._tokenizer.pad_token = self._tokenizer.eos_token
            model.config.pad_token_id = self._tokenizer.pad_token_id
        self._model = model.to(self.device).eval()
        self._index = _label_index(spec, model.config)
        limits = [
            spec.max_tokens,
            self._tokenizer.model_max_length,
            getattr(model.config, "max_position_embeddings", None),
        ]
        self.max_tokens = min(n for n in limits if n)

    def score(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros(len(texts), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: OOM shows up at once
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            for s in _batches(len(texts), self.spec.batch_size):
                idx = order[s]
                batch = [texts[i][: self.max_tokens * CHARS_PER_TOKEN_BOUND] for i in idx]
                enc = self._tokenizer(
                    batch, truncation=True, max_length=self.max_tokens, padding=True, return_tensors="pt"
                )
                if cuda:
                    enc = {k: v.pin_memory().to(self.device, non_blocking=True) for k, v in enc.items()}
                logits = self._model(**enc).logits.float()
                out[idx] = _aggregate(logits, self.spec.aggregation, self._index).cpu().numpy()
        return out


def _label_index(spec: HFSpec, config) -> int:
    n = config.num_labels
    names = {str(name): int(i) for i, name in config.id2label.items()}
    if spec.label is None:
        if spec.aggregation == "regression" or n == 1:
            return 0
        if n == 2:
            return 1
        raise ModelError(f"{spec.model}: {n} labels {sorted(names)}; set label in the {spec.name!r} scorer")
    if spec.label in names:
        return names[spec.label]
    if spec.label.isdigit() and int(spec.label) < n:
        return int(spec.label)
    raise ModelError(
        f"{spec.model}: no label {spec.label!r} (found {sorted(names)}); set label in the {spec.name!r} scorer"
    )


def _aggregate(logits, aggregation: str, index: int):
    if aggregation == "softmax":
        return logits.softmax(-1)[:, index]
    if aggregation == "sigmoid":
        return logits.sigmoid()[:, index]
    return logits[:, index]


class EmbeddingHeadScorer:
    """Sigmoid of a small torch head over normalized sentence embeddings."""

    def __init__(self, spec: EmbeddingHeadSpec, device: str):
        self.spec = spec
        card = read_model_card(spec.model_path)
        head = card["head"]
        self._encoder = load_encoder(card["encoder"], device)
        dim = self._encoder.get_embedding_dimension()
        if dim != head["input_dim"]:
            raise ModelError(
                f"{spec.model_path}: head expects {head['input_dim']}-dim inputs, "
                f"encoder {card['encoder']!r} gives {dim}"
            )
        arrays = head_arrays(spec.model_path)
        self._head = load_head(head["kind"], head["input_dim"], head["hidden_dim"], arrays).to(device)

    def score(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return _empty_scores()
        emb = encode(self._encoder, texts, self.spec.max_tokens, self.spec.batch_size)
        with torch.inference_mode():
            return self._head(emb).squeeze(-1).sigmoid().cpu().numpy().astype(np.float32)


HEADS_KINDS = ("fasttext_heads", "embedding_heads")


def text_spans(text: str, unit: str, span_words: int) -> list[str]:
    """The spans a multi-head model scores in a document: each `unit`, cut into pieces of at most
    `span_words` whitespace words; a text without any span is one empty span."""
    spans = []
    for start, end in span_bounds(text, unit):
        words = text[start:end].split()
        spans.extend(" ".join(words[i : i + span_words]) for i in range(0, len(words), span_words))
    return spans or [""]


class HeadsScorer:
    """A multi-head model: fastText models (one file per head) or one torch head over sentence
    embeddings with an output per head. Scores spans; a document's score per head is its top span's."""

    def __init__(self, spec: HeadsSpec, device: str, card: dict | None = None):
        """`card`: the model card when it is not written yet (training validates before it writes one)."""
        self.spec = spec
        root = Path(resolve_model_path(spec.model_path))
        card = card or read_model_card(root)
        if card.get("kind") not in HEADS_KINDS:
            raise ModelError(
                f"{spec.model_path}: a {card.get('kind')!r} model, not a multi-head one ({', '.join(HEADS_KINDS)}); "
                f"use its own backend in the {spec.name!r} scorer"
            )
        self.heads: tuple[str, ...] = tuple(card["heads"])
        self.languages = frozenset(card.get("languages") or ())
        self.columns = [spec.column] + [f"{spec.name}_{head}_score" for head in self.heads[1:]]
        self._kind = card["kind"]
        if self._kind == "fasttext_heads":
            self._tokens = card["params"]["tokens"]
            self._models = [load_fasttext(str(root / f"{head}.bin")).f for head in self.heads]
            return
        self._encoder = load_encoder(card["encoder"], device)
        self._max_tokens = card["params"]["max_tokens"]
        head, arrays = card["head"], head_arrays(root)
        if isinstance(self._encoder, PackagedUSE):  # a numpy encoder: the head in numpy too, no torch
            self._logits = partial(head_logits, head["kind"], arrays)
            return
        self._head = load_head(head["kind"], head["input_dim"], head["hidden_dim"], arrays, len(self.heads))
        self._head = self._head.to(self._encoder.device)

    def score_spans(self, spans: list[str]) -> np.ndarray:
        """(spans, heads) float32 probabilities. Each distinct span is scored once: a span's score
        depends on its text alone, and web pages repeat menus, bylines and share lines."""
        first: dict[str, int] = {}
        inverse = [first.setdefault(span, len(first)) for span in spans]
        if len(first) == len(spans):
            return self._score_distinct(spans)
        return self._score_distinct(list(first))[inverse]

    def _score_distinct(self, spans: list[str]) -> np.ndarray:
        if self._kind == "fasttext_heads":
            lines = [fasttext_line(span.lower(), self._tokens) for span in spans]
            columns = [label_probabilities(model, lines, POSITIVE) for model in self._models]
            return np.stack(columns, axis=1) if spans else np.zeros((0, len(self.heads)), np.float32)
        parts = [self._embedding_scores(spans[s]) for s in _batches(len(spans), self.spec.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.heads)), np.float32)

    def _embedding_scores(self, spans: list[str]) -> np.ndarray:
        if isinstance(self._encoder, PackagedUSE):
            logits = self._logits(encode_use(self._encoder, spans, self._max_tokens))
            return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        import torch

        emb = encode(self._encoder, spans, self._max_tokens, self.spec.batch_size)
        with torch.inference_mode():
            return self._head(emb).sigmoid().float().cpu().numpy()

    def score(self, texts: list[str], langs: list[str | None] | None = None) -> np.ndarray:
        """(texts, heads): each head's highest span score; NaN rows for a `lang` outside the card's languages."""
        out = np.full((len(texts), len(self.heads)), np.nan, np.float32)
        rows = [i for i in range(len(texts)) if not (self.languages and langs and langs[i] not in self.languages)]
        spans = [text_spans(texts[i], self.spec.unit, self.spec.span_words) for i in rows]
        if not rows:
            return out
        scores = self.score_spans([span for doc in spans for span in doc])
        starts = np.cumsum([0] + [len(doc) for doc in spans[:-1]])  # every document has >= 1 span
        out[rows] = np.maximum.reduceat(scores, starts, axis=0)
        return out


def append_scores(
    table: pa.Table, specs: tuple[ScorerSpec, ...], device: str | None = None, langs: list[str | None] | None = None
) -> pa.Table:
    """One float32 `<name>_score` column per spec (a multi-head spec: one per head); an empty table gets
    empty columns of its single-head specs and loads nothing. `langs` lets a multi-head scorer leave
    documents outside its languages null."""
    texts = table.column("text").to_pylist() if table.num_rows else []
    for spec in specs:
        scorer = load_scorer(spec, device) if texts or spec.backend == "heads" else None
        if isinstance(scorer, HeadsScorer):
            columns, scores = scorer.columns, scorer.score(texts, langs).T
        else:
            columns, scores = [spec.column], [scorer.score(texts) if texts else _empty_scores()]
        for column, values in zip(columns, scores):
            if column in table.column_names:
                raise ConfigError(f"scorer {spec.name!r}: column {column!r} already exists; rename the scorer")
            table = table.append_column(
                pa.field(column, pa.float32()), pa.array(values, pa.float32(), from_pandas=True)
            )
    return table
