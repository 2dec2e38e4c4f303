"""Names and places, by the entity recognizer of a spaCy pipeline the user names: opt-in.

No model ships with Winnow, and none is downloaded: `pii.ner_model` names an installed spaCy package
(`en_core_web_lg`) or a pipeline directory, and is part of `pii.spans`' cache key. spaCy itself is the
`ner` extra (`pip install 'winnow[ner]'`). Labels of spaCy's two label sets map to two types:
OntoNotes (PERSON; GPE, LOC, FAC) and WikiNER (PER; LOC).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tasks.errors import ConfigError

LABELS = {"PERSON": "person", "PER": "person", "GPE": "location", "LOC": "location", "FAC": "location"}
NER_TYPES = ("person", "location")
CHUNK_CHARS = 20_000  # texts are cut at line ends into pieces this long: entities are local, and
# spaCy refuses texts over `nlp.max_length`
NEEDED_PIPES = ("tok2vec", "transformer", "ner", "entity_ruler", "span_ruler")
BATCH_SIZE = 64


def check_model(model: str) -> None:
    """A clear error, at config load, when spaCy or the named pipeline is missing."""
    try:
        import spacy
    except ImportError:
        raise ConfigError("pii.ner_model needs spaCy: pip install 'winnow[ner]'") from None
    if not (Path(model).is_dir() or spacy.util.is_package(model)):
        raise ConfigError(
            f"pii.ner_model: {model!r} is neither an installed spaCy pipeline nor a directory; install one "
            f"(python -m spacy download {model}) or give the directory of a saved pipeline"
        )


@cache
def load(model: str):
    """The pipeline, once per process, with only the components its recognizer needs enabled."""
    import spacy

    check_model(model)
    nlp = spacy.load(model)
    nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in NEEDED_PIPES])
    return nlp


def entities(texts: list[str], model: str, wanted: tuple[str, ...]) -> list[list[tuple[str, int, int]]]:
    """Per text, its (type, start, end) spans of the `wanted` NER types."""
    nlp = load(model)
    pieces = [(i, offset, piece) for i, text in enumerate(texts) for offset, piece in _chunks(text)]
    found: list[list[tuple[str, int, int]]] = [[] for _ in texts]
    docs = nlp.pipe((piece for _, _, piece in pieces), batch_size=BATCH_SIZE)
    for (i, offset, _), doc in zip(pieces, docs):
        for ent in doc.ents:
            kind = LABELS.get(ent.label_)
            if kind in wanted:
                found[i].append((kind, offset + ent.start_char, offset + ent.end_char))
    return found


def _chunks(text: str) -> list[tuple[int, str]]:
    """The text in pieces of at most `CHUNK_CHARS`, cut after a newline where one is near."""
    pieces, at = [], 0
    while at < len(text):
        end = min(at + CHUNK_CHARS, len(text))
        if end < len(text):
            newline = text.rfind("\n", at, end)
            end = newline + 1 if newline > at else end
        pieces.append((at, text[at:end]))
        at = end
    return pieces
