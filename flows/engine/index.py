"""The persistent index of a corpus-wide stage: what earlier runs decided, so a re-curation decides only new
shards (for dedup: dedups them against everything kept before).

Layout, `<store>/<stage>/index/<name>/<batch>/`, one batch per run that added shards:

    <shard>.<signature_file>.parquet   the kept documents' signature rows, positions prefixed
                                       with `prefix(batch)` (written by the run, before the commit)
    _shards.json                       a record per shard the batch decided (`IndexRecord`)
    _SUCCESS                           written last: a batch without it is ignored

A shard decided once keeps its marks: a later run decides only the shards no batch decided with the
same params, against the kept documents of every batch, except those that came from an input file
this run decides again (a modified file must not meet its own earlier copy). No Prefect, no Dask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pydantic import BaseModel

from flows.engine.store import ArtifactStore, StageRef, digest
from tasks.clusters import INDEX_PREFIX

RECORDS = "_shards.json"
SUCCESS = "_SUCCESS"


@dataclass(frozen=True)
class IndexRecord:
    """How a batch decided one shard: enough to redo its marks if the shard's files are deleted."""

    path: str  # the input file it came from
    upstream: str  # the key of the shard the dedup read
    params: str  # digest of the stage's params
    marked: str  # the key of the marked shard
    salt: str  # the batch's key (its clusters' folder)
    shard_salt: str  # digest of the cluster rows touching the shard
    clusters: str
    signatures: str


@dataclass(frozen=True)
class IndexEntry:
    """One shard's kept signature rows in a committed batch."""

    batch: str
    shard: str
    path: str

    @property
    def name(self) -> str:
        """The shard name its prefixed positions carry (`tasks.dedup_fuzzy.position_shards`)."""
        return f"{prefix(self.batch)}{self.shard}"


def prefix(batch: str) -> str:
    return f"{INDEX_PREFIX}{batch}/"


class CorpusIndex:
    """One named index of one dedup stage; the committed batches are read once, on first use."""

    def __init__(self, store: ArtifactStore, stage: str, name: str, params: BaseModel, signature_file: str):
        self.store = store
        self.root = f"{store.root}/{stage}/index/{name}"
        self.params = digest(params)
        self.signature_file = signature_file
        self._batches: dict[str, dict[str, IndexRecord]] | None = None

    @property
    def batches(self) -> dict[str, dict[str, IndexRecord]]:
        """Committed batches: batch -> shard name -> record."""
        if self._batches is None:
            fs = self.store.fs
            names = (
                sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(self.root, detail=False))
                if fs.exists(self.root)
                else []
            )
            self._batches = {
                batch: {
                    shard: IndexRecord(**record)
                    for shard, record in self.store.read_json(f"{self.batch_dir(batch)}/{RECORDS}").items()
                }
                for batch in names
                if fs.exists(f"{self.batch_dir(batch)}/{SUCCESS}")
            }
        return self._batches

    def batch_dir(self, batch: str) -> str:
        return f"{self.root}/{batch}"

    def entry_path(self, batch: str, shard: str) -> str:
        return f"{self.batch_dir(batch)}/{shard}.{self.signature_file}.parquet"

    def split(self, upstream: StageRef) -> tuple[dict[int, IndexRecord], StageRef]:
        """The upstream shards a batch decided with these params (position -> record), and the rest."""
        records = {
            (name, record.upstream): record
            for shards in self.batches.values()
            for name, record in shards.items()
            if record.params == self.params
        }
        decided = {i: records[(s.name, s.key)] for i, s in enumerate(upstream.shards) if (s.name, s.key) in records}
        new = tuple(s for i, s in enumerate(upstream.shards) if i not in decided)
        return decided, StageRef(upstream.stage, digest("undecided", [s.key for s in new]), new)

    def entries(self, redone_paths: set[str]) -> list[IndexEntry]:
        """The entries shards decided now are checked against: all but those of input files decided again."""
        return [
            IndexEntry(batch, shard, self.entry_path(batch, shard))
            for batch, shards in self.batches.items()
            for shard, record in sorted(shards.items())
            if record.path not in redone_paths
        ]

    def commit(self, batch: str, records: dict[str, IndexRecord]) -> None:
        """Make a batch visible: its entries are written, so its records, then `_SUCCESS`, last.

        Two runs committing the same batch write the same records (the batch is their key), and
        different batches never share a file, so concurrent commits need no lock.
        """
        self.store.write_json(f"{self.batch_dir(batch)}/{RECORDS}", {name: asdict(r) for name, r in records.items()})
        self.store.fs.touch(f"{self.batch_dir(batch)}/{SUCCESS}")
        self.batches[batch] = dict(records)
