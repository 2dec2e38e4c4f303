"""Documents + attributes: what each stage's shard stores, and the views read back from the layers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import BaseModel

from flows.engine.executor import ShardJob, run_shard
from flows.engine.layers import ROW
from flows.engine.store import ArtifactStore, InputFile, ShardRef
from tasks.contract import StageOutput, split_by_reason
from tasks.errors import ConfigError, StoreError

TEXTS = ["alpha one", "beta two", "gamma three", "delta four"]


class NoParams(BaseModel):
    pass


def read_docs(path: str, relpath: str, params: NoParams) -> Iterator[tuple[pa.Table, pa.Table]]:
    docs = pa.table({"id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS, "url": [None] * len(TEXTS)})
    yield docs, pa.table({"reason": pa.array([], pa.string())})


def shout_and_drop_delta(table: pa.Table, params: NoParams) -> StageOutput:
    """Rewrites one text, drops one document, adds a column."""
    texts = [t.upper() if t.startswith("beta") else t for t in table.column("text").to_pylist()]
    table = table.set_column(table.column_names.index("text"), "text", pa.array(texts))
    table = table.append_column("n_chars", pc.utf8_length(table.column("text")))
    reasons = ["toy:delta" if t.startswith("delta") else None for t in texts]
    return split_by_reason(table, pa.array(reasons, pa.string()))


def score(table: pa.Table, params: NoParams) -> StageOutput:
    out = table.append_column("toy_score", pa.array([0.5] * table.num_rows, pa.float32()))
    return split_by_reason(out, pa.nulls(out.num_rows, pa.string()))


def keep_if_scored(table: pa.Table, params: NoParams) -> StageOutput:
    keep = pc.greater(table.column("toy_score"), 0.1)
    return split_by_reason(table, pc.if_else(keep, pa.scalar(None, pa.string()), "select:toy_score"))


class Chain:
    """Stages run one after another on one shard, straight through `run_shard` (no cluster)."""

    def __init__(self, tmp_path: Path):
        self.store = ArtifactStore(str(tmp_path / "store"))
        self.reads: list[str] = []
        self.upstream: tuple[str, ShardRef] | None = None

    def run(self, stage: str, fn, reads=None) -> ShardRef:
        shard = ShardRef("part-0", f"{stage}-key")
        source = (
            InputFile("unused", "part-0", "fp")
            if self.upstream is None
            else self.store.shard_dir(self.upstream[0], self.upstream[1].key)
        )
        run_shard(ShardJob(self.store.url, stage, shard, source, fn, NoParams(), (), reads))
        self.upstream = (stage, shard)
        return shard

    def files(self, stage: str, shard: ShardRef) -> set[str]:
        return {p.name for p in Path(self.store.shard_dir(stage, shard.key)).iterdir()}


@pytest.fixture
def chain(tmp_path) -> Chain:
    return Chain(tmp_path)


def test_a_view_joins_each_column_from_the_layer_that_wrote_it(chain):
    chain.run("read", read_docs)
    shout = chain.run("shout", shout_and_drop_delta, reads=("text",))
    scored = chain.run("score", score, reads=())

    view = chain.store.read_view("score", scored)

    assert view.column_names == ["id", "text", "url", "n_chars", "toy_score"]
    assert view.column("id").to_pylist() == ["d0", "d1", "d2"]
    assert view.column("text").to_pylist() == ["alpha one", "BETA TWO", "gamma three"]
    assert view.column("n_chars").to_pylist() == [9, 8, 11]
    # text is stored once per version: the base holds every text, `shout` only the one it changed,
    # and a stage that only scores writes no text at all
    assert chain.store.read_table(f"{chain.store.shard_dir('shout', shout.key)}/text.parquet").num_rows == 1
    assert chain.files("score", scored) == {"kept.parquet", "stats.json"}
    assert chain.store.read_table(chain.store.kept_path("score", scored)).column_names == [ROW, "toy_score"]


def test_a_stage_reading_only_scores_never_opens_a_text_file(chain, monkeypatch):
    chain.run("read", read_docs)
    chain.run("shout", shout_and_drop_delta, reads=("text",))
    chain.run("score", score, reads=())
    opened = []
    read_table = ArtifactStore.read_table
    monkeypatch.setattr(
        ArtifactStore,
        "read_table",
        lambda self, path, columns=None: opened.append(path) or read_table(self, path, columns),
    )

    selected = chain.run("select", keep_if_scored, reads=("toy_score",))

    assert opened and not any(path.endswith("text.parquet") for path in opened)
    assert chain.store.shard_stats("select", selected)["text_bytes_in"] == 0
    assert chain.store.read_view("select", selected, ["id"]).column("id").to_pylist() == ["d0", "d1", "d2"]


def test_rejected_documents_read_back_as_their_stage_saw_them(chain):
    chain.run("read", read_docs)
    shout = chain.run("shout", shout_and_drop_delta, reads=("text",))

    rejected = chain.store.read_rejected("shout", shout)

    assert rejected.to_pylist() == [
        {"id": "d3", "text": "delta four", "url": None, "reason": "toy:delta", "n_chars": 10},
    ]
    assert chain.store.read_rejected("shout", shout, ["id", "reason"]).column_names == ["id", "reason"]


def scan(table: pa.Table, params: NoParams) -> pa.Table:
    return table.append_column("windows", pa.array([1] * table.num_rows))


def detect(table: pa.Table, params: NoParams) -> StageOutput:
    out = table.append_column("hits", table.column("windows")).drop_columns(["windows"])
    return split_by_reason(out, pa.nulls(out.num_rows, pa.string()))


def test_a_column_a_stage_consumes_leaves_the_view(chain):
    """`decontam.scan`'s windows are read by `decontam`, which drops them: later views lack them."""
    chain.run("read", read_docs)
    chain.run("scan", scan, reads=())
    detected = chain.run("detect", detect, reads=("windows",))

    assert chain.store.read_view("detect", detected).column_names == ["id", "text", "url", "hits"]


@pytest.mark.parametrize("bad", ["lost_row", "shadows"])
def test_a_stage_breaking_the_contract_is_refused(chain, bad):
    def lost_row(table, params):
        return split_by_reason(table.drop_columns([ROW]), pa.nulls(table.num_rows, pa.string()))

    def shadows(table, params):
        return table.append_column("url", pa.array(["x"] * table.num_rows))

    chain.run("read", read_docs)
    with pytest.raises(StoreError, match=ROW if bad == "lost_row" else "already have: url"):
        chain.run("bad", {"lost_row": lost_row, "shadows": shadows}[bad], reads=("text",))


def test_a_stage_reading_a_column_the_documents_lack_names_it_and_the_columns(chain):
    chain.run("read", read_docs)
    with pytest.raises(
        ConfigError, match=r"reads 'quality_score', which the documents do not have \(columns: id, text, url\)"
    ):
        chain.run("select", keep_if_scored, reads=("quality_score",))
