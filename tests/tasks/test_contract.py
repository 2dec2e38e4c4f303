"""RecomputedOnLoad: params dumped with their file fingerprint load back, the fingerprint read afresh."""

import pytest

from tasks.decontam.benchmarks import BenchmarkSpec
from tasks.models import FastTextSpec
from tasks.url_filter import UrlFilterParams

# class, its fingerprint field, params naming the file at `path`
FINGERPRINTED = [
    (FastTextSpec, "model_fingerprint", lambda path: {"name": "toxicity", "model_path": path, "label": "toxic"}),
    (UrlFilterParams, "blocklist_sha256", lambda path: {"blocklist_path": path}),
    (BenchmarkSpec, "fingerprint", lambda path: {"name": "gsm8k", "layout": "gsm8k", "path": path}),
]


@pytest.mark.parametrize(("cls", "field", "params"), FINGERPRINTED, ids=[c.__name__ for c, _, _ in FINGERPRINTED])
def test_dump_loads_back_and_recomputes_the_fingerprint(tmp_path, cls, field, params):
    path = tmp_path / "file"
    path.write_text("first version\n")
    dumped = cls.model_validate(params(str(path))).model_dump()
    path.write_text("second, longer version\n")

    loaded = cls.model_validate(dumped)

    assert dumped[field] is not None
    assert getattr(loaded, field) == getattr(cls.model_validate(params(str(path))), field) != dumped[field]
