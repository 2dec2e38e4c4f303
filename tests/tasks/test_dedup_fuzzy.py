import collections
import itertools
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from pydantic import ValidationError

from tasks import dedup_fuzzy as fz
from tasks.dedup_exact import position
from tasks.dedup_fuzzy import s_curve
from tasks.errors import InputError

P = fz.DedupFuzzyParams()


# ---------------------------------------------------------------- params and shingling


def test_default_target_is_0_7_with_a_layout_derived_for_recall_there():
    assert (P.shingle, P.ngram, P.num_perm, P.threshold, P.verify) == ("word", 5, 112, 0.7, True)
    assert P.layout == (17, 4)
    assert s_curve.candidate_probability(0.7, *P.layout) >= s_curve.CANDIDATE_RECALL
    assert fz.removal_probability(0.7, P) >= 0.95


@pytest.mark.parametrize("threshold", [0.5, 0.6, 0.72, 0.8, 0.9, 0.95])
def test_every_derived_layout_removes_95_percent_of_pairs_at_its_threshold(threshold):
    params = fz.DedupFuzzyParams(threshold=threshold)
    bands, rows = params.layout

    assert bands * rows <= params.num_perm
    assert fz.removal_probability(threshold, params) >= 0.95
    assert fz.removal_probability(threshold - 0.2, params) < 0.02


def test_derived_layout_finds_the_pairs_at_the_threshold_that_datasketchs_optimiser_misses():
    datasketch = _optimal_param(0.7, 112, 0.5, 0.5)  # weighs missed and false pairs alike: midpoint at 0.7

    assert s_curve.candidate_probability(0.7, *P.layout) >= 0.99
    assert s_curve.candidate_probability(0.7, *datasketch) < 0.6


def test_fineweb_mode_is_14_bands_of_8_without_verification():
    fineweb = fz.DedupFuzzyParams(bands=14, rows=8, verify=False)

    assert fineweb.layout == (14, 8)
    for jaccard in (0.3, 0.5, 0.72, 0.9):
        assert fz.removal_probability(jaccard, fineweb) == pytest.approx(1 - (1 - jaccard**8) ** 14)


def test_set_bands_and_rows_verify_at_the_threshold():
    params = fz.DedupFuzzyParams(bands=14, rows=8, threshold=(1 / 14) ** (1 / 8))

    at_target = params.threshold
    kept_at_target = fz.removal_probability(at_target, params) / s_curve.candidate_probability(at_target, 14, 8)

    assert params.layout == (14, 8)
    assert s_curve.VERIFY_RECALL <= kept_at_target < 0.99
    assert params.min_matches < params.threshold * params.num_perm  # under the estimate's spread, not at its centre


def test_s_curve_matches_a_monte_carlo_of_agreeing_minhash_values():
    rng = np.random.default_rng(0)
    bands, rows = P.layout

    for jaccard in (0.6, 0.65, 0.7):
        agree = rng.random((40_000, P.num_perm)) < jaccard
        candidate = agree[:, : bands * rows].reshape(-1, bands, rows).all(axis=2).any(axis=1)
        removed = candidate & (agree.sum(axis=1) >= P.min_matches)

        assert fz.removal_probability(jaccard, P) == pytest.approx(removed.mean(), abs=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bands": 20, "rows": 8},
        {"threshold": 0.8, "bands": 10},
        {"rows": 8},
        {"verify": False},
        {"threshold": 0.02},
        {"bandz": 3},
    ],
)
def test_inconsistent_params_fail_to_load(kwargs):
    with pytest.raises(ValidationError):
        fz.DedupFuzzyParams(**kwargs)


def test_reason_code_is_family_colon_measure():
    assert re.fullmatch(r"^[a-z0-9_]+:[a-z0-9_]+$", fz.REASON)


