"""`normalize`: Unicode repair, control characters and whitespace (`tasks/normalize.py`)."""

from __future__ import annotations

import tasks.normalize
from flows.engine.stage import Stage, reads_text

STAGE = Stage("normalize", tasks.normalize, tasks.normalize.NormalizeParams, reads=reads_text)
