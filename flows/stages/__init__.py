"""The stages of the `curate` flow, in flow order: the one place that lists them.

Each stage is one module here, named for it, declaring it to the engine (`flows.engine.stage.Stage`:
its `tasks/` module, config section, phases, columns read, corpus-wide steps and index, report
section); its logic is `tasks/<stage>`. The flow, the config tree, key planning, deployments, the
report and the "why" of each funnel row all read stages from this registry and name none.
"""

from __future__ import annotations

from flows.engine.stage import Registry
from flows.stages import (
    clean,
    decontam,
    dedup_exact,
    dedup_fuzzy,
    dedup_semantic,
    extract,
    langid,
    normalize,
    pii,
    quality,
    read,
    select,
    toxicity,
    url_filter,
)

STAGES = Registry(
    (
        read.STAGE,
        url_filter.STAGE,
        extract.STAGE,
        normalize.STAGE,
        langid.STAGE,
        clean.STAGE,
        pii.STAGE,
        dedup_exact.STAGE,
        dedup_fuzzy.STAGE,
        dedup_semantic.STAGE,
        quality.STAGE,
        toxicity.STAGE,
        decontam.STAGE,
        select.STAGE,
    )
)
