"""Fuzzy deduplication: MinHash-LSH over word n-grams, clusters by connected components, one keeper each.

Phases, so no process ever holds every signature or every edge (the flow runs them on Dask; a batch
small enough for one worker goes through steps 3-5 in one task, `clusters_of_edges`):
1. `signatures` per shard: MinHash of each document's shingle set (datasketch, affine32 scheme).
2. `band_rows` per shard: one row per (band, band hash, doc); the flow shuffles them by band hash.
3. `candidate_edges` per bucket partition: star edges from each member to its bucket's smallest
   position (not all pairs). Optionally verified (enough equal MinHash values) at a cost linear in
   the corpus: `end_signatures` once per signature shard (only the rows that are edge ends), joined
   to the edges, then `verify_joined_edges`; `verify_edges` is the in-memory equivalent.
4. Connected components over the edges: on Dask by `flows/parallel/components.py` (min-label propagation with
   pointer jumping, spilled to Parquet each round), in memory by `label_components`. A component's
   id is its smallest position, so it does not depend on scheduling.
5. `choose_keepers` per component (with verification, members that do not agree with their keeper
   stay), then `apply` per shard.

Parameters: the user names a target Jaccard (`threshold`, of word 5-gram sets as FineWeb's). Bands x
rows (unless set) are the layout that finds a pair at the target with probability >= 0.99 while
proposing the fewest pairs below it; verification then keeps an edge when at least `min_matches` of
all `num_perm` MinHash values agree, the count that keeps 97% of the candidate pairs at the target
(issue #15: recall >= 0.95 at the target), and a removed document must agree so with its cluster's
keeper too (`s_curve.py` derives both). `removal_probability` is the resulting S-curve, exact for
ideal permutations; the run report shows it. `verify=false` with 14 x 8 is FineWeb's (datatrove's)
S-curve: every candidate is a duplicate.

Shingling normalizes text as datatrove's `simplify_text` does for MinHash (lowercase, punctuation
removed, whitespace folded; its diacritic and number folding are not done here). It is vectorised
over the whole table (pyarrow split, one xxh3 per distinct word, n-gram hashes combined in numpy);
the MinHash is datasketch's `MinHash.update_batch` on those 32-bit hashes (`bench/dedup_signatures.py`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from datasketch import MinHash
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.clusters import INDEX_PREFIX, component_labels, keeper_scores, marks, position
from tasks.contract import StageOutput, split_by_reason
from tasks.dedup_fuzzy.s_curve import (
    lsh_layout,
    removal_by_min_matches,
    verification_min_matches,
)

VERSION = 3
REASON = "dedup_fuzzy:jaccard"

BAND_SCHEMA = pa.schema([("band", pa.int32()), ("band_hash", pa.uint64()), ("position", pa.string())])
EDGE_SCHEMA = pa.schema([("src", pa.string()), ("dst", pa.string())])
END_SCHEMA = pa.schema([("position", pa.string()), ("minhash", pa.binary())])  # see `end_signatures`
LABEL_SCHEMA = pa.schema([("position", pa.string()), ("component", pa.string())])
MEMBER_SCHEMA = pa.schema(
    [("position", pa.string()), ("component", pa.string()), ("n_chars", pa.int64()), ("keeper_score", pa.float64())]
)
CLUSTER_SCHEMA = pa.schema(
    [("position", pa.string()), ("component", pa.string()), ("keeper", pa.string()), ("size", pa.int32())]
)


class DedupFuzzyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Drop near-duplicates (clusters are marked either way).")
    # FineWeb: word 5-grams on normalized text; char n-grams for unsegmented scripts
    shingle: Literal["word", "char"] = Field("word", description="Shingle unit: words or characters.")
    ngram: int = Field(5, ge=1, description="Shingle length in units (FineWeb: 5 words).")
    # FineWeb / datatrove MinhashConfig: 14 buckets x 8 hashes = 112 permutations
    num_perm: int = Field(112, ge=2, description="MinHash permutations.")
    # 0.7: just under FineWeb's 14 x 8 midpoint (~0.72, where it removes half the pairs; Penedo et al.
    # 2024) and NeMo Curator's, RefinedWeb's and SlimPajama's ~0.8, so pairs FineWeb may keep or remove
    # are removed. bench/dedup_accuracy.py, dev set: recall 0.998 at J >= 0.7 and 0.515 at 0.5-0.7,
    # precision 1.000 (datatrove 14 x 8: 0.883, 0.369); planted corpus: above datatrove at every edit rate
    threshold: float = Field(
        0.7,
        gt=0.0,
        lt=1.0,
        description="Target Jaccard of the shingle sets: pairs at or above it are removed with probability >= 0.96 "
        "(the run report shows the S-curve); bands x rows and the verification cutoff derive from it.",
    )
    bands: int | None = Field(
        None,
        ge=1,
        description="LSH bands; null: derived from threshold (finds 99% of the pairs there, proposes the "
        "fewest below it). Set with rows to fix the layout (FineWeb: 14 x 8).",
    )
    rows: int | None = Field(None, ge=1, description="MinHash values per band; null: derived with bands (FineWeb: 8).")
    seed: int = Field(1, description="Permutation seed: identical on every worker and every re-curation.")
    # bench/dedup_scale.py: verification is 2-4% of the stage's worker CPU at 50k-200k docs (issue #15: <= 10%)
    verify: bool = Field(
        True,
        description="Remove a document only if its MinHash agrees with a near-duplicate's, and with its cluster "
        "keeper's, in enough of all num_perm values (the count that keeps 97% of pairs at the threshold); "
        "false: every LSH candidate pair is a duplicate (FineWeb, with 14 x 8).",
    )
    # CCNet / datatrove keep the first copy in input order
    keeper: Literal["first", "longest", "highest_score"] = Field(
        "first",
        description="Which document of a cluster stays: first in input order, longest, or highest "
        "`keeper_column` (a quality scorer's column moves quality scoring before this stage).",
    )
    keeper_column: str = Field(
        "quality_score", description="Numeric column ranking a cluster's documents when keeper = highest_score."
    )
    index: str | None = Field(
        None,
        description="Name of a persistent fuzzy-dedup index in the artifact store: shards an earlier run decided "
        "keep their marks; new shards are deduplicated against every earlier run's kept documents (they stay).",
    )

    @model_validator(mode="after")
    def _layout_fits(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError(
                "set bands and rows together (FineWeb: 14 and 8), or neither to derive them from threshold"
            )
        if self.bands is None and not self.verify:
            raise ValueError("verify=false keeps every LSH candidate: set bands and rows too (FineWeb: 14 and 8)")
        bands, rows = self.layout
        if bands * rows > self.num_perm:
            raise ValueError(f"bands * rows = {bands * rows} exceeds num_perm = {self.num_perm}")
        return self

    @property
    def layout(self) -> tuple[int, int]:
        """(bands, rows): as set (both or neither), else `lsh_layout` of the threshold."""
        if self.bands is not None:
            return self.bands, self.rows
        return lsh_layout(self.threshold, self.num_perm)

    @property
    def min_matches(self) -> int:
        """Equal MinHash values (of `num_perm`) a candidate pair needs to pass verification."""
        return verification_min_matches(self.threshold, *self.layout, self.num_perm)


def removal_probability(jaccard: float, params: DedupFuzzyParams) -> float:
    """P(a pair at this Jaccard becomes a verified edge, so that one of the two goes when they are a
    cluster alone): the stage's S-curve, candidate and verification probabilities together."""
    removal = removal_by_min_matches(jaccard, *params.layout, params.num_perm)
    return float(removal[params.min_matches if params.verify else 0])


