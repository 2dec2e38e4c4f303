"""The per-item time limit: results in order, an item over the limit cut, errors and crashes raised.

The functions run in a real child process, so they are standard-library ones the child can import.
"""

import os
import time

import pytest

from tasks.timelimit import TIMED_OUT, map_with_timeout


def test_results_come_back_in_order_across_batches():
    items = ["a" * 3_000_000, "b", "c" * 3_000_000, "", "d" * 2]  # > 4 MiB: more than one request

    results = map_with_timeout(len, items, timeout_seconds=30.0)

    assert results == [3_000_000, 1, 3_000_000, 0, 2]


def test_item_over_the_limit_is_timed_out_and_the_next_items_still_run():
    results = map_with_timeout(time.sleep, [0, 600, 0, 0], timeout_seconds=0.5)  # 600 s: only a kill ends it

    assert results == [None, TIMED_OUT, None, None]


def test_an_exception_in_the_call_rises_with_the_childs_traceback():
    with pytest.raises(ValueError, match="invalid literal") as info:
        map_with_timeout(int, ["1", "x", "2"], timeout_seconds=30.0)

    assert "time-limit child process" in info.value.__notes__[0]


def test_a_child_that_dies_without_answering_raises():
    with pytest.raises(ChildProcessError, match="exited with code 3"):
        map_with_timeout(os._exit, [3], timeout_seconds=30.0)


def test_no_items_need_no_child():
    assert map_with_timeout(len, [], timeout_seconds=30.0) == []
