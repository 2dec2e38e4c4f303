"""`langid`: fastText language identification per document (`tasks/langid.py`); its model is warmed on
every worker before the first shard."""

from __future__ import annotations

import tasks.langid
from flows.engine.stage import Stage, reads_text
from tasks import models

STAGE = Stage(
    "langid",
    tasks.langid,
    tasks.langid.LangidParams,
    reads=reads_text,
    fasttext_models=lambda params: (params.model_path or models.default_lid_path(),),
)
