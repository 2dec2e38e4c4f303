"""Models, loaded once per process: language ID, document scorers (specs, backends), sentence encoders, trained files."""

from tasks.models.backends import (
    EmbeddingHeadScorer,
    FastTextScorer,
    HFScorer,
    ProfanityScorer,
    Scorer,
    append_scores,
    default_device,
    fasttext_line,
    load_scorer,
    set_torch_threads,
)
from tasks.models.encoders import CHARS_PER_TOKEN_BOUND, PACKAGED_MINILM, encode, encoder_available, load_encoder
from tasks.models.lid import LID_PACKAGE, LID_RESOURCE, default_lid_path, fasttext_top_labels, load_fasttext
from tasks.models.specs import (
    SCORER_NAME,
    TOKENS_DESCRIPTION,
    TORCH_BACKENDS,
    EmbeddingHeadSpec,
    FastTextSpec,
    FastTextTokens,
    HFSpec,
    ProfanitySpec,
    ScorerSpec,
)
from tasks.models.training import FASTTEXT_MODEL, HEAD_WEIGHTS, MODEL_CARD, build_head, read_model_card

__all__ = [
    "CHARS_PER_TOKEN_BOUND", "FASTTEXT_MODEL", "HEAD_WEIGHTS", "LID_PACKAGE", "LID_RESOURCE", "MODEL_CARD",
    "PACKAGED_MINILM", "SCORER_NAME", "TOKENS_DESCRIPTION", "TORCH_BACKENDS",
    "EmbeddingHeadScorer", "EmbeddingHeadSpec", "FastTextScorer", "FastTextSpec", "FastTextTokens", "HFScorer", "HFSpec",
    "ProfanityScorer", "ProfanitySpec", "Scorer", "ScorerSpec",
    "append_scores", "build_head", "default_device", "default_lid_path", "encode", "encoder_available", "fasttext_line",
    "fasttext_top_labels", "load_encoder", "load_fasttext", "load_scorer", "read_model_card", "set_torch_threads",
]
