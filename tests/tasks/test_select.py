import pyarrow as pa
import pytest
from pydantic import ValidationError

from tasks.errors import ConfigError
from tasks.select import ColumnThreshold, SelectParams, run


def scored() -> pa.Table:
    return pa.table({"id": ["a", "b", "c", "d"], "lang_score": pa.array([0.9, 0.4, None, 0.7], pa.float32())})


def test_no_thresholds_keeps_everything():
    out = run(scored(), SelectParams())

    assert out.kept.num_rows == 4


def test_rows_outside_bounds_are_rejected_with_the_column_as_reason():
    params = SelectParams(thresholds=(ColumnThreshold(column="lang_score", min=0.5, max=0.8, missing="reject"),))

    out = run(scored(), params)

    assert out.kept.column("id").to_pylist() == ["d"]
    assert dict(zip(out.rejected.column("id").to_pylist(), out.rejected.column("reason").to_pylist())) == {
        "a": "select:lang_score",
        "b": "select:lang_score",
        "c": "select:lang_score",
    }


def test_a_row_without_a_value_passes_a_bound_unless_missing_values_are_rejected():
    """A null is a score nobody computed (a toxicity model outside its languages), not a failing one."""
    out = run(scored(), SelectParams(thresholds=(ColumnThreshold(column="lang_score", min=0.5),)))

    assert out.kept.column("id").to_pylist() == ["a", "c", "d"]


def test_first_failing_threshold_names_the_reason():
    table = pa.table({"id": ["a"], "x": [0.0], "y": [0.0]})
    params = SelectParams(thresholds=(ColumnThreshold(column="x", min=1), ColumnThreshold(column="y", min=1)))

    out = run(table, params)

    assert out.rejected.column("reason").to_pylist() == ["select:x"]


def test_unknown_column_is_a_config_error():
    with pytest.raises(ConfigError, match="no column 'quality_score'"):
        run(scored(), SelectParams(thresholds=(ColumnThreshold(column="quality_score", min=0.5),)))


def test_threshold_needs_a_bound():
    with pytest.raises(ValidationError, match="needs min or max"):
        ColumnThreshold(column="lang_score")
