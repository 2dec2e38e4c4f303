"""`read`: input files streamed as bounded parts, each a shard; malformed records quarantined (`tasks/read/`)."""

from __future__ import annotations

import tasks.read
from flows.engine.stage import Phase, Stage
from flows.options import InputConfig

STAGE = Stage(
    "read",
    tasks.read,
    InputConfig,
    section="input",
    params_of=InputConfig.read_params,
    phases=(Phase("read", tasks.read.read_parts),),  # bounded parts, streamed (flows/engine/executor.py read_input)
)
