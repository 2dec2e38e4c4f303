"""A fix for a race in dask's expression cache that fails runs on a LocalCluster.

`dask._expr.SingletonExpr.__new__` (dask 2026.8.0, and earlier releases with query planning) looks an
expression up in a `WeakValueDictionary` in two steps: `name in cls._instances`, then
`cls._instances[name]`. A LocalCluster runs its scheduler in the client's process, so the scheduler
thread unpickles a submitted graph, building expressions through that lookup, while the client thread
drops its own copies of the same expressions; when the last copy dies between the two steps the
second raises KeyError, and the whole computation fails with "Error during deserialization of the task
graph". It happened in 2 of 644 tests in one CI run (a connected-components loop and a curate run).
`WeakValueDictionary.get` does the lookup in one step and returns None for an entry that has died.
"""

from __future__ import annotations

import inspect
import weakref

from dask._expr import Expr, SingletonExpr

RACY_LOOKUP = "return cls._instances[_name]"


def _singleton_new(cls, *args, _determ_token=None, **kwargs):
    """`SingletonExpr.__new__` with the cache read in one step: same instances, no KeyError."""
    if not hasattr(cls, "_instances"):
        cls._instances = weakref.WeakValueDictionary()
    inst = Expr.__new__(cls, *args, _determ_token=_determ_token, **kwargs)
    if cls.__init__ == object.__init__:
        cached = cls._instances.get(inst._name)
        if cached is not None:
            return cached
    cls._instances[inst._name] = inst
    return inst


def apply() -> None:
    """Replace `SingletonExpr.__new__` only while it still has the two-step lookup: a dask release
    that changes it is left alone."""
    if RACY_LOOKUP in inspect.getsource(SingletonExpr.__new__):
        SingletonExpr.__new__ = _singleton_new