def test_normalize_lowercases_strips_punctuation_and_folds_whitespace():
    texts = pa.array(["Hello,   World!\n\tIt's  «fine» — 100%"])

    assert fz.normalize(texts).to_pylist() == ["hello world it s fine 100"]


def test_word_shingles_are_the_distinct_word_5_grams():
    text = "the cat sat on the mat and the cat sat on the mat again, said the cat"
    words = fz.normalize(pa.array([text]))[0].as_py().split()
    grams = {tuple(words[i : i + 5]) for i in range(len(words) - 4)}

    hashes, offsets = fz.shingle_hashes(pa.array([text]), P)

    assert offsets.tolist() == [0, len(words) - 4]
    assert len(set(hashes.tolist())) == len(grams)


def test_short_document_is_one_shingle_and_empty_one_has_none():
    texts = pa.chunked_array([["two words"], ["...!", "two   WORDS"]])

    hashes, offsets = fz.shingle_hashes(texts, P)

    assert offsets.tolist() == [0, 1, 1, 2]
    assert hashes[0] == hashes[1]


def test_char_shingles_see_characters_not_words():
    params = fz.DedupFuzzyParams(shingle="char", ngram=3)

    hashes, offsets = fz.shingle_hashes(pa.array(["abcab", "Ab-C"]), params)

    assert offsets.tolist() == [0, 3, 5]  # "abcab": abc bca cab; "ab c": "ab ", "b c"
    assert len(set(hashes[:3].tolist())) == 3


def test_signatures_equal_datasketch_fed_one_shingle_hash_at_a_time():
    texts = pa.array(["one two three four five six seven", "a b", "", "x y z w v u t s r q"])
    hashes, offsets = fz.shingle_hashes(texts, P)

    matrix = fz.minhash_matrix(hashes, offsets, P)

    for row in range(len(texts)):
        reference = MinHash(num_perm=112, seed=1, hashfunc=int, scheme="affine32")
        reference.update_batch(hashes[offsets[row] : offsets[row + 1]].tolist())
        assert (matrix[row] == reference.hashvalues).all()


def test_signature_schema_does_not_depend_on_data():
    empty = fz.signatures(pa.table({"text": pa.array([], pa.string())}), P, "s0")
    full = fz.signatures(pa.table({"text": ["some text here"]}), P, "s0")

    assert empty.schema == full.schema == fz.signature_schema(P)
    assert fz.band_rows(empty, P).schema == fz.band_rows(full, P).schema == fz.BAND_SCHEMA
    assert full.column("position").to_pylist() == [position("s0", 0)]


def test_document_without_shingles_takes_no_part_in_lsh():
    sigs = fz.signatures(pa.table({"text": ["!!!", "?? ..", "real words here"]}), P, "s0")

    bands = fz.band_rows(sigs, P)

    assert set(bands.column("position").to_pylist()) == {position("s0", 2)}
    assert bands.num_rows == P.layout[0]


# ---------------------------------------------------------------- LSH accuracy on real documents


def _variant(text: str, rng: np.random.Generator) -> str:
    """Delete or insert 5-15% of the words, in one to three places (an edited paragraph, header, footer)."""
    words = text.split()
    k = max(1, round(len(words) * rng.uniform(0.05, 0.15)))
    spans = int(rng.integers(1, 4))
    for s in range(spans):
        m = k // spans + (s < k % spans)
        i = int(rng.integers(0, max(1, len(words) - m)))
        if rng.random() < 0.5:
            del words[i : i + m]
        else:
            words[i:i] = [words[int(j)] for j in rng.integers(0, len(words), m)]
    return " ".join(words)


