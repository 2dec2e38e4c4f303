"""Toxicity scores: one float32 `<name>_score` column per configured scorer; nothing is dropped here.

The default scorer is alt-profanity-check's shipped model (a linear SVM over TF-IDF trained on
labeled tweets), so the demo runs offline; a Hugging Face classifier (toxic-bert, Celadon: `hf`
backend) or a head trained by `tasks/train.py` replaces it in config. Thresholds live in `select`.

Optional span-level mode (Dolma, Soldaini et al. 2024, removes toxic spans rather than documents):
the text is split into paragraphs or sentences, each span is scored by the first scorer, spans at or
above `span_threshold` are cut from `text`, the count is kept as `n_toxic_spans_cut`, and the document
scores are computed on what remains. This is a text transform (like PII redaction in `clean`), so it
runs before the scores it feeds.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks import models
from tasks.contract import StageOutput, split_by_reason
from tasks.models import ProfanitySpec, ScorerSpec, unique_names

VERSION = 1

SPAN_PATTERNS = {
    "paragraph": re.compile(r"[^\n]*\S[^\n]*"),  # a non-blank line
    "sentence": re.compile(r"\S[^\n.!?]*(?:[.!?]+|$)", re.MULTILINE),  # up to terminal punctuation or line end
}


class ToxicityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # alt-profanity-check ships its model in the wheel: the only toxicity model that needs no download.
    scorers: tuple[ScorerSpec, ...] = Field(
        (ProfanitySpec(name="toxicity"),),
        description="Toxicity scorers, each writing <name>_score (float32, higher = more toxic).",
    )
    span_level: bool = Field(
        False, description="Cut toxic spans from text (scored by the first scorer) instead of only scoring documents."
    )
    span_unit: Literal["paragraph", "sentence"] = Field("sentence", description="What a span is in span-level mode.")
    # Dolma v1 removes spans its Jigsaw fastText taggers score >= 0.4 (Soldaini et al. 2024, sec. 3).
    span_threshold: float = Field(0.4, ge=0.0, le=1.0, description="Spans scoring at or above this are cut.")

    _unique = field_validator("scorers")(unique_names)

    @model_validator(mode="after")
    def _spans_need_a_scorer(self) -> ToxicityParams:
        if self.span_level and not self.scorers:
            raise ValueError("toxicity.span_level needs at least one scorer")
        return self


def span_bounds(text: str, unit: str) -> list[tuple[int, int]]:
    return [m.span() for m in SPAN_PATTERNS[unit].finditer(text)]


def cut_spans(text: str, bounds: list[tuple[int, int]], toxic: list[bool]) -> str:
    """`text` without the toxic spans and the whitespace that follows each; the rest is untouched."""
    pieces, pos = [], 0
    for (start, end), cut in zip(bounds, toxic):
        if cut:
            pieces.append(text[pos:start])
            pos = end
            while pos < len(text) and text[pos].isspace():
                pos += 1
    pieces.append(text[pos:])
    return "".join(pieces)


def cut_toxic_spans(texts: list[str], params: ToxicityParams) -> tuple[list[str], list[int]]:
    scorer = models.load_scorer(params.scorers[0])
    bounds = [span_bounds(text, params.span_unit) for text in texts]
    spans = [text[s:e] for text, doc in zip(texts, bounds) for s, e in doc]
    scores = scorer.score(spans) if spans else np.empty(0, np.float32)
    toxic = (scores >= params.span_threshold).tolist()
    out_texts, counts, pos = [], [], 0
    for text, doc in zip(texts, bounds):
        flags = toxic[pos : pos + len(doc)]
        pos += len(doc)
        out_texts.append(cut_spans(text, doc, flags) if any(flags) else text)
        counts.append(sum(flags))
    return out_texts, counts


def run(table: pa.Table, params: ToxicityParams) -> StageOutput:
    if params.span_level:
        texts, counts = cut_toxic_spans(table.column("text").to_pylist(), params)
        index = table.column_names.index("text")
        table = table.set_column(index, table.schema.field("text"), pa.array(texts, pa.string()))
        table = table.append_column(pa.field("n_toxic_spans_cut", pa.int32()), pa.array(counts, pa.int32()))
    scored = models.append_scores(table, params.scorers)
    return split_by_reason(scored, pa.nulls(scored.num_rows, pa.string()))
