"""Worker-side pieces of the global stages, on real Parquet files."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tasks.dedup_exact
from flows.engine.store import ArtifactStore
from flows.stages import STAGES
from flows.stages.dedup_fuzzy import fuzzy_candidates, verify_candidates
from tasks import dedup_fuzzy as fz
from tasks.dedup_exact import CLUSTER_SCHEMA, DedupExactParams, position, signatures

apply_exact_shard = STAGES["dedup_exact"].corpus.clusters.mark  # what a worker runs per shard


def test_exact_marking_of_a_shard_left_empty_by_earlier_stages(tmp_path):
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    pq.write_table(signatures(empty, DedupExactParams(), "s1"), tmp_path / "signatures.parquet")
    (tmp_path / "clusters").mkdir()
    pq.write_table(
        pa.table({"text_hash": ["h"], "keeper": [position("s0", 0)], "size": [2]}, schema=CLUSTER_SCHEMA),
        tmp_path / "clusters" / "part.0.parquet",
    )

    out = apply_exact_shard(
        empty, DedupExactParams(), str(tmp_path), str(tmp_path / "signatures.parquet"), str(tmp_path / "clusters")
    )

    assert (out.kept.num_rows, out.rejected.num_rows) == (0, 0)
    assert "exact_cluster" in out.kept.column_names


def test_exact_marking_reads_only_the_clusters_of_its_shard(tmp_path):
    table = pa.table({"id": ["a", "b"], "text": ["one text", "two text"]})
    hashes = signatures(table, DedupExactParams(), "s1")
    pq.write_table(hashes, tmp_path / "signatures.parquet")
    (tmp_path / "clusters").mkdir()
    first_hash = hashes.column("text_hash")[0].as_py()
    pq.write_table(
        pa.table(
            {"text_hash": [first_hash, "other"], "keeper": [position("s0", 3), position("s0", 4)], "size": [2, 5]},
            schema=CLUSTER_SCHEMA,
        ),
        tmp_path / "clusters" / "part.0.parquet",
    )

    out = apply_exact_shard(
        table, DedupExactParams(), str(tmp_path), str(tmp_path / "signatures.parquet"), str(tmp_path / "clusters")
    )

    assert out.rejected.column("id").to_pylist() == ["a"]
    assert out.kept.column("exact_cluster_size").to_pylist() == [1]
    assert tasks.dedup_exact.REASON == out.rejected.column("reason")[0].as_py()


def _edited_corpus(shards: int, seed: int = 3) -> list[pa.Table]:
    """Base documents and copies with one span of 3 to 45 words replaced (word 5-gram Jaccard from
    ~0.9 down to ~0.4), shuffled over `shards` tables so many pairs cross shards."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(3000)]
    texts = []
    for _ in range(30):
        words = list(rng.choice(vocab, 120))
        texts.append(" ".join(words))
        for span in (3, 15, 25, 35, 45):
            start = int(rng.integers(0, 120 - span))
            texts.append(" ".join(words[:start] + list(rng.choice(vocab, span)) + words[start + span :]))
    texts = [texts[i] for i in rng.permutation(len(texts))]
    return [pa.table({"text": part}) for part in np.array_split(np.array(texts, dtype=object), shards)]


def test_distributed_verification_keeps_exactly_the_in_memory_edges(dask_client, tmp_path):
    params = fz.DedupFuzzyParams(bands=20, rows=5)  # a low threshold: candidates on both sides of it
    sigs = {f"s{i}": fz.signatures(table, params, f"s{i}") for i, table in enumerate(_edited_corpus(shards=4))}
    for kind in ("signatures", "bands"):
        (tmp_path / kind).mkdir()
    for name, shard_sigs in sigs.items():
        pq.write_table(shard_sigs, tmp_path / "signatures" / f"{name}.parquet")
        pq.write_table(fz.band_rows(shard_sigs, params), tmp_path / "bands" / f"{name}.parquet")
    store = ArtifactStore(str(tmp_path))
    all_sigs = pa.concat_tables(sigs.values())
    in_memory = fz.candidate_edges(fz.band_rows(all_sigs, params))
    expected = fz.verify_edges(in_memory, all_sigs, params)

    candidates = fuzzy_candidates(
        dask_client,
        store,
        params,
        sorted(str(p) for p in (tmp_path / "bands").iterdir()),
        [],
        str(tmp_path / "candidates"),
    )
    verified, ends = verify_candidates(
        dask_client,
        store,
        params,
        candidates,
        {name: str(tmp_path / "signatures" / f"{name}.parquet") for name in sigs},
        str(tmp_path / "verified"),
    )

    assert candidates.npartitions > 1 and verified.npartitions > 1
    assert _pairs(dask_client.compute(candidates).result()) == _pairs(in_memory.to_pandas())
    assert _pairs(dask_client.compute(verified).result()) == _pairs(expected.to_pandas())
    assert 0 < expected.num_rows < in_memory.num_rows  # verification kept some edges and cut others
    nodes = set(expected.column("src").to_pylist()) | set(expected.column("dst").to_pylist())
    packed = dict(dask_client.compute(ends).result().itertuples(index=False))  # each member's MinHash, for keepers
    wanted = fz.end_signatures(all_sigs, pa.array(sorted(nodes)), params)
    assert {node: packed[node] for node in nodes} == dict(
        zip(*(wanted.column(c).to_pylist() for c in ("position", "minhash")))
    )


