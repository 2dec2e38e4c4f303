"""`quality`: model quality scores (fastText, Hugging Face classifiers, embedding heads) as columns;
thresholds are applied in `select` (`tasks/quality.py`)."""

from __future__ import annotations

import tasks.quality
from flows.engine.stage import Stage, reads_text
from tasks import models

STAGE = Stage(
    "quality",
    tasks.quality,
    tasks.quality.QualityParams,
    reads=reads_text,
    uses_torch=lambda params: models.uses_torch(params.scorers),
)
