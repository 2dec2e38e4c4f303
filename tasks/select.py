"""Final selection on score and signal columns, kept apart from scoring.

Scores are computed once by their stages; thresholds live here, so changing one reruns only this
cheap stage (NeMo Curator's score/keep split).
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.contract import StageOutput, split_by_reason
from tasks.errors import ConfigError

VERSION = 1
LICENSE_REASON = "select:license"
UNKNOWN_LICENSE = "unknown"  # what `licenses` calls a document that declares none


class ColumnThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(description="A numeric column written by an earlier stage, e.g. lang_score.")
    min: float | None = Field(None, description="Keep rows with value >= min.")
    max: float | None = Field(None, description="Keep rows with value <= max.")
    # A null is a score nobody computed (a multi-head toxicity model outside its languages), not a bad one.
    missing: Literal["keep", "reject"] = Field("keep", description="Rows whose value is null: kept or rejected.")

    @model_validator(mode="after")
    def _has_a_bound(self) -> ColumnThreshold:
        if self.min is None and self.max is None:
            raise ValueError(f"threshold on {self.column!r} needs min or max")
        return self


class SelectParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: tuple[ColumnThreshold, ...] = Field(
        (), description="Bounds on score columns; a row failing one is rejected as select:<column>."
    )
    licenses: tuple[str, ...] | None = Field(
        None,
        description="Keep only documents whose `license` (extract's column) is one of these ids, e.g. "
        "[cc-by-4.0, cc-by-sa-4.0, cc0-1.0]; `unknown` keeps those that declare none. Others are rejected "
        "as select:license. Null: any licence.",
    )

    def reads(self) -> tuple[str, ...]:
        """The columns select decides on: never the text."""
        return tuple(t.column for t in self.thresholds) + (("license",) if self.licenses is not None else ())


def run(table: pa.Table, params: SelectParams) -> StageOutput:
    reasons = pa.nulls(table.num_rows, pa.string())
    for threshold in reversed(params.thresholds):  # reversed: the first failing threshold names the reason
        if threshold.column not in table.column_names:
            raise ConfigError(
                f"select.thresholds: no column {threshold.column!r} in the data (found {table.column_names})"
            )
        values = table.column(threshold.column).cast(pa.float64())
        ok = pa.array([True] * table.num_rows, pa.bool_()) if table.num_rows else pa.array([], pa.bool_())
        if threshold.min is not None:
            ok = pc.and_kleene(ok, pc.greater_equal(values, threshold.min))
        if threshold.max is not None:
            ok = pc.and_kleene(ok, pc.less_equal(values, threshold.max))
        failing = pc.invert(pc.fill_null(ok, threshold.missing == "keep"))
        reasons = pc.if_else(failing, pa.scalar(f"select:{threshold.column}"), reasons)
    if params.licenses is not None:
        licenses = pc.fill_null(table.column("license"), UNKNOWN_LICENSE)
        refused = pc.invert(pc.is_in(licenses, value_set=pa.array(params.licenses, pa.string())))
        reasons = pc.if_else(pc.and_(refused, pc.is_null(reasons)), pa.scalar(LICENSE_REASON), reasons)
    return split_by_reason(table, reasons)
