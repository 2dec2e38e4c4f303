"""`toxicity`: toxicity scores as columns; thresholds are applied in `select` (`tasks/toxicity.py`)."""

from __future__ import annotations

import tasks.toxicity
from flows.engine.stage import Stage
from tasks import models


def reads(params: tasks.toxicity.ToxicityParams) -> tuple[str, ...]:
    """The text, and each document's `lang` when a multi-head scorer covers some languages only."""
    return ("text", "lang") if any(spec.backend == "heads" for spec in params.scorers) else ("text",)


def limits(params: tasks.toxicity.ToxicityParams) -> tuple[str, ...]:
    """What toxicity scoring leaves, for the dataset card: scores are columns; `select` removes."""
    notes = [
        f"scored by {', '.join(f'{spec.name} ({spec.backend})' for spec in params.scorers)}; documents are "
        "removed only by `select.thresholds` on those columns"
    ]
    if any(spec.backend == "profanity" for spec in params.scorers):
        notes.append("the profanity scorer (alt-profanity-check) measures English profanity only")
    for spec in params.scorers:
        if spec.backend == "heads":
            languages = models.read_model_card(models.resolve_model_path(spec.model_path)).get("languages") or []
            if languages:
                notes.append(
                    f"{spec.name} ({spec.model_path}) scores {len(languages)} languages ({', '.join(languages)}); "
                    "documents in any other language have null scores, which `select` bounds keep unless "
                    "their `missing` is `reject`"
                )
    return tuple(notes)


STAGE = Stage(
    "toxicity",
    tasks.toxicity,
    tasks.toxicity.ToxicityParams,
    reads=reads,
    split=True,  # a model's forward passes per document: a large shard's rows go to every worker
    uses_torch=lambda params: models.uses_torch(params.scorers),
    limits=limits,
)
