"""Exact float top-k by inner product (cosine on unit vectors): the ground truth of the study.

faiss does the arithmetic (``faiss.knn`` with METRIC_INNER_PRODUCT) on query x corpus blocks; a
running merge keeps the best k per query, so no (queries x corpus) matrix is ever materialised.
Ties (rare with floats) are broken by corpus row, lower first.
"""

from __future__ import annotations

import faiss
import numpy as np


def merge_topk(
    scores: np.ndarray, ids: np.ndarray, k: int, larger_is_better: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k best (score, id) per row, ordered best first, ties by lower id."""
    primary = -scores if larger_is_better else scores
    order = np.lexsort((ids, primary), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def float_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    query_block: int = 1024,
    corpus_block: int = 65536,
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
            s, i = faiss.knn(q, c, min(k, len(c)), metric=faiss.METRIC_INNER_PRODUCT)
            i = i + cs
            if best_s is not None:
                s = np.concatenate([best_s, s], axis=1)
                i = np.concatenate([best_i, i], axis=1)
            best_s, best_i = merge_topk(s, i, k)
        out_s[qs : qs + len(q)] = best_s
        out_i[qs : qs + len(q)] = best_i
    return out_s, out_i
