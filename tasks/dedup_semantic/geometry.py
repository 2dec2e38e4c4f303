"""Semantic dedup and concept-cluster pruning over document embeddings: the numerical core, pure
functions over numpy arrays:
- `fit_centroids` / `assign`: spherical k-means fitted on a bounded sample, applied to every
  embedding, so that pairs are compared only inside a cluster (SemDeDup, Abbas et al. 2023).
- `nearest_earlier`: per document, its most similar document ranked before it in its cluster (the
  keeper order), computed in blocks so memory is bounded by the block, not the cluster squared.
- `removed_at`: SemDeDup's cut, a cosine threshold on that neighbour; `prune_to_share` the same cut
  placed to keep a share of the corpus.
- `centroid_distances` / `cluster_complexity` / `density_quotas`: density-based pruning (Abbas et
  al. 2024): each cluster's complexity (its spread times its distance to the nearest other
  clusters) sets, through a softmax, how many of its documents are kept.
Every decision is a function of the neighbour's cosine, the cluster and the complexities, so the stage
keeps those as cached columns and takes a new threshold or share without embedding or fitting again.
"""

from __future__ import annotations

import math

import numpy as np


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def n_clusters(n_documents: int, cluster_size: int) -> int:
    """k for a corpus: clusters of about `cluster_size` documents, at least one."""
    return max(1, math.ceil(n_documents / cluster_size))


def fit_centroids(sample: np.ndarray, k: int, seed: int, iterations: int) -> np.ndarray:
    """Unit-length centroids of spherical k-means on `sample` (unit rows): scikit-learn's k-means++ and
    Lloyd iterations on the unit sphere, where Euclidean distance orders as cosine does."""
    from sklearn.cluster import KMeans

    k = min(k, len(sample))
    model = KMeans(n_clusters=k, n_init=1, max_iter=iterations, random_state=seed).fit(sample)
    return normalized(model.cluster_centers_)


def assign(embeddings: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit embedding's nearest centroid and its cosine to it."""
    sims = embeddings @ centroids.T
    labels = sims.argmax(axis=1)
    return labels.astype(np.int32), sims[np.arange(len(embeddings)), labels].astype(np.float32)


def nearest_earlier(embeddings: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each row of one cluster's unit embeddings, in keeper order, the highest cosine to a row
    before it and that row's index (-inf and -1 for the first). Blocks of `block` rows: memory is
    `block` x rows, never rows squared."""
    n = len(embeddings)
    best = np.full(n, -np.inf, dtype=np.float32)
    of = np.full(n, -1, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = embeddings[start:stop] @ embeddings[:stop].T
        sims[np.arange(stop)[None, :] >= np.arange(start, stop)[:, None]] = -np.inf  # itself and later rows
        of[start:stop] = sims.argmax(axis=1)
        best[start:stop] = sims[np.arange(stop - start), of[start:stop]]
    of[best == -np.inf] = -1
    return best, of


def removed_at(nearest: np.ndarray, threshold: float) -> np.ndarray:
    """SemDeDup's cut: a document goes when a document ranked before it is at `threshold` or above."""
    return nearest >= threshold


def prune_to_share(nearest: np.ndarray, share: float) -> np.ndarray:
    """The same cut placed to keep `share` of the documents: the most redundant (highest cosine to an
    earlier one) go first; ties go by position, later first."""
    n = len(nearest)
    n_removed = n - math.ceil(share * n)
    order = np.lexsort((-np.arange(n), -nearest))  # highest cosine first, then the later document
    removed = np.zeros(n, dtype=bool)
    removed[order[:n_removed]] = True
    return removed


def centroid_distances(embeddings: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each unit embedding's cosine distance to its cluster's centroid."""
    return 1 - np.einsum("ij,ij->i", embeddings, centroids[labels])


def cluster_complexity(spread: np.ndarray, centroids: np.ndarray, neighbours: int = 20) -> np.ndarray:
    """Per cluster, its spread (mean cosine distance of its members to the centroid) times its
    separation (mean cosine distance of its centroid to its `neighbours` nearest centroids), as
    density-based pruning defines complexity. A cluster with no member has spread, so complexity, 0."""
    k = len(centroids)
    spread = np.asarray(spread, dtype=np.float64)
    if k == 1:
        return spread.astype(np.float32)
    between = 1 - centroids @ centroids.T
    np.fill_diagonal(between, np.inf)
    nearest = np.sort(between, axis=1)[:, : min(neighbours, k - 1)]
    return (spread * nearest.mean(axis=1)).astype(np.float32)


def density_quotas(sizes: np.ndarray, complexity: np.ndarray, keep: int, temperature: float) -> np.ndarray:
    """How many documents each cluster keeps: `keep` in all, shared by a softmax of complexity over
    `temperature`, no cluster above its size (the excess goes to the others, in proportion)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    keep = min(int(keep), int(sizes.sum()))
    weights = np.exp((complexity - complexity.max()) / temperature) * (sizes > 0)
    quotas = np.zeros(len(sizes), dtype=np.int64)
    open_ = sizes > quotas
    while keep - quotas.sum() > 0 and open_.any():
        left = keep - quotas.sum()
        share = weights * open_
        if share.sum() == 0:
            share = open_.astype(float)
        extra = np.floor(left * share / share.sum()).astype(np.int64)
        if extra.sum() == 0:  # the remainder, one document each, to the heaviest open clusters
            for i in np.argsort(-share)[:left]:
                extra[i] += open_[i]
        quotas = np.minimum(quotas + extra, sizes)
        open_ = sizes > quotas
    return quotas
