"""`extract`: main-content text from the HTML of WARC responses (`tasks/extract.py`)."""

from __future__ import annotations

import tasks.extract
from flows.engine.stage import Stage

STAGE = Stage("extract", tasks.extract, tasks.extract.ExtractParams, reads=lambda params: ("text", "source"))