def test_index_entries_are_banded_under_this_runs_layout(dask_client, tmp_path):
    params = fz.DedupFuzzyParams(threshold=0.6)  # not the layout the index batch ran under: it kept only signatures
    tables = _edited_corpus(shards=2)
    new, indexed = fz.signatures(tables[0], params, "s0"), fz.signatures(tables[1], params, f"{fz.INDEX_PREFIX}b1/s1")
    pq.write_table(fz.band_rows(new, params), tmp_path / "s0.bands.parquet")
    pq.write_table(indexed, tmp_path / "s1.docs.parquet")

    candidates = fuzzy_candidates(
        dask_client,
        ArtifactStore(str(tmp_path)),
        params,
        [str(tmp_path / "s0.bands.parquet")],
        [str(tmp_path / "s1.docs.parquet")],
        str(tmp_path / "candidates"),
    )

    expected = _pairs(fz.candidate_edges(fz.band_rows(pa.concat_tables([new, indexed]), params)).to_pandas())
    assert _pairs(dask_client.compute(candidates).result()) == expected
    assert any(dst.startswith(fz.INDEX_PREFIX) or src.startswith(fz.INDEX_PREFIX) for src, dst in expected)


def _pairs(edges) -> set[tuple[str, str]]:
    return set(zip(edges["src"], edges["dst"]))


def test_one_task_and_dask_paths_write_the_same_clusters(shared_data, tmp_path, dask_cluster, monkeypatch):
    """A batch under `IN_MEMORY_BAND_ROWS` is clustered in one task, a larger one by Dask shuffles: on
    the dev set's near-duplicate families spread over three files, both give the same cluster rows."""
    import json

    from flows.config import load_config
    from flows.engine.context import open_context
    from flows.stages import dedup_fuzzy

    rows = [json.loads(line) for line in (shared_data / "dedup/near_dup_dev.jsonl").open()][:240]
    (tmp_path / "input").mkdir()
    for i in range(3):
        lines = "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows[i::3])
        (tmp_path / f"input/part-{i}.jsonl").write_text(lines)

    rules_off = [f"clean.{rules}.enabled=false" for rules in ("gopher_quality", "gopher_repetition", "fineweb", "c4")]

    def clusters(output: str) -> list[dict]:
        cfg = load_config(
            overrides=[
                f"input.paths=[{tmp_path / 'input'}]",
                f"output={tmp_path / output}",
                f"run.cluster.address={dask_cluster.scheduler_address}",
                *rules_off,  # the dev set's pages keep their menus, which clean's rules would judge
            ]
        )
        with open_context(cfg) as ctx:
            upstream = None
            for stage in (STAGES["read"], *STAGES.order(cfg)):
                ref = stage.run(ctx, upstream)
                if stage.name == "dedup_fuzzy":
                    break
                upstream = ref
            clusters_dir = ctx.store.manifest("dedup_fuzzy", ref.key)["clusters"]
            table = pq.read_table(clusters_dir, schema=fz.CLUSTER_SCHEMA)
        return table.sort_by("position").to_pylist()

    in_one_task = clusters("one-task")
    monkeypatch.setattr(dedup_fuzzy, "IN_MEMORY_BAND_ROWS", 0)
    on_dask = clusters("dask")

    assert in_one_task == on_dask
    sizes = {row["keeper"]: row["size"] for row in in_one_task}
    assert len(sizes) >= 10  # near-duplicate families, not a trivial batch
    assert any(row["size"] == 1 for row in in_one_task)  # a member unlike its keeper kept as its own cluster
