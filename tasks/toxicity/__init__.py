"""Toxicity scores: one float32 `<name>_score` column per configured scorer; nothing is dropped here.

The default scorer is `winnow:toxicity-use`, the packaged multilingual model (the `heads` backend):
`toxicity_score` plus one column per Celadon axis (`axes.py`), from heads over multilingual USE
embeddings, offline, in USE's 15 languages. alt-profanity-check (`profanity`) is the cheap
English-only option; a Hugging Face classifier (toxic-bert, Celadon: `hf`) or a head trained by
`tasks/train.py` replaces either in config. Thresholds live in `select`.

Optional span-level mode (Dolma, Soldaini et al. 2024, removes toxic spans rather than documents):
the text is split into paragraphs or sentences, each span is scored by the first scorer, spans at or
above `span_threshold` are cut from `text`, the count is kept as `n_toxic_spans_cut`, and the document
scores are computed on what remains. This is a text transform (like PII redaction in `clean`), so it
runs before the scores it feeds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks import models
from tasks.contract import StageOutput, split_by_reason
from tasks.errors import ConfigError
from tasks.models import HeadsSpec, ScorerSpec, unique_names
from tasks.text import span_bounds

VERSION = 1


class ToxicityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The packaged model, not alt-profanity-check: on hate speech it ranks at 0.87-0.97 ROC-AUC on test
    # sets it never saw, in six languages, where alt-profanity-check is at chance; it costs far more
    # per document (docs/benchmarks.md, "Toxicity heads", has both figures).
    scorers: tuple[ScorerSpec, ...] = Field(
        (HeadsSpec(name="toxicity", model_path="winnow:toxicity-use"),),
        description="Toxicity scorers, each writing <name>_score (float32, higher = more toxic).",
    )
    span_level: bool = Field(
        False, description="Cut toxic spans from text (scored by the first scorer) instead of only scoring documents."
    )
    span_unit: Literal["paragraph", "sentence"] = Field("sentence", description="What a span is in span-level mode.")
    # Dolma v1 removes spans its Jigsaw fastText taggers score >= 0.4 (Soldaini et al. 2024, sec. 3).
    span_threshold: float = Field(0.4, ge=0.0, le=1.0, description="Spans scoring at or above this are cut.")
    span_heads: tuple[str, ...] = Field(
        (),
        description="A multi-head first scorer: the heads whose score cuts a span (e.g. [violence]); "
        "empty: its first head.",
    )

    _unique = field_validator("scorers")(unique_names)

    @model_validator(mode="after")
    def _spans_need_a_scorer(self) -> ToxicityParams:
        if self.span_level and not self.scorers:
            raise ValueError("toxicity.span_level needs at least one scorer")
        return self


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


def span_scores(spans: list[str], params: ToxicityParams) -> np.ndarray:
    """The first scorer's score of each span; a multi-head scorer's highest over `span_heads`."""
    scorer = models.load_scorer(params.scorers[0])
    if not isinstance(scorer, models.HeadsScorer):
        return scorer.score(spans) if spans else np.empty(0, np.float32)
    unknown = sorted(set(params.span_heads) - set(scorer.heads))
    if unknown:
        raise ConfigError(f"toxicity.span_heads: {unknown} are not heads of the first scorer ({list(scorer.heads)})")
    columns = [scorer.heads.index(head) for head in params.span_heads] or [0]
    scores = scorer.score_spans(spans) if spans else np.empty((0, len(scorer.heads)), np.float32)
    return scores[:, columns].max(axis=1, initial=0.0)


def cut_toxic_spans(
    texts: list[str], params: ToxicityParams, langs: list[str | None] | None = None
) -> tuple[list[str], list[int]]:
    """Texts with their toxic spans cut, and how many each lost; a document a multi-head scorer does not
    cover (`lang` outside its languages) is left whole."""
    scorer = models.load_scorer(params.scorers[0])
    covered = getattr(scorer, "languages", None)
    bounds = [
        span_bounds(text, params.span_unit) if not (covered and langs and langs[i] not in covered) else []
        for i, text in enumerate(texts)
    ]
    spans = [text[s:e] for text, doc in zip(texts, bounds) for s, e in doc]
    toxic = (span_scores(spans, params) >= params.span_threshold).tolist()
    out_texts, counts, pos = [], [], 0
    for text, doc in zip(texts, bounds):
        flags = toxic[pos : pos + len(doc)]
        pos += len(doc)
        out_texts.append(cut_spans(text, doc, flags) if any(flags) else text)
        counts.append(sum(flags))
    return out_texts, counts


def run(table: pa.Table, params: ToxicityParams) -> StageOutput:
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else None
    if params.span_level:
        texts, counts = cut_toxic_spans(table.column("text").to_pylist(), params, langs)
        index = table.column_names.index("text")
        table = table.set_column(index, table.schema.field("text"), pa.array(texts, pa.string()))
        table = table.append_column(pa.field("n_toxic_spans_cut", pa.int32()), pa.array(counts, pa.int32()))
    scored = models.append_scores(table, params.scorers, langs=langs)
    return split_by_reason(scored, pa.nulls(scored.num_rows, pa.string()))