def signature_schema(params: DedupFuzzyParams) -> pa.Schema:
    return pa.schema(
        [
            ("position", pa.string()),
            ("n_chars", pa.int64()),
            ("keeper_score", pa.float64()),
            ("minhash", pa.list_(pa.uint32(), params.num_perm)),
        ]
    )


# ---------------------------------------------------------------- shingling (vectorised)

_PUNCT = r"[\p{P}\p{S}]+"  # Unicode punctuation and symbols, as RE2 classes
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def normalize(texts: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Lowercase, punctuation and symbols to spaces, whitespace runs folded to one space, trimmed."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(_strip_punctuation(texts), r"\s+", " "))


def _strip_punctuation(texts: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.replace_substring_regex(pc.utf8_lower(texts), _PUNCT, " ")


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (a bijection): spreads combined hashes over all bits."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _multipliers(n: int) -> np.ndarray:
    """Fixed odd 64-bit weights per n-gram slot, so "a b" and "b a" hash differently."""
    return _fmix64(np.arange(1, n + 1, dtype=np.uint64)) | np.uint64(1)


def _token_hashes(texts: pa.ChunkedArray | pa.Array, params: DedupFuzzyParams) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hash per token (word or character) of every normalized document, flat, and tokens per document."""
    if params.shingle == "word":  # the split folds whitespace itself
        words = pc.utf8_split_whitespace(_strip_punctuation(texts))
        words = words.combine_chunks() if isinstance(words, pa.ChunkedArray) else words
        flat = words.flatten()
        real = pc.greater(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)  # Arrow yields "" at the ends
        parents = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
        counts = np.bincount(parents[real], minlength=len(words)).astype(np.int64)
        coded = pc.dictionary_encode(flat)  # one xxh3 per distinct word
        distinct = coded.dictionary.cast(pa.binary()).to_pylist()
        hashes = np.fromiter((xxhash.xxh3_64_intdigest(w) for w in distinct), np.uint64, len(distinct))
        return hashes[coded.indices.to_numpy(zero_copy_only=False)][real], counts
    norm = normalize(texts)
    counts = pc.utf8_length(norm).to_numpy(zero_copy_only=False).astype(np.int64)
    codepoints = np.frombuffer("".join(norm.to_pylist()).encode("utf-32-le"), dtype=np.uint32)
    return _fmix64(codepoints.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)), counts


def shingle_hashes(texts: pa.ChunkedArray | pa.Array, params: DedupFuzzyParams) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hash of every n-gram of every document (flat) and the document offsets into it.

    A document shorter than `ngram` tokens is one shingle of all its tokens; one with no tokens has
    none (its signature stays empty and it takes no part in LSH).
    """
    tokens, counts = _token_hashes(texts, params)
    n, size = params.ngram, tokens.size
    weights = _multipliers(n)
    padded = np.concatenate([tokens, np.zeros(n, np.uint64)])
    combined = np.zeros(size, np.uint64)  # n-gram at every token, across document ends (masked below)
    for j in range(n):
        combined += padded[j : j + size] * weights[j]
    ends = np.cumsum(counts)
    starts = ends - counts
    is_start = np.arange(size, dtype=np.int64) + n <= np.repeat(ends, counts)
    for doc in np.flatnonzero((counts > 0) & (counts < n)).tolist():  # short documents: one shingle each
        lo, hi = int(starts[doc]), int(ends[doc])
        combined[lo] = (tokens[lo:hi] * weights[: hi - lo]).sum(dtype=np.uint64)
        is_start[lo] = True
    per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    return (_fmix64(combined[is_start]) >> np.uint64(32)).astype(np.uint32), offsets


def shingle_jaccard(left: list[str], right: list[str], params: DedupFuzzyParams) -> list[float]:
    """Exact Jaccard of the shingle sets of each (left[i], right[i]) pair: what MinHash estimates.

    Used on a sample of removed/keeper pairs to report the precision of a run.
    """
    hashes, offsets = shingle_hashes(pa.array(list(left) + list(right), pa.string()), params)
    sets = [set(hashes[lo:hi].tolist()) for lo, hi in zip(offsets[:-1], offsets[1:])]
    pairs = zip(sets[: len(left)], sets[len(left) :])
    return [len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]


# ---------------------------------------------------------------- signatures and banding


def _identity(value):
    """datasketch `hashfunc` for values that are already 32-bit shingle hashes (picklable)."""
    return value


def _minhash(params: DedupFuzzyParams) -> MinHash:
    return MinHash(num_perm=params.num_perm, seed=params.seed, hashfunc=_identity, scheme="affine32")


def minhash_matrix(hashes: np.ndarray, offsets: np.ndarray, params: DedupFuzzyParams) -> np.ndarray:
    """datasketch MinHash per document, as an (n_docs, num_perm) uint32 matrix.

    One `MinHash` is reused; each document's hashes go to `update_batch` as a single array (the
    hash "function" is the identity), so datasketch permutes and reduces them in one numpy step
    instead of a Python call per shingle. Same values as per-shingle `update_batch`: a test pins it.
    """
    sketch = _minhash(params)
    empty = sketch.hashvalues.copy()
    out = np.empty((offsets.size - 1, params.num_perm), np.uint32)
    for row, (lo, hi) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist())):
        sketch.hashvalues = empty.copy()
        if hi > lo:
            sketch.update_batch([hashes[lo:hi]])
        out[row] = sketch.hashvalues
    return out


