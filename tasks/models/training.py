"""What `winnow train` writes and the scorers read back: file names, the model card, the head architecture."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.errors import ModelError

HEAD_WEIGHTS = "head.pt"
MODEL_CARD = "model_card.json"
FASTTEXT_MODEL = "model.bin"


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
