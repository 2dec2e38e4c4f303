"""What `winnow train` writes and the scorers read back: file names, the model card, the head architecture."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.errors import ModelError

HEAD_WEIGHTS = "head.pt"
MODEL_CARD = "model_card.json"
FASTTEXT_MODEL = "model.bin"
POSITIVE = "__label__1"  # a multi-head fastText model's positive label (its negative: __label__0)


def build_head(kind: str, input_dim: int, hidden_dim: int, outputs: int = 1):
    """logistic: linear units; mlp: one shared hidden ReLU layer. One logit per output (a multi-head
    model's heads share the hidden layer)."""
    from torch import nn

    if kind == "logistic":
        return nn.Linear(input_dim, outputs)
    return nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, outputs))


def read_model_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MODEL_CARD
    if not path.is_file():
        raise ModelError(f"{path}: no model card; point model_path at a directory written by `winnow train`")
    return json.loads(path.read_text())
