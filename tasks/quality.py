"""Model quality scores: one float32 `<name>_score` column per configured scorer; nothing is dropped.

The heuristic quality signals (Gopher, C4, FineWeb rules) are columns `clean` already wrote; this stage
adds model judgements beside them: DCLM's fastText classifier (Li et al. 2024, "DataComp-LM"),
FineWeb-Edu's regression head (Penedo et al. 2024) or a head trained by `tasks/train.py`. Scores are
computed once here; thresholds live in `select`, so changing one reruns only `select` (NeMo Curator's
score/keep split). With no scorer configured the stage passes documents through unchanged.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks import models
from tasks.contract import StageOutput, split_by_reason
from tasks.models import ScorerSpec, unique_names

VERSION = 1


class QualityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Off by default: the offline demo has no quality model; `winnow train` writes one to plug in here.
    scorers: tuple[ScorerSpec, ...] = Field(
        (),
        description="Model scorers, each writing <name>_score (float32, higher = more <name>). "
        "Backends: fasttext, hf, embedding_head, profanity.",
    )

    _unique = field_validator("scorers")(unique_names)


def run(table: pa.Table, params: QualityParams) -> StageOutput:
    scored = models.append_scores(table, params.scorers)
    return split_by_reason(scored, pa.nulls(scored.num_rows, pa.string()))
