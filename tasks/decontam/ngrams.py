"""Normalized word n-grams hashed to uint64, and their lookup in a sorted index.

Normalization follows GPT-3's contamination filter (Brown et al. 2020, App. C; EleutherAI's
`janitor.py` reimplements it): case and punctuation are ignored. A word is a run of Unicode word
characters (`\\w+`), NFKC-folded and casefolded, so `Janet’s` and `JANET'S` give the same words and
offsets still point into the original text. A word's hash is xxh64 of its UTF-8; an n-gram's hash
is a polynomial over its words' hashes (wrapping uint64 arithmetic), mixed with its length, so the
whole shard hashes with a few numpy operations.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

import numpy as np
import xxhash

WORD = re.compile(r"\w+")
MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (2^64 / golden ratio)
LENGTH_SALT = np.uint64(0xC2B2AE3D27D4EB4F)


def normalize_word(word: str) -> str:
    return word.lower() if word.isascii() else unicodedata.normalize("NFKC", word).casefold()


def words(text: str) -> list[str]:
    return [normalize_word(w) for w in WORD.findall(text)]


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character offsets of each word of `words(text)`, in order."""
    return [m.span() for m in WORD.finditer(text)]


def word_hashes(tokens: list[str]) -> np.ndarray:
    return np.fromiter(
        (xxhash.xxh64_intdigest(t.encode("utf-8", "surrogatepass")) for t in tokens), np.uint64, len(tokens)
    )


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of `n` consecutive word hashes; empty when there are fewer than n."""
    count = len(hashes) - n + 1
    if count <= 0:
        return np.empty(0, np.uint64)
    out = np.zeros(count, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            out = out * MULTIPLIER + hashes[k : k + count]
        return out ^ (np.uint64(n) * LENGTH_SALT)


class Match(NamedTuple):
    doc: int  # row in the shard
    word: int  # first word of the n-gram in the document
    length: int  # words in the n-gram
    hash: int


def find_matches(docs: list[list[str]], index_hashes: np.ndarray, lengths: tuple[int, ...]) -> list[Match]:
    """Every n-gram of every document whose hash is in the sorted `index_hashes`, for each length.

    The shard's words are hashed once, concatenated; windows that cross a document boundary are
    discarded before the lookup.
    """
    if not docs or len(index_hashes) == 0:
        return []
    counts = np.fromiter(map(len, docs), np.int64, len(docs))
    starts = np.concatenate([[0], np.cumsum(counts)])
    flat = word_hashes([w for doc in docs for w in doc])
    doc_of = np.repeat(np.arange(len(docs)), counts)
    matches = []
    for n in lengths:
        grams = ngram_hashes(flat, n)
        if len(grams) == 0:
            continue
        pos = np.searchsorted(index_hashes, grams)
        hit = index_hashes[np.minimum(pos, len(index_hashes) - 1)] == grams
        first = np.flatnonzero(hit)
        same_doc = doc_of[first] == doc_of[first + n - 1]
        for p in first[same_doc]:
            d = int(doc_of[p])
            matches.append(Match(d, int(p - starts[d]), n, int(grams[p])))
    return matches
