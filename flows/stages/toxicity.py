"""`toxicity`: toxicity scores as columns; thresholds are applied in `select` (`tasks/toxicity.py`)."""

from __future__ import annotations

import tasks.toxicity
from flows.engine.stage import Stage, reads_text

STAGE = Stage(
    "toxicity",
    tasks.toxicity,
    tasks.toxicity.ToxicityParams,
    reads=reads_text,
    uses_torch=lambda params: any(spec.uses_torch for spec in params.scorers),
)