SIGNATURE_CHUNK_ROWS = 5_000  # bench/dedup_scale.py: shingling a 50k-row shard at once runs ~40% slower


def signatures(table: pa.Table, params: DedupFuzzyParams, shard_name: str) -> pa.Table:
    """Position, length, keeper score and MinHash of every row, in row order (computed in chunks of rows)."""
    keeper_scores(table.slice(0, 0), params.keeper, params.keeper_column, "dedup_fuzzy")  # a bad column fails first
    chunks = [
        _signature_chunk(table.slice(start, SIGNATURE_CHUNK_ROWS), params, shard_name, start)
        for start in range(0, table.num_rows, SIGNATURE_CHUNK_ROWS)
    ]
    return pa.concat_tables(chunks) if chunks else signature_schema(params).empty_table()


def _signature_chunk(table: pa.Table, params: DedupFuzzyParams, shard_name: str, first_row: int) -> pa.Table:
    texts = table.column("text")
    hashes, offsets = shingle_hashes(texts, params)
    matrix = minhash_matrix(hashes, offsets, params)
    rows = range(first_row, first_row + table.num_rows)
    positions = pa.array([position(shard_name, row) for row in rows], pa.string())
    minhash = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.uint32()), params.num_perm)
    n_chars = pc.utf8_length(texts).cast(pa.int64())
    return pa.table(
        [positions, n_chars, keeper_scores(table, params.keeper, params.keeper_column, "dedup_fuzzy"), minhash],
        schema=signature_schema(params),
    )


