"""The dedup_semantic stage on a real Dask cluster and real Parquet: rewrites that MinHash leaves are
removed across shards, a new threshold or prune reuses the embeddings and the k-means, and a persistent
index compares a new shard with what earlier runs kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tasks.dedup_semantic as sem
from flows.config import load_config
from flows.engine.context import open_context
from flows.stages import STAGES
from flows.stages.dedup_semantic import report_section
from tasks.clusters import INDEX_PREFIX

N_PAIRS, N_DISTINCT = 8, 40


def jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def pairs(shared_data) -> tuple[list[dict], list[dict], list[dict]]:
    """Originals, their rewrites below fuzzy dedup's Jaccard target (so MinHash keeps them), and
    distinct news articles, from the dev sets."""
    texts = {r["id"]: r["text"] for r in map(json.loads, (shared_data / "dedup/near_dup_dev.jsonl").open())}
    truth = [json.loads(line) for line in (shared_data / "dedup/near_dup_dev_truth.jsonl").open()]
    low = [t for t in truth if t["role"] == "near_duplicate" and t["edit"]["jaccard_5gram_to_original"] < 0.5]
    low = low[:N_PAIRS]
    originals = [{"id": f"orig-{i}", "text": texts[t["near_duplicate_of"]]} for i, t in enumerate(low)]
    rewrites = [{"id": f"copy-{i}", "text": texts[t["id"]]} for i, t in enumerate(low)]
    news = [json.loads(line) for line in (shared_data / "web_raw/news_en_dev.jsonl").open()][:N_DISTINCT]
    distinct = [{"id": f"news-{i}", "text": row["text"]} for i, row in enumerate(news)]
    return originals, rewrites, distinct


def run_to_semantic(cfg):
    """Every active stage through dedup_semantic; its ref, its input's ref, and the store."""
    with open_context(cfg, STAGES.warm_models(cfg)) as ctx:
        upstream = None
        for stage in (STAGES["read"], *STAGES.order(cfg)):
            ref = stage.run(ctx, upstream)
            if stage.name == "dedup_semantic":
                section = report_section(ctx, upstream, ref)
                return ref, upstream, ctx.store, section
            upstream = ref
    raise AssertionError("dedup_semantic did not run")


def removed_pairs(store, ref, upstream) -> dict[str, str]:
    """Removed document id -> the id of the kept document it names."""
    ids = {shard.name: store.read_view(upstream.stage, shard, ["id"]).column("id") for shard in upstream.shards}
    out = {}
    for shard in ref.shards:
        rejected = store.read_rejected("dedup_semantic", shard, ["id", "semdup_of"])
        for row in [] if rejected is None else rejected.to_pylist():
            of = row["semdup_of"]
            out[row["id"]] = (
                of if of.startswith(INDEX_PREFIX) else ids[of.split("\t")[0]][int(of.split("\t")[1])].as_py()
            )
    return out


def overrides(tmp_path: Path, dask_cluster, *extra: str) -> list[str]:
    return [
        f"input.paths=[{tmp_path / 'input'}]",
        f"output={tmp_path / 'out'}",
        f"run.cluster.address={dask_cluster.scheduler_address}",
        "dedup_semantic.enabled=true",
        "dedup_semantic.cluster_size=20",  # a few clusters even on this small corpus
        # every page reaches the stage: crawled pages with their menus, which clean's rules would judge
        *(f"clean.{family}.enabled=false" for family in ("gopher_quality", "gopher_repetition", "fineweb", "c4")),
        *extra,
    ]


def test_rewrites_go_across_shards_and_a_new_cut_reuses_embeddings_and_kmeans(pairs, tmp_path, dask_cluster):
    originals, rewrites, distinct = pairs
    (tmp_path / "input").mkdir()
    jsonl(tmp_path / "input/a.jsonl", originals[:4] + rewrites[4:] + distinct[::2])
    jsonl(tmp_path / "input/b.jsonl", rewrites[:4] + originals[4:] + distinct[1::2])

    ref, upstream, store, section = run_to_semantic(load_config(overrides=overrides(tmp_path, dask_cluster)))
    removed = removed_pairs(store, ref, upstream)

    # a rewrite goes and names its original, which stays, whichever shard holds the earlier one
    assert len(removed) >= N_PAIRS - 1
    assert all(removed[k] == k.replace("copy", "orig") or removed[k] == k.replace("orig", "copy") for k in removed)
    assert not any(k.startswith("news") for k in removed)
    assert section.data["removed_copies"] == len(removed) and section.data["pairs"]
    assert {p["reason"] for p in section.data["pairs"]} == {sem.REASON}

    neighbours = sorted((tmp_path / "out/.winnow-store/dedup_semantic.neighbours").iterdir())
    embeddings = sorted((tmp_path / "out/.winnow-store/dedup_semantic.embeddings").iterdir())
    pruned_cfg = load_config(
        overrides=overrides(tmp_path, dask_cluster, "dedup_semantic.prune=density", "dedup_semantic.keep_share=0.5")
    )
    pruned, upstream, store, section = run_to_semantic(pruned_cfg)

    assert sorted((tmp_path / "out/.winnow-store/dedup_semantic.neighbours").iterdir()) == neighbours
    assert sorted((tmp_path / "out/.winnow-store/dedup_semantic.embeddings").iterdir()) == embeddings
    assert pruned.key != ref.key
    kept = sum(store.read_view("dedup_semantic", shard, ["id"]).num_rows for shard in pruned.shards)
    assert kept == pytest.approx(0.5 * (N_DISTINCT + 2 * N_PAIRS), abs=1)
    assert section.data["pruned"] > 0 and section.data["largest_clusters"]


def test_a_new_shard_is_compared_with_what_the_index_kept(pairs, tmp_path, dask_cluster):
    originals, rewrites, distinct = pairs
    (tmp_path / "input").mkdir()
    jsonl(tmp_path / "input/a.jsonl", originals + distinct[:20])
    indexed = [*overrides(tmp_path, dask_cluster), "dedup_semantic.index=main"]
    first, upstream, store, _ = run_to_semantic(load_config(overrides=indexed))
    assert removed_pairs(store, first, upstream) == {}

    jsonl(tmp_path / "input/b.jsonl", rewrites + distinct[20:])
    second, upstream, store, section = run_to_semantic(load_config(overrides=indexed))
    removed = removed_pairs(store, second, upstream)

    assert second.shards[0].key == first.shards[0].key  # the first shard's marks are the earlier run's
    assert len(removed) >= N_PAIRS - 1 and all(k.startswith("copy") for k in removed)
    assert all(of.startswith(INDEX_PREFIX) for of in removed.values())
    assert section.data["pairs"] == []  # kept documents of the index keep no text to show


def test_the_card_states_which_documents_were_compared_under_each_encoder_choice():
    limits = STAGES["dedup_semantic"].limits

    assert "off" in limits(sem.DedupSemanticParams())[0]
    assert "14 other languages" in limits(sem.DedupSemanticParams(enabled=True))[0]
    assert "only English" in limits(sem.DedupSemanticParams(enabled=True, multilingual_encoder=None))[0]
    assert (
        "the other languages with each other"
        in limits(sem.DedupSemanticParams(enabled=True, multilingual_encoder="sentence-transformers/LaBSE"))[0]
    )
