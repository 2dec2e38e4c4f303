"""`quality`: model quality scores (fastText, Hugging Face classifiers, embedding heads) as columns;
thresholds are applied in `select` (`tasks/quality.py`)."""

from __future__ import annotations

import tasks.quality
from flows.engine.stage import Stage, reads_text

STAGE = Stage(
    "quality",
    tasks.quality,
    tasks.quality.QualityParams,
    reads=reads_text,
    uses_torch=lambda params: any(spec.uses_torch for spec in params.scorers),
)