def _matrix(sigs: pa.Table, params: DedupFuzzyParams) -> np.ndarray:
    flat = sigs.column("minhash").combine_chunks().flatten()
    return flat.to_numpy(zero_copy_only=False).astype(np.uint32).reshape(-1, params.num_perm)


def band_rows(sigs: pa.Table, params: DedupFuzzyParams) -> pa.Table:
    """One row per (band, hash of the band's `rows` values, doc); documents with no shingles skipped."""
    matrix, (n_bands, rows) = _matrix(sigs, params), params.layout
    used = matrix[:, : n_bands * rows].reshape(-1, n_bands, rows).astype(np.uint64)
    band_hash = _fmix64((used * _multipliers(rows)).sum(axis=2, dtype=np.uint64))
    has_shingles = ~(matrix == np.iinfo(np.uint32).max).all(axis=1)
    docs = np.flatnonzero(has_shingles)
    band_hash = band_hash[docs]
    positions = sigs.column("position").combine_chunks().take(pa.array(np.repeat(docs, n_bands)))
    bands = np.tile(np.arange(n_bands, dtype=np.int32), docs.size)
    return pa.table([pa.array(bands), pa.array(band_hash.reshape(-1)), positions], schema=BAND_SCHEMA)


def candidate_edges(buckets: pa.Table) -> pa.Table:
    """Star edges (member -> smallest position) of every bucket with two or more documents.

    `buckets` must hold whole buckets (all rows of a (band, band_hash)), as after the shuffle.
    Edges are distinct and sorted. Bands are grouped one at a time: a bucket lies in one band, and
    the group-by and join of a band's rows need a band's share of the memory, not the whole table's.
    """
    buckets = buckets.select(BAND_SCHEMA.names).cast(BAND_SCHEMA)
    band = buckets.column("band")
    per_band = [_bucket_edges(buckets.filter(pc.equal(band, b))) for b in pc.unique(band).to_pylist()]
    return _distinct_sorted(pa.concat_tables([EDGE_SCHEMA.empty_table(), *per_band]))


def _bucket_edges(buckets: pa.Table) -> pa.Table:
    heads = buckets.group_by(["band", "band_hash"]).aggregate([("position", "min"), ("position", "count")])
    heads = heads.filter(pc.greater(heads.column("position_count"), 1))
    joined = buckets.join(heads, ["band", "band_hash"], join_type="inner")
    joined = joined.filter(pc.not_equal(joined.column("position"), joined.column("position_min")))
    return _distinct_sorted(pa.table([joined.column("position"), joined.column("position_min")], schema=EDGE_SCHEMA))


def _distinct_sorted(edges: pa.Table) -> pa.Table:
    edges = edges.group_by(["src", "dst"]).aggregate([]).select(["src", "dst"]).cast(EDGE_SCHEMA)
    return edges.sort_by([("src", "ascending"), ("dst", "ascending")])


