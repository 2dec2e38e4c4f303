"""`toxicity`: toxicity scores as columns; thresholds are applied in `select` (`tasks/toxicity.py`)."""

from __future__ import annotations

import tasks.toxicity
from flows.engine.stage import Stage, reads_text
from tasks import models

STAGE = Stage(
    "toxicity",
    tasks.toxicity,
    tasks.toxicity.ToxicityParams,
    reads=reads_text,
    uses_torch=lambda params: models.uses_torch(params.scorers),
)
