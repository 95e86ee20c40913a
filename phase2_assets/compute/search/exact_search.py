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

from collections.abc import Callable, Iterable

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


def _within_slack(rows: np.ndarray, scores: np.ndarray, nq: int, k: int, slack: np.ndarray):
    """(mask of the (query row, score) entries within ``slack`` of their query's k-th best, that
    k-th best per query: -inf for a query with fewer than k entries)."""
    order = np.lexsort((-scores, rows))
    first = np.searchsorted(rows[order], np.arange(nq))
    full = np.bincount(rows, minlength=nq) >= k
    kth = np.full(nq, -np.inf)
    kth[full] = scores[order][first[full] + k - 1]
    return scores >= (kth - slack)[rows], kth


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
    with_scores: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """(scores float32, ids int64), each (nq, min(k, n)), by exact inner product.

    The float32 product only screens: a vector can be in the exact top k only if its float32
    score is within twice the product's error bound of the k-th float32 score, so a running pool
    per query keeps just those (a few more than k at the plan's scale), and only they are
    re-scored by the exact product once the corpus is scanned (``screened_topk``; each corpus
    block is read once for all queries). ``with_scores=False``, for a search that keeps only the
    ranking, re-scores only the candidates whose order the screen leaves open and returns no
    scores; the ids are the same. ``progress(rows scanned, rows)`` after each corpus block.
    """
    n = corpus.shape[0]
    if n == 0:
        raise ValueError("empty corpus: nothing to search")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"dimension mismatch: queries {queries.shape[1]}-d, corpus {corpus.shape[1]}-d"
        )
    k = min(k, n)
    largest_norm = 0.0
    for _, c in row_blocks(corpus, corpus_block, np.float32):
        largest_norm = max(largest_norm, float(exact_products.norms(c).max()))
    bound = exact_products.float32_error_bound(corpus.shape[1])
    q = np.ascontiguousarray(queries, dtype=np.float32)
    # Every float32 score is within bound * |q| * |c| <= slack / 3 of the exact one.
    slack = 3 * bound * exact_products.norms(q) * largest_norm
    scores, ids = screened_topk(
        q,
        row_blocks(corpus, corpus_block, np.float32),
        k,
        slack,
        lambda rows, ids: _rescore(q, corpus, rows, ids),
        query_block=query_block,
        all_exact=with_scores,
        progress=(lambda done: progress(done, n)) if progress else None,
    )
    return (scores if with_scores else None), ids


def screened_topk(
    screen: np.ndarray,
    blocks: Iterable[tuple[int, np.ndarray]],
    k: int,
    slack: np.ndarray,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    query_block: int = 1024,
    all_exact: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids), each (nq, k): the top k by ``exact(rows, ids)`` (the exact scores of those
    (screen row, corpus id) pairs), ties by lower id, found by a float32 BLAS screen.

    ``blocks`` yields (first row, block) of the corpus as float32, each read (or decoded) once
    for all queries, ``query_block`` of them to a product; ``screen @ block.T`` must be within
    ``slack / 3`` (per query) of the exact score of every pair. A vector can then be in the
    exact top k only if its screened score is within ``slack`` of the k-th screened score, so a
    running pool per query keeps just those (a few more than k at the plan's scale), and only
    they are scored exactly, after the scan. ``progress(rows)`` after each corpus block.

    ``all_exact=False`` scores exactly only the candidates whose screened score is within
    ``2 * slack / 3`` of a neighbour's of the same query (the two could be in either order) and
    ranks the others by their screened scores: whatever the screen's rounding, the order is the
    exact one (a pair further apart cannot swap, and exact ties are always that close), so the
    ids are those of ``all_exact=True``; the returned scores are then ranking keys, not scores
    to keep.
    """
    nq = screen.shape[0]
    starts = range(0, nq, query_block)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    pools = [empty] * len(starts)
    # Each query's k-th best screened score so far: once the pool holds k, a block's candidates
    # need only reach it (less the slack), and no block needs its own k-th (a partition).
    pool_kth = np.full(nq, -np.inf)
    for cs, c in blocks:
        kk = min(k, len(c))
        for b, qs in enumerate(starts):
            q_slack = slack[qs : qs + query_block]
            fast = screen[qs : qs + query_block] @ c.T
            kth = pool_kth[qs : qs + query_block]
            if not np.isfinite(kth).all():
                kth = np.maximum(kth, -np.partition(-fast, kk - 1, axis=1)[:, kk - 1])
            r, j = np.nonzero(fast >= (kth - q_slack)[:, None])
            rows, ids, scores = pools[b]
            rows = np.concatenate([rows, r])
            ids = np.concatenate([ids, j + cs])
            scores = np.concatenate([scores, fast[r, j]])
            keep, pool_kth[qs : qs + query_block] = _within_slack(
                rows, scores, len(fast), k, q_slack
            )
            pools[b] = rows[keep], ids[keep], scores[keep]
        if progress:
            progress(cs + len(c))
    out_s, out_i = [], []
    for (rows, ids, scores), qs in zip(pools, starts, strict=True):
        rows = rows + qs  # rows of the whole screen
        if all_exact:
            scored = exact(rows, ids)
        else:
            scored = _exact_where_open(rows, ids, scores, slack, exact)
        order = np.lexsort((ids, -scored, rows))  # by query, then exact score desc, then row
        rows, ids, scored = rows[order], ids[order], scored[order]
        size = min(query_block, nq - qs)
        first = np.searchsorted(rows, qs + np.arange(size))
        top = np.arange(len(rows)) - first[rows - qs] < k  # every query kept at least k
        out_s.append(scored[top].reshape(size, k))
        out_i.append(ids[top].reshape(size, k))
    if not out_s:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    return np.concatenate(out_s), np.concatenate(out_i)


def _exact_where_open(rows, ids, fast, slack, exact) -> np.ndarray:
    """Ranking keys for the pool: the exact score of every candidate whose screened score is
    within 2 * slack / 3 of a neighbour's (in screened order, same query), the screened score
    of the others (see ``screened_topk``)."""
    order = np.lexsort((-fast, rows))
    r, f = rows[order], fast[order].astype(np.float64)
    close = (r[1:] == r[:-1]) & (f[:-1] - f[1:] <= (2 * slack / 3)[r[1:]])
    open_ = np.zeros(len(r), dtype=bool)
    open_[1:] |= close
    open_[:-1] |= close
    keys = np.empty(len(rows), dtype=np.float64)
    keys[order] = f
    pick = order[open_]
    if len(pick):
        keys[pick] = exact(rows[pick], ids[pick])
    return keys