def position_shards(positions: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The shard name of each position (the inverse of `tasks.clusters.position`)."""
    return pc.list_element(pc.split_pattern(positions, "\t", max_splits=1), 0)


def end_signatures(sigs: pa.Table, ends: pa.Array | pa.ChunkedArray, params: DedupFuzzyParams) -> pa.Table:
    """The rows of `sigs` whose position is in `ends`, MinHash packed as bytes (END_SCHEMA).

    Packed, an end is one scalar per row: the joins of edges to their ends (on Dask) move one
    buffer per row rather than a list of `num_perm` values.
    """
    sigs = sigs.filter(pc.is_in(sigs.column("position"), value_set=pc.unique(ends)))
    values = pa.py_buffer(_matrix(sigs, params).tobytes())
    packed = pa.Array.from_buffers(pa.binary(4 * params.num_perm), sigs.num_rows, [None, values])
    return pa.table([sigs.column("position"), packed.cast(pa.binary())], schema=END_SCHEMA)


def _unpacked(packed: pa.ChunkedArray, params: DedupFuzzyParams) -> np.ndarray:
    """The (rows, num_perm) matrix of `end_signatures`' packed MinHash values."""
    fixed = packed.combine_chunks().cast(pa.binary(4 * params.num_perm))  # raises on a value of another width
    start = fixed.offset * fixed.type.byte_width
    return np.frombuffer(fixed.buffers()[1], np.uint32, len(fixed) * params.num_perm, start).reshape(
        -1, params.num_perm
    )


def agree(src: np.ndarray, dst: np.ndarray, params: DedupFuzzyParams) -> np.ndarray:
    """Row by row of two (rows, num_perm) signature matrices: do they agree in `min_matches` values?"""
    return (src == dst).sum(axis=1) >= params.min_matches


def _similar(edges: pa.Table, src: np.ndarray, dst: np.ndarray, params: DedupFuzzyParams) -> pa.Table:
    return edges.select(EDGE_SCHEMA.names).filter(pa.array(agree(src, dst, params))).cast(EDGE_SCHEMA)


def verify_edges(edges: pa.Table, sigs: pa.Table, params: DedupFuzzyParams) -> pa.Table:
    """The edges whose ends agree in at least `params.min_matches` MinHash values; `sigs` holds both ends.

    The in-memory form (`clusters_of_edges`); on Dask the flow joins the ends' signatures to the
    edges and calls `verify_joined_edges`, which keeps exactly the same edges.
    """
    if edges.num_rows == 0:
        return edges.cast(EDGE_SCHEMA)
    matrix, keys = _matrix(sigs, params), sigs.column("position")
    src, dst = (pc.index_in(edges.column(end), value_set=keys) for end in ("src", "dst"))
    if src.null_count or dst.null_count:
        raise ValueError("verify_edges: an edge end has no row in `sigs`; pass both ends' signatures")
    rows = [side.to_numpy(zero_copy_only=False).astype(np.int64) for side in (src, dst)]
    return _similar(edges, matrix[rows[0]], matrix[rows[1]], params)


def verify_joined_edges(joined: pa.Table, params: DedupFuzzyParams) -> pa.Table:
    """`verify_edges` for edges joined to both ends' packed MinHash (`src_minhash`, `dst_minhash`)."""
    ends = [joined.column(f"{end}_minhash") for end in ("src", "dst")]
    if any(end.null_count for end in ends):
        raise ValueError("verify_joined_edges: an edge end has no signature; every end must be a signature row")
    return _similar(joined, *(_unpacked(end, params) for end in ends), params)


# ---------------------------------------------------------------- connected components


def label_components(edges: pa.Table) -> pa.Table:
    """In memory: every node of `edges` with its component's smallest position (LABEL_SCHEMA)."""
    nodes, components = component_labels(*(edges.column(end).combine_chunks() for end in ("src", "dst")))
    return pa.table([nodes, components], schema=LABEL_SCHEMA)


def clusters_of_edges(edges: pa.Table, sigs: pa.Table, params: DedupFuzzyParams) -> pa.Table:
    """In memory, steps 3-5 after the candidates: edges verified (with `verify`), components labelled,
    keepers chosen (CLUSTER_SCHEMA). `sigs` holds at least every edge end's signature row. The rows
    are those the Dask path (`flows/stages/dedup_fuzzy.py`) writes for the same edges."""
    if params.verify:
        edges = verify_edges(edges, sigs, params)
    return choose_keepers(cluster_members(label_components(edges), sigs, params), params)


# ---------------------------------------------------------------- keepers and marking


def member_schema(params: DedupFuzzyParams) -> pa.Schema:
    """What `choose_keepers` reads per member: with `verify`, its packed MinHash too (as `end_signatures`)."""
    return MEMBER_SCHEMA.append(END_SCHEMA.field("minhash")) if params.verify else MEMBER_SCHEMA


def cluster_members(labels: pa.Table, sigs: pa.Table, params: DedupFuzzyParams) -> pa.Table:
    """In-memory: every labelled node joined to its signature row, as `choose_keepers` reads them."""
    members = labels.join(sigs.select(["position", "n_chars", "keeper_score"]), "position")
    if params.verify:
        members = members.join(end_signatures(sigs, labels.column("position"), params), "position")
    return members


def choose_keepers(members: pa.Table, params: DedupFuzzyParams) -> pa.Table:
    """Keeper, cluster and size of every member of whole components. The keeper is an indexed
    document if there is one, else the first in input order, the longest or the highest scored
    (ties and missing scores: first in input order).

    With `verify`, a member stays in its keeper's cluster only if their MinHash values agree as a
    verified edge's must; the others become clusters of their own. Components chain near-duplicates
    (A~B, B~C) into documents that share little, and removing C for A would lose C's text
    (bench/dedup_accuracy.py, planted corpus of 15-20k documents: 1-2% of removals under 0.5 Jaccard
    to their keeper without this, 0.05% with it). A cluster's id is its smallest position.
    """
    members = members.select(member_schema(params).names).cast(member_schema(params))
    indexed = pc.starts_with(members.column("position"), INDEX_PREFIX)
    order = [("component", "ascending"), ("indexed", "descending"), ("position", "ascending")]
    if params.keeper in ("longest", "highest_score"):
        order.insert(2, ("n_chars" if params.keeper == "longest" else "keeper_score", "descending"))
    ranked = members.select(MEMBER_SCHEMA.names).append_column("indexed", indexed).sort_by(order)
    heads = ranked.group_by("component", use_threads=False).aggregate([("position", "first")])
    out = members.join(heads.rename_columns(["component", "keeper"]), "component", join_type="left outer")
    if params.verify:
        minhash = _unpacked(out.column("minhash"), params)
        keeper_rows = pc.index_in(out.column("keeper"), value_set=out.column("position")).to_numpy()
        like_keeper = agree(minhash, minhash[keeper_rows], params)
        keepers = pc.if_else(pa.array(like_keeper), out.column("keeper"), out.column("position"))
        out = out.set_column(out.schema.get_field_index("keeper"), "keeper", keepers)
    clusters = out.group_by("keeper").aggregate([("position", "min"), ("position", "count")])
    out = out.select(["position", "keeper"]).join(clusters.rename_columns(["keeper", "component", "size"]), "keeper")
    return out.select(CLUSTER_SCHEMA.names).cast(CLUSTER_SCHEMA).sort_by("position")


def apply(table: pa.Table, params: DedupFuzzyParams, shard_positions: pa.Table, clusters: pa.Table) -> StageOutput:
    """Mark cluster and size on every row; reject all but the keeper, naming it in `dup_of`.

    `shard_positions` is this shard's `signatures` (row for row, at least `position`); `clusters`
    (CLUSTER_SCHEMA) holds at least the clustered positions of this shard. Rows in no cluster are
    their own cluster of size 1. `dup_of` is null on kept rows.
    """
    positions = shard_positions.column("position").combine_chunks().cast(pa.string())
    clusters = clusters.select(CLUSTER_SCHEMA.names).cast(CLUSTER_SCHEMA)
    found = marks(positions, positions, clusters, "position")
    component = pc.coalesce(clusters.column("component").combine_chunks().take(found.found), positions)
    duplicate = pc.and_(found.duplicate, pa.scalar(params.enabled))
    null = pa.nulls(len(positions), pa.string())
    out = table.append_column(pa.field("dup_cluster", pa.string()), component.cast(pa.string()))
    out = out.append_column(pa.field("dup_cluster_size", pa.int32()), found.size)
    out = out.append_column(pa.field("dup_of", pa.string()), pc.if_else(duplicate, found.keeper, null))
    reasons = pc.if_else(duplicate, pa.scalar(REASON), pa.nulls(len(positions), pa.string()))
    return split_by_reason(out, reasons)
