"""Exact float top-k by inner product (cosine on unit vectors): the ground truth of the study.

Candidates come from one BLAS matrix product per query x corpus block (the sgemm faiss's flat
index uses), whose last bits depend on the CPU's kernel and the thread count. So the kept scores
are not those: every vector whose float32 score is within the product's error bound of the k-th
(``exact_products.float32_error_bound``) is re-scored by the exact product, and the top k are
taken by that score, the same bits on every machine. A running merge keeps the best k per query,
so no (queries x corpus) matrix is ever materialised. Ties are broken by corpus row, lower first,
exactly: every candidate tied with the k-th score is kept before the lexicographic (score desc,
row asc) cut, so the result does not depend on the block sizes. (faiss.knn's heap keeps an
arbitrary subset of boundary ties.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phase2_assets.compute import exact_products
from phase2_assets.compute.data.storage import release_pages, row_blocks


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


def _within_slack(rows: np.ndarray, scores: np.ndarray, nq: int, k: int, slack: np.ndarray):
    """Mask of the (query row, score) entries within ``slack`` of their query's k-th best."""
    order = np.lexsort((-scores, rows))
    first = np.searchsorted(rows[order], np.arange(nq))
    full = np.bincount(rows, minlength=nq) >= k
    kth = np.full(nq, -np.inf)
    kth[full] = scores[order][first[full] + k - 1]
    return scores >= (kth - slack)[rows]


def _rescore(queries, corpus, rows, ids, chunk: int = 16384) -> np.ndarray:
    """Exact scores of the (query row, corpus id) pairs, gathered a chunk at a time in corpus
    order, a memory-mapped corpus's pages dropped after each: random rows of a memmap would
    otherwise leave most of the file resident (1.85 GB for a 1.54 GB matrix)."""
    out = np.empty(len(rows), dtype=np.float32)
    order = np.argsort(ids, kind="stable")
    for a in range(0, len(order), chunk):
        pick = order[a : a + chunk]
        vectors = np.asarray(corpus[ids[pick]], dtype=np.float32)
        out[pick] = exact_products.row_dots(queries[rows[pick]], vectors)
        release_pages(corpus)
    return out


def float_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    query_block: int = 1024,
    corpus_block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32, ids int64), each (nq, min(k, n)), by exact inner product.

    The float32 product only screens: a vector can be in the exact top k only if its float32
    score is within twice the product's error bound of the k-th float32 score, so a running pool
    per query keeps just those (a few more than k at the plan's scale), and only they are
    re-scored by the exact product once the corpus is scanned.
    """
    n = corpus.shape[0]
    if n == 0:
        raise ValueError("empty corpus: nothing to search")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"dimension mismatch: queries {queries.shape[1]}-d, corpus {corpus.shape[1]}-d"
        )
    k = min(k, n)
    nq = queries.shape[0]
    largest_norm = 0.0
    for _, c in row_blocks(corpus, corpus_block, np.float32):
        largest_norm = max(largest_norm, float(exact_products.norms(c).max()))
    bound = exact_products.float32_error_bound(corpus.shape[1])
    out_s = np.empty((nq, k), dtype=np.float32)
    out_i = np.empty((nq, k), dtype=np.int64)
    for qs in range(0, nq, query_block):
        q = np.ascontiguousarray(queries[qs : qs + query_block], dtype=np.float32)
        # Every float32 score is within bound * |q| * |c| <= slack / 3 of the exact one.
        slack = 3 * bound * exact_products.norms(q) * largest_norm
        rows, ids, scores = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        for cs, c in row_blocks(corpus, corpus_block, np.float32):
            fast = q @ c.T
            kk = min(k, len(c))
            kth = -np.partition(-fast, kk - 1, axis=1)[:, kk - 1]
            r, j = np.nonzero(fast >= (kth - slack)[:, None])
            rows = np.concatenate([rows, r])
            ids = np.concatenate([ids, j + cs])
            scores = np.concatenate([scores, fast[r, j]])
            keep = _within_slack(rows, scores, len(q), k, slack)
            rows, ids, scores = rows[keep], ids[keep], scores[keep]
        exact = _rescore(q, corpus, rows, ids)
        order = np.lexsort((ids, -exact, rows))  # by query, then exact score desc, then row
        rows, ids, exact = rows[order], ids[order], exact[order]
        first = np.searchsorted(rows, np.arange(len(q)))
        top = np.arange(len(rows)) - first[rows] < k  # every query kept at least k
        out_s[qs : qs + len(q)] = exact[top].reshape(len(q), k)
        out_i[qs : qs + len(q)] = ids[top].reshape(len(q), k)
        if progress:
            progress(qs + len(q), nq)
    return out_s, out_i
