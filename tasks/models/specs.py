"""Scorer specs: which model a document scorer (quality, toxicity) loads and how its output is read.

A `ScorerSpec` is frozen, so `tasks.models.backends.load_scorer` caches the scorer on it. Backends:
  profanity       alt-profanity-check's shipped linear model: English profanity, the cheap toxicity option
  fasttext        a supervised fastText file (DCLM's quality classifier, Dolma's Jigsaw taggers)
  hf              a transformers sequence classifier (FineWeb-Edu, toxic-bert, Celadon), CUDA if present
  embedding_head  MiniLM sentence embeddings + a small torch head trained by `tasks/train.py`
  heads           a multi-head model trained by `tasks/train.py` (fastText per head, or one head over
                  sentence embeddings): one column per head, e.g. toxicity and its five axes (the
                  toxicity default, `winnow:toxicity-use`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, computed_field

from tasks.contract import RecomputedOnLoad
from tasks.models.encoders import PACKAGED_USE
from tasks.models.training import HEAD_WEIGHTS, MODEL_CARD

SCORER_NAME = r"^[a-z][a-z0-9_]*$"  # the column is `<name>_score`
TORCH_BACKENDS = frozenset({"hf", "embedding_head"})  # backends that run torch (threads, device, CUDA)


class _ScorerBase(RecomputedOnLoad):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SCORER_NAME, description="Score column is `<name>_score` (e.g. toxicity).")
    batch_size: int = Field(256, ge=1, description="Texts per model call; bounds memory, not output.")

    @property
    def column(self) -> str:
        return f"{self.name}_score"

    @property
    def uses_torch(self) -> bool:
        """Whether the backend runs torch (worker thread limits, CUDA device)."""
        return self.backend in TORCH_BACKENDS

    @computed_field(description="Size and mtime of the local model files: a retrained model reruns the stage.")
    @property
    def model_fingerprint(self) -> str | None:
        """Part of the stage's cache key beside the path (a hub id is keyed by its name alone)."""
        location = getattr(self, "model_path", None) or getattr(self, "model", None)
        return fingerprint(Path(location)) if location else None


def fingerprint(path: Path) -> str | None:
    """Size and mtime of every file of a model path (a file or a directory); None if it is not there."""
    if not path.exists():
        return None
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    return ";".join(f"{f.relative_to(path.parent)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


class ProfanitySpec(_ScorerBase):
    backend: Literal["profanity"] = "profanity"
    # alt-profanity-check is far faster on a batch than per call (docs/operations/stack.md): batch large.
    batch_size: int = Field(4096, ge=1, description="Texts per predict_prob call.")


# fastText splits on whitespace, so a sentence of a script written without spaces (Chinese, Japanese,
# Thai) is one unseen token and scores as an empty document: `script` makes each of its characters a
# token (tasks/clean/doc.py). The input must be split as the model's training text was.
FastTextTokens = Literal["whitespace", "script"]
TOKENS_DESCRIPTION = (
    "How text is split for fastText: whitespace (as fastText and published models such as DCLM's "
    "were trained) or script (also every character of scripts written without spaces: zh, ja, th)."
)


class FastTextSpec(_ScorerBase):
    backend: Literal["fasttext"] = "fasttext"
    model_path: str = Field(description="Supervised fastText model file (.bin/.ftz), e.g. from `winnow train`.")
    label: str = Field(description="Label whose probability is the score, with or without __label__.")
    tokens: FastTextTokens = Field("whitespace", description=TOKENS_DESCRIPTION + " `winnow train` says which.")


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


# Models that ship inside this package: `winnow:<name>` in a model_path is `tasks/models/packaged/<name>`.
PACKAGED_PREFIX = "winnow:"
PACKAGED_DIR = Path(__file__).parent / "packaged"


def resolve_model_path(path: str) -> str:
    """A model_path as a filesystem path: `winnow:<name>` is a model this package ships."""
    return str(PACKAGED_DIR / path.removeprefix(PACKAGED_PREFIX)) if path.startswith(PACKAGED_PREFIX) else path


class HeadsSpec(_ScorerBase):
    """A multi-head model (`winnow train` with `heads`): its first head writes `<name>_score`, every
    other head `<name>_<head>_score`. Documents are scored span by span, as the heads were trained on
    sentences and posts, and a document's score per head is its highest span's; a document whose
    `lang` is outside the model card's languages gets null scores."""

    backend: Literal["heads"] = "heads"
    model_path: str = Field(
        description="Directory written by `winnow train` with heads, or `winnow:<name>`: a model this package ships."
    )
    unit: Literal["sentence", "paragraph"] = Field("sentence", description="The span each score is computed on.")
    # A tweet or a forum sentence, the heads' training unit, is well under 64 words; a longer span is
    # scored in 64-word pieces so one long run-on line does not dilute a toxic clause.
    span_words: int = Field(64, ge=8, description="Longest span in words; longer spans are scored in pieces.")
    batch_size: int = Field(512, ge=1, description="Spans per model call.")

    @property
    def uses_torch(self) -> bool:
        """Whether scoring runs torch: not for fastText heads, nor for heads over the packaged USE (numpy,
        `HeadsScorer`); any other encoder does. The card says which, so the directory is read."""
        path = Path(resolve_model_path(self.model_path)) / MODEL_CARD
        if not path.is_file():
            return True
        card = json.loads(path.read_text())
        return card.get("kind") != "fasttext_heads" and card.get("encoder") != PACKAGED_USE

    @computed_field(description="Size and mtime of the local model files: a retrained model reruns the stage.")
    @property
    def model_fingerprint(self) -> str | None:
        return fingerprint(Path(resolve_model_path(self.model_path)))


ScorerSpec = Annotated[
    ProfanitySpec | FastTextSpec | HFSpec | EmbeddingHeadSpec | HeadsSpec, Field(discriminator="backend")
]


def unique_names(scorers: tuple[ScorerSpec, ...]) -> tuple[ScorerSpec, ...]:
    """A stage's scorers, validated: each names a column, so no two share a name."""
    names = [s.name for s in scorers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"scorer names must be unique (each is a column): {duplicates} repeat")
    return scorers


def uses_torch(scorers: tuple[ScorerSpec, ...]) -> bool:
    """Whether any of a stage's scorers runs a torch model (its workers then set torch's threads)."""
    return any(spec.uses_torch for spec in scorers)