@pytest.fixture(scope="module")
def planted(shared_data):
    """300 real 2,000-char documents, 150 planted variants; exact word-5-gram Jaccard of every pair."""
    docs = []
    with (shared_data / "web_raw" / "html_pages_wetlike.jsonl").open() as f:
        for line in f:
            text = json.loads(line)["text"]
            if len(text) >= 2500:
                docs.append(text[:2000])
            if len(docs) == 300:
                break
    rng = np.random.default_rng(7)
    family = list(range(len(docs)))
    for i in range(0, 300, 2):
        docs.append(_variant(docs[i], rng))
        family.append(i)
    table = pa.table({"text": docs})
    words = [text.split() for text in fz.normalize(table.column("text")).to_pylist()]
    grams = [set(zip(*(w[j:] for j in range(5)))) for w in words]
    shared = collections.Counter()
    index = collections.defaultdict(list)
    for doc, doc_grams in enumerate(grams):
        for gram in doc_grams:
            index[gram].append(doc)
    for holders in index.values():
        shared.update(itertools.combinations(holders, 2))
    jaccard = {pair: n / len(grams[pair[0]] | grams[pair[1]]) for pair, n in shared.items()}
    return table, family, jaccard


def _pairs(labels: pa.Table, rows: dict[str, int]) -> set[tuple[int, int]]:
    members = collections.defaultdict(list)
    for node, component in zip(labels.column("position").to_pylist(), labels.column("component").to_pylist()):
        members[component].append(rows[node])
    return {pair for m in members.values() for pair in itertools.combinations(sorted(m), 2)}


def test_lsh_finds_planted_near_duplicates_with_the_defaults(planted):
    table, family, jaccard = planted
    sigs = fz.signatures(table, P, "s0")
    rows = {p: i for i, p in enumerate(sigs.column("position").to_pylist())}
    # truth: planted (base, variant) pairs and natural near-duplicates of the real pages
    truth = {(a, b) for (a, b), j in jaccard.items() if family[a] == family[b] or j >= 0.5}
    positives = {pair for pair, j in jaccard.items() if j >= 0.8}

    edges = fz.candidate_edges(fz.band_rows(sigs, P))
    candidates = _pairs(fz.label_components(edges), rows)
    found = _pairs(fz.label_components(fz.verify_edges(edges, sigs, P)), rows)

    candidate_recall = len(positives & candidates) / len(positives)
    precision, recall = len(found & truth) / len(found), len(found & positives) / len(positives)
    print(
        f"pairs J>=0.8: {len(positives)}; candidate recall {candidate_recall:.3f}; "
        f"clusters: precision {precision:.3f}, recall {recall:.3f} ({len(found)} pairs)"
    )
    # 17 x 4 misses a J=0.8 pair with probability (1-0.8**4)**17 = 0.013%, a J=0.9 pair with 1e-8
    assert {pair for pair, j in jaccard.items() if j >= 0.9} <= candidates
    assert candidate_recall >= 0.95
    assert precision >= 0.99
    assert recall >= 0.95


