"""JSON for the readers: parsing JSONL records and encoding `meta`, with orjson when installed.

orjson also validates UTF-8 and rejects lone surrogates, so anything it accepts Arrow can store; the
standard library fallback checks the same and gives the same documents, the same `meta` strings and
the same quarantine reasons.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # optional speed-up; the json fallback gives the same documents
    orjson = None

if orjson is not None:
    JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)  # what `loads` raises on bad input

    def loads(line: bytes) -> Any:
        return orjson.loads(line)

    def dumps(obj: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # non-str keys or ints past 64 bits (Parquet rows): json handles both
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
else:
    # JSONDecodeError, UnicodeDecodeError/EncodeError are ValueErrors; nesting past the recursion
    # limit is a RecursionError here where orjson reports a JSONDecodeError
    JSON_ERRORS = (ValueError, RecursionError)

    def _finite(literal: str) -> float:
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"number {literal} is infinite as a double")
        return value

    def _no_constant(name: str) -> float:
        raise ValueError(f"{name} is not JSON")

    def loads(line: bytes) -> Any:
        obj = json.loads(line.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
        if b"\\u" in line:  # a lone surrogate escape decodes but Arrow cannot store it (orjson rejects it)
            json.dumps(obj, ensure_ascii=False).encode()
        return obj

    def dumps(obj: Any) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
