"""What `winnow train` writes and the scorers read back: file names, the model card, the head architecture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks.errors import ModelError

# A head's parameters under their torch state-dict names, as numpy arrays: a head over a numpy encoder
# (the packaged USE) then scores without importing torch. Models trained before 2026-12-07 hold
# LEGACY_HEAD_WEIGHTS, a torch state dict, still read (with torch).
HEAD_WEIGHTS = "head.npz"
LEGACY_HEAD_WEIGHTS = "head.pt"
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


def save_head(head, out_dir: Path) -> None:
    """The torch head's parameters as `HEAD_WEIGHTS`, written atomically."""
    tmp = out_dir / f".{HEAD_WEIGHTS}.tmp"
    with tmp.open("wb") as f:  # a file object: np.savez would append .npz to a name
        np.savez(f, **{name: value.detach().cpu().numpy() for name, value in head.state_dict().items()})
    tmp.replace(out_dir / HEAD_WEIGHTS)


def head_arrays(model_dir: str | Path) -> dict[str, np.ndarray]:
    """A saved head's parameters by state-dict name."""
    root = Path(model_dir)
    if (root / HEAD_WEIGHTS).is_file():
        with np.load(root / HEAD_WEIGHTS) as arrays:
            return {name: arrays[name] for name in arrays.files}
    if (root / LEGACY_HEAD_WEIGHTS).is_file():
        import torch

        state = torch.load(root / LEGACY_HEAD_WEIGHTS, map_location="cpu", weights_only=True)
        return {name: value.numpy() for name, value in state.items()}
    raise ModelError(f"{root}: no {HEAD_WEIGHTS}; point model_path at a directory written by `winnow train`")


def load_head(kind: str, input_dim: int, hidden_dim: int, arrays: dict[str, np.ndarray], outputs: int = 1):
    """The torch head `build_head` makes, with saved parameters, in eval mode."""
    import torch

    head = build_head(kind, input_dim, hidden_dim, outputs)
    head.load_state_dict({name: torch.from_numpy(value) for name, value in arrays.items()})
    return head.eval()


def head_logits(kind: str, arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The same head's logits in numpy, (rows, outputs): the forward pass of `build_head`'s layers."""
    if kind == "logistic":
        return x @ arrays["weight"].T + arrays["bias"]
    hidden = np.maximum(x @ arrays["0.weight"].T + arrays["0.bias"], 0.0)
    return hidden @ arrays["2.weight"].T + arrays["2.bias"]


def read_model_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MODEL_CARD
    if not path.is_file():
        raise ModelError(f"{path}: no model card; point model_path at a directory written by `winnow train`")
    return json.loads(path.read_text())