def _removed_share(texts: list[str], params: fz.DedupFuzzyParams) -> float:
    """The stage in memory on (original, variant) pairs in row order: the share of variants removed."""
    sigs = fz.signatures(pa.table({"text": texts}), params, "s0")
    edges = fz.candidate_edges(fz.band_rows(sigs, params))
    edges = fz.verify_edges(edges, sigs, params) if params.verify else edges
    clusters = fz.choose_keepers(fz.cluster_members(fz.label_components(edges), sigs, params), params)
    removed = pc.not_equal(clusters.column("position"), clusters.column("keeper"))
    return pc.sum(removed).as_py() / (len(texts) // 2)


def test_pairs_at_0_72_jaccard_are_removed_under_the_default():
    texts = []
    for pair in range(40):  # 200 distinct words; the variant replaces a 27-word span: 5-gram Jaccard 165/227
        words = [f"w{pair}x{i}" for i in range(200)]
        start = 5 + 7 * pair % 140  # inside the text: the span ends 27 + 4 shingles
        texts += [
            " ".join(words),
            " ".join(words[:start] + [f"new{pair}x{i}" for i in range(27)] + words[start + 27 :]),
        ]
    assert fz.shingle_jaccard(texts[::2], texts[1::2], P) == [pytest.approx(165 / 227)] * 40

    default = _removed_share(texts, P)
    fineweb = _removed_share(texts, fz.DedupFuzzyParams(bands=14, rows=8, verify=False))

    assert default >= 0.9  # S-curve at 0.727: 0.99
    assert fineweb < 0.8  # 14 x 8: 0.68


# ---------------------------------------------------------------- candidate edges and verification


def _buckets(rows: list[tuple[int, int, str]], chunks: int = 1) -> pa.Table:
    table = pa.Table.from_pylist([{"band": b, "band_hash": h, "position": p} for b, h, p in rows], fz.BAND_SCHEMA)
    return pa.concat_tables([table.slice(i, 1) for i in range(table.num_rows)]) if chunks > 1 else table


def test_buckets_become_distinct_star_edges_to_their_smallest_position():
    buckets = _buckets(
        [(0, 7, "c"), (0, 7, "a"), (0, 7, "b"), (1, 7, "c"), (1, 7, "a"), (1, 9, "d"), (0, 9, "e")], chunks=7
    )

    edges = fz.candidate_edges(buckets)

    assert edges.to_pylist() == [{"src": "b", "dst": "a"}, {"src": "c", "dst": "a"}]
    assert edges.schema == fz.EDGE_SCHEMA


def test_no_bucket_with_two_documents_gives_no_edges():
    assert fz.candidate_edges(_buckets([(0, 1, "a"), (0, 2, "b")])).num_rows == 0
    assert fz.candidate_edges(fz.BAND_SCHEMA.empty_table()).schema == fz.EDGE_SCHEMA


def test_verify_drops_edges_below_the_threshold():
    sigs = pa.table(
        {
            "position": ["a", "b", "c"],
            "n_chars": [1, 1, 1],
            "minhash": pa.array([[1] * 112, [1] * 100 + [2] * 12, [1] * 56 + [2] * 56], pa.list_(pa.uint32(), 112)),
        }
    )
    edges = pa.table({"src": ["b", "c"], "dst": ["a", "a"]})

    assert fz.verify_edges(edges, sigs, P).to_pylist() == [{"src": "b", "dst": "a"}]


def _joined(edges: pa.Table, ends: pa.Table) -> pa.Table:
    """Edges with both ends' packed MinHash, as the flow joins them on Dask."""
    for end in ("src", "dst"):
        edges = edges.join(ends.rename_columns([end, f"{end}_minhash"]), end, join_type="left outer")
    return edges


def test_end_signatures_keep_only_edge_ends_and_pack_their_minhash_losslessly():
    sigs = fz.signatures(pa.table({"text": [f"doc {i} says {'more ' * i}words" for i in range(6)]}), P, "s0")
    wanted = [position("s0", 4), position("s0", 1), position("s0", 4)]

    ends = fz.end_signatures(sigs, pa.array(wanted), P)

    assert ends.schema == fz.END_SCHEMA
    assert ends.column("position").to_pylist() == [position("s0", 1), position("s0", 4)]
    unpacked = [np.frombuffer(value, np.uint32).tolist() for value in ends.column("minhash").to_pylist()]
    assert unpacked == [sigs.column("minhash")[i].as_py() for i in (1, 4)]


def test_joined_verification_keeps_the_same_edges_as_in_memory(planted):
    table, _, _ = planted
    sigs = fz.signatures(table, P, "s0")
    edges = fz.candidate_edges(fz.band_rows(sigs, fz.DedupFuzzyParams(bands=56, rows=2)))  # many weak candidates
    ends = fz.end_signatures(sigs, pa.concat_arrays([edges.column(e).combine_chunks() for e in ("src", "dst")]), P)

    verified = fz.verify_joined_edges(_joined(edges, ends), P)

    expected = fz.verify_edges(edges, sigs, P)
    assert verified.schema == fz.EDGE_SCHEMA
    assert sorted(verified.to_pylist(), key=str) == sorted(expected.to_pylist(), key=str)
    assert 0 < expected.num_rows < edges.num_rows


def test_joined_verification_names_an_edge_end_without_a_signature():
    sigs = fz.signatures(pa.table({"text": ["a b c"]}), P, "s0")
    edges = pa.table({"src": [position("s0", 0)], "dst": ["elsewhere"]})

    with pytest.raises(ValueError, match="edge end has no signature"):
        fz.verify_joined_edges(_joined(edges, fz.end_signatures(sigs, edges.column("src"), P)), P)


def test_position_shards_name_the_shard_of_input_and_indexed_positions():
    positions = pa.array([position("s0", 3), f"{fz.INDEX_PREFIX}b1/{position('s1', 12)}"])  # as `add_to_index` writes

    assert fz.position_shards(positions).to_pylist() == ["s0", f"{fz.INDEX_PREFIX}b1/s1"]


# ---------------------------------------------------------------- connected components


def _edges(pairs, chunks: int = 1) -> pa.Table:
    names = [(position("s", a), position("s", b)) for a, b in pairs]
    table = pa.table({"src": [a for a, _ in names], "dst": [b for _, b in names]}, schema=fz.EDGE_SCHEMA)
    if chunks > 1 and table.num_rows > 1:
        cuts = np.linspace(0, table.num_rows, chunks + 1).astype(int)
        table = pa.concat_tables([table.slice(lo, hi - lo) for lo, hi in zip(cuts[:-1], cuts[1:])])
    return table


def test_union_find_labels_every_node_with_its_smallest_member():
    edges = _edges([(3, 1), (1, 2), (7, 8), (9, 8)], chunks=2)

    labels = fz.label_components(edges)

    assert dict(zip(labels.column("position").to_pylist(), labels.column("component").to_pylist())) == {
        position("s", 1): position("s", 1),
        position("s", 2): position("s", 1),
        position("s", 3): position("s", 1),
        position("s", 7): position("s", 7),
        position("s", 8): position("s", 7),
        position("s", 9): position("s", 7),
    }


def test_no_edges_no_components():
    assert fz.label_components(fz.EDGE_SCHEMA.empty_table()).num_rows == 0


# ---------------------------------------------------------------- keepers and apply


def _packed(*agreeing: int) -> pa.Array:
    """Packed MinHash per member: the first `n` of 112 values equal across members, the rest distinct."""
    rows = [[1] * n + [100 * (i + 1) + k for k in range(112 - n)] for i, n in enumerate(agreeing)]
    return pa.array([np.array(row, np.uint32).tobytes() for row in rows], pa.binary())


MEMBERS = pa.table(
    {
        "position": ["s\t1", "s\t2", "s\t3", "t\t0"],
        "component": ["s\t1"] * 3 + ["t\t0"],
        "n_chars": [5, 9, 9, 4],
        "keeper_score": [0.2, None, 0.7, 0.1],
        "minhash": _packed(112, 112, 112, 112),
    },
    schema=fz.member_schema(P),
)


def test_first_keeper_is_the_first_in_input_order():
    clusters = fz.choose_keepers(MEMBERS, P)

    assert clusters.column("keeper").to_pylist() == ["s\t1"] * 3 + ["t\t0"]
    assert clusters.column("size").to_pylist() == [3, 3, 3, 1]


def test_longest_keeper_breaks_ties_by_input_order():
    clusters = fz.choose_keepers(MEMBERS, fz.DedupFuzzyParams(keeper="longest"))

    assert clusters.column("keeper").to_pylist() == ["s\t2"] * 3 + ["t\t0"]
    assert clusters.schema == fz.CLUSTER_SCHEMA


def test_highest_score_keeper_ranks_missing_scores_last():
    clusters = fz.choose_keepers(MEMBERS, fz.DedupFuzzyParams(keeper="highest_score"))

    assert clusters.column("keeper").to_pylist() == ["s\t3"] * 3 + ["t\t0"]


def test_a_member_chained_to_its_keeper_but_unlike_it_stays_as_its_own_cluster():
    # s1 ~ s2 ~ s3 in one component; s2 (longest) keeps; s1 agrees with s2 in 40 of 112 values only
    members = MEMBERS.set_column(4, "minhash", _packed(40, 112, 100, 112))

    clusters = fz.choose_keepers(members, fz.DedupFuzzyParams(keeper="longest"))

    assert clusters.select(["position", "component", "keeper", "size"]).to_pylist() == [
        {"position": "s\t1", "component": "s\t1", "keeper": "s\t1", "size": 1},
        {"position": "s\t2", "component": "s\t2", "keeper": "s\t2", "size": 2},
        {"position": "s\t3", "component": "s\t2", "keeper": "s\t2", "size": 2},
        {"position": "t\t0", "component": "t\t0", "keeper": "t\t0", "size": 1},
    ]


def test_without_verification_a_whole_component_is_one_cluster():
    fineweb = fz.DedupFuzzyParams(bands=14, rows=8, verify=False, keeper="longest")

    clusters = fz.choose_keepers(MEMBERS.drop_columns("minhash"), fineweb)

    assert clusters.column("keeper").to_pylist() == ["s\t2"] * 3 + ["t\t0"]


def test_signatures_carry_the_keeper_column_with_nan_as_missing():
    table = pa.table(
        {"text": ["a b", "c d", "e f"], "quality_score": pa.array([0.5, float("nan"), 2.0], pa.float32())}
    )

    scored = fz.signatures(table, fz.DedupFuzzyParams(keeper="highest_score"), "s0")
    unscored = fz.signatures(table, P, "s0")

    assert scored.column("keeper_score").to_pylist() == [0.5, None, 2.0]
    assert unscored.column("keeper_score").null_count == 3


def test_a_missing_keeper_column_is_a_clear_error():
    params = fz.DedupFuzzyParams(keeper="highest_score", keeper_column="edu_score")

    with pytest.raises(InputError, match="'edu_score' is not a column.*columns: text"):
        fz.signatures(pa.table({"text": ["a b"]}), params, "s0")


def test_apply_rejects_all_but_the_keeper_and_names_it():
    table = pa.table({"id": ["x", "y", "z"], "text": ["a", "b", "c"]})
    shard = fz.signatures(table, P, "s1")
    clusters = pa.table(
        {
            "position": ["s0\t000000000004", position("s1", 2)],
            "component": ["s0\t000000000004"] * 2,
            "keeper": ["s0\t000000000004"] * 2,
            "size": [2, 2],
        },
        schema=fz.CLUSTER_SCHEMA,
    )

    out = fz.apply(table, P, shard, clusters)

    assert out.kept.column("id").to_pylist() == ["x", "y"]
    assert out.kept.column("dup_cluster").to_pylist() == [position("s1", 0), position("s1", 1)]
    assert out.kept.column("dup_cluster_size").to_pylist() == [1, 1]
    assert out.rejected.select(["id", "reason", "dup_of", "dup_cluster_size"]).to_pylist() == [
        {"id": "z", "reason": fz.REASON, "dup_of": "s0\t000000000004", "dup_cluster_size": 2}
    ]


def test_disabled_marks_clusters_but_drops_nothing():
    table = pa.table({"id": ["x", "z"], "text": ["a", "a"]})
    shard = fz.signatures(table, P, "s0")
    labels = pa.table({"position": shard.column("position"), "component": [position("s0", 0)] * 2})
    clusters = fz.choose_keepers(fz.cluster_members(labels, shard, P), P)

    out = fz.apply(table, fz.DedupFuzzyParams(enabled=False), shard, clusters)

    assert out.kept.column("dup_cluster_size").to_pylist() == [2, 2]
    assert out.rejected.num_rows == 0


def test_apply_on_an_empty_shard_has_the_same_schema():
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    full = pa.table({"id": ["x"], "text": ["a"]})

    out_empty = fz.apply(empty, P, fz.signatures(empty, P, "s0"), fz.CLUSTER_SCHEMA.empty_table())
    out_full = fz.apply(full, P, fz.signatures(full, P, "s0"), fz.CLUSTER_SCHEMA.empty_table())

    assert out_empty.kept.schema == out_full.kept.schema
    assert out_empty.rejected.schema == out_full.rejected.schema


# ---------------------------------------------------------------- determinism across shardings


def _curate(tables: list[pa.Table], params: fz.DedupFuzzyParams, partitions: int) -> list[str]:
    """The whole stage in memory, the shuffle simulated by band_hash partitions; the kept ids."""
    names = [f"part-{i:03d}" for i in range(len(tables))]
    sigs = [fz.signatures(t, params, name) for t, name in zip(tables, names)]
    bands = pa.concat_tables([fz.band_rows(s, params) for s in sigs])
    part = (bands.column("band_hash").to_numpy() % partitions).astype(int)
    edges = pa.concat_tables([fz.candidate_edges(bands.filter(pa.array(part == k))) for k in range(partitions)])
    all_sigs = pa.concat_tables(sigs)
    labels = fz.label_components(fz.verify_edges(edges, all_sigs, params))
    clusters = fz.choose_keepers(fz.cluster_members(labels, all_sigs, params), params)
    return [i for t, s in zip(tables, sigs) for i in fz.apply(t, params, s, clusters).kept.column("id").to_pylist()]


@pytest.mark.parametrize("keeper", ["first", "longest", "highest_score"])
def test_different_sharding_keeps_the_same_documents(planted, keeper):
    table, _, _ = planted
    table = table.append_column("id", pa.array([f"d{i}" for i in range(table.num_rows)]))
    table = table.append_column("quality_score", pa.array([(i * 7919 % 101) / 100 for i in range(table.num_rows)]))
    params = fz.DedupFuzzyParams(keeper=keeper)

    two = _curate([table.slice(0, 200), table.slice(200)], params, partitions=3)
    five = _curate([table.slice(i, 90) for i in range(0, table.num_rows, 90)], params, partitions=7)

    assert two == five
    assert len(two) < table.num_rows


def test_verify_names_an_edge_end_without_a_signature():
    sigs = fz.signatures(pa.table({"text": ["a b c"]}), P, "s0")
    edges = pa.table({"src": [position("s0", 0)], "dst": ["elsewhere"]})

    with pytest.raises(ValueError, match="no row in `sigs`"):
        fz.verify_edges(edges, sigs, P)


def test_shingle_jaccard_is_exact_on_word_5_grams():
    words = [f"w{i}" for i in range(10)]
    left, right = " ".join(words), " ".join(words[:8] + ["x", "y"])  # 6 vs 6 shingles, 4 shared

    assert fz.shingle_jaccard([left, left], [right, left], P) == [pytest.approx(4 / 8), 1.0]


@pytest.mark.parametrize("keeper", ["first", "longest", "highest_score"])
def test_an_indexed_document_is_always_the_keeper(keeper):
    members = pa.table(
        {
            "position": ["a\t0", f"{fz.INDEX_PREFIX}b1/z\t7"],
            "component": ["a\t0"] * 2,
            "n_chars": [900, 10],
            "keeper_score": [0.9, 0.1],
            "minhash": _packed(112, 112),
        },
        schema=fz.member_schema(P),
    )

    clusters = fz.choose_keepers(members, fz.DedupFuzzyParams(keeper=keeper))

    assert set(clusters.column("keeper").to_pylist()) == {f"{fz.INDEX_PREFIX}b1/z\t7"}
