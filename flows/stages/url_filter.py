"""`url_filter`: documents dropped by their URL alone, before any text is parsed (`tasks/url_filter.py`)."""

from __future__ import annotations

import tasks.url_filter
from flows.engine.stage import Stage

STAGE = Stage("url_filter", tasks.url_filter, tasks.url_filter.UrlFilterParams, reads=lambda params: ("url",))
