"""Exact float top-k by inner product (cosine on unit vectors): the ground truth of the study.

Scores come from one BLAS matrix product per query x corpus block (the same sgemm faiss's flat
index uses); a running merge keeps the best k per query, so no (queries x corpus) matrix is ever
materialised. Ties are broken by corpus row, lower first, exactly: within a block every candidate
tied with the k-th score is kept before the lexicographic (score desc, row asc) cut, so the result
does not depend on the block sizes. (faiss.knn's heap keeps an arbitrary subset of boundary ties.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phase2_assets.compute.data.storage import release_pages


def merge_topk(
    scores: np.ndarray, ids: np.ndarray, k: int, larger_is_better: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k best (score, id) per row, ordered best first, ties by lower id."""
    primary = -scores if larger_is_better else scores
    order = np.lexsort((ids, primary), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def block_topk(scores: np.ndarray, offset: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of one dense score block, ties by lower row; ids shifted by ``offset``."""
    kk = min(k, scores.shape[1])
    kth = -np.partition(-scores, kk - 1, axis=1)[:, kk - 1]
    out_s = np.empty((scores.shape[0], kk), dtype=scores.dtype)
    out_i = np.empty((scores.shape[0], kk), dtype=np.int64)
    for r, row in enumerate(scores):
        cand = np.flatnonzero(row >= kth[r])  # ascending rows, every tie with the k-th included
        order = np.lexsort((cand, -row[cand]))[:kk]
        out_i[r] = cand[order] + offset
        out_s[r] = row[cand[order]]
    return out_s, out_i


def float_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    query_block: int = 1024,
    corpus_block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32, ids int64), each (nq, min(k, n)), by exact inner product."""
    n = corpus.shape[0]
    if n == 0:
        raise ValueError("empty corpus: nothing to search")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"dimension mismatch: queries {queries.shape[1]}-d, corpus {corpus.shape[1]}-d"
        )
    k = min(k, n)
    nq = queries.shape[0]
    out_s = np.empty((nq, k), dtype=np.float32)
    out_i = np.empty((nq, k), dtype=np.int64)
    for qs in range(0, nq, query_block):
        q = np.ascontiguousarray(queries[qs : qs + query_block], dtype=np.float32)
        best_s = best_i = None
        for cs in range(0, n, corpus_block):
            c = np.ascontiguousarray(corpus[cs : cs + corpus_block], dtype=np.float32)
            s, i = block_topk(q @ c.T, cs, k)
            if best_s is not None:
                s = np.concatenate([best_s, s], axis=1)
                i = np.concatenate([best_i, i], axis=1)
            best_s, best_i = merge_topk(s, i, k)
            release_pages(corpus)
        out_s[qs : qs + len(q)] = best_s
        out_i[qs : qs + len(q)] = best_i
        if progress:
            progress(qs + len(q), nq)
    return out_s, out_i
