"""A cleaning rule: a measure of one document and the test of which values keep it.

Measuring and deciding are apart so that the measures, the costly part, run as a phase keyed without
any threshold (`clean.signals`) and the decision reads only the stored float32 signals (`clean`): a
changed threshold measures nothing again, and every decision can be redone from the output's columns.
The test compares in float32, the precision the signal is stored at, so that it agrees with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel

from tasks.clean.doc import Measure

Scope = Literal["all", "segmented", "stop_words"]


Side = Literal["low", "high"] | None  # a lower bound on the value, an upper bound, or a flag


@dataclass(frozen=True)
class Keeps:
    """Which values keep a document: `test(values, *thresholds)`, the thresholds read from the
    family's params `fields` (which are then decision knobs, not measure knobs); `sides` says which
    bound each field is, for calibration (tasks/clean/calibrate.py)."""

    fields: tuple[str, ...]
    test: Callable[..., np.ndarray]
    sides: tuple[Side, ...]

    def __call__(self, values: np.ndarray, family: BaseModel) -> np.ndarray:
        thresholds = (getattr(family, name) for name in self.fields)
        return self.test(values, *(t if isinstance(t, bool) else np.float32(t) for t in thresholds))


def at_least(field: str) -> Keeps:
    return Keeps((field,), lambda values, low: values >= low, ("low",))


def at_most(field: str) -> Keeps:
    return Keeps((field,), lambda values, high: values <= high, ("high",))


def below(field: str) -> Keeps:
    return Keeps((field,), lambda values, limit: values < limit, ("high",))


def between(low: str, high: str) -> Keeps:
    return Keeps((low, high), lambda values, lo, hi: (values >= lo) & (values <= hi), ("low", "high"))


@dataclass(frozen=True)
class Rule:
    """One rule of a family. `scope` says which languages it judges: "all"; "segmented", not the
    languages written without spaces, whose words are characters (tasks/clean/doc.py), for rules
    that need real words: word lengths, word n-grams; "stop_words", languages that have a stop-word
    list. Where a rule does not judge a language it is not measured either: its signal is null."""

    measure: Measure
    keeps: Keeps
    scope: Scope = "all"
