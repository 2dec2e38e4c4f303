"""flows/parallel/dask_fixes.py: dask's expression cache read in one step (the race failed 2 tests of a CI run)."""

import weakref

from dask._expr import SingletonExpr

import flows  # noqa: F401  (applies the fix)


class Leaf(SingletonExpr):
    _parameters = ["value"]


class DiesWhenRead(weakref.WeakValueDictionary):
    """An entry alive at the membership test and dead at the read: what the client thread's release
    of its copy does to the scheduler thread's lookup, on a LocalCluster."""

    def __contains__(self, name):
        return True

    def __getitem__(self, name):
        raise KeyError(name)


def test_an_expression_whose_cached_twin_dies_mid_lookup_is_built_and_cached(monkeypatch):
    monkeypatch.setattr(Leaf, "_instances", DiesWhenRead(), raising=False)

    leaf = Leaf(1)

    assert leaf.value == 1
    assert Leaf._instances.get(leaf._name) is leaf


def test_a_live_twin_is_still_shared():
    first = Leaf(2)

    assert Leaf(2) is first
    assert Leaf(3) is not first
