"""The instrument: seeded Gaussian random projection + sign, bit-packed, with exact Hamming top-k.

Frozen by golden tests (`phase2_assets_tests/compute/golden/`): any change to the bytes produced
here must fail those tests and bump INSTRUMENT_VERSION, which every code asset records.

Layout, so a reader can re-implement it bit for bit:
- RNG: ``numpy.random.Generator(numpy.random.PCG64(seed))``; ``standard_normal((bits, dim))`` in
  float64, cast to float32. Row j is hyperplane j, so codes are nested: the first 64 bits of a
  128-bit code are the 64-bit code (same seed).
- Bit j of a vector x is 1 iff ``x @ R[j] > 0`` (float32 dot product; exactly 0 gives 0).
- Packing: bit j lives in byte j // 8 at position j % 8, least significant bit first
  (``numpy.packbits(..., bitorder="little")``), the layout of faiss's binary indexes.
- Search: exact Hamming distance over all codes; ties are broken by corpus row, lower first.
"""

from __future__ import annotations

import numpy as np

INSTRUMENT_VERSION = "1.0.0"
BIT_ORDER = "little"


def projection_matrix(dim: int, bits: int, seed: int) -> np.ndarray:
    """The (bits, dim) float32 Gaussian projection; row j defines bit j."""
    if bits <= 0 or bits % 8:
        raise ValueError(f"bits must be a positive multiple of 8, got {bits}")
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.standard_normal((bits, dim)).astype(np.float32)


def encode(
    vectors: np.ndarray, bits: int, seed: int, *, chunk: int = 65536, out: np.ndarray | None = None
) -> np.ndarray:
    """Pack sign(vectors @ R.T) into (n, bits/8) uint8 codes, chunk by chunk (memmap friendly)."""
    vectors = np.asarray(vectors) if not isinstance(vectors, np.memmap) else vectors
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-d array of vectors, got shape {vectors.shape}")
    n, dim = vectors.shape
    r_t = projection_matrix(dim, bits, seed).T.copy()
    codes = out if out is not None else np.empty((n, bits // 8), dtype=np.uint8)
    if codes.shape != (n, bits // 8) or codes.dtype != np.uint8:
        raise ValueError(f"output array must be uint8 of shape {(n, bits // 8)}")
    for start in range(0, n, chunk):
        block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
        signs = (block @ r_t) > 0
        codes[start : start + len(block)] = np.packbits(signs, axis=1, bitorder=BIT_ORDER)
    return codes


def unpack(codes: np.ndarray, bits: int) -> np.ndarray:
    """(n, bits) array of 0/1 in bit order: the inverse of the packing above."""
    return np.unpackbits(codes, axis=1, count=bits, bitorder=BIT_ORDER)


def _as_words(codes: np.ndarray) -> np.ndarray:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.shape[1] % 8 == 0:
        return codes.view(np.uint64)
    return codes


def hamming_distances(query_codes: np.ndarray, corpus_codes: np.ndarray) -> np.ndarray:
    """Dense (nq, n) Hamming distances for one block; callers keep blocks small."""
    q = _as_words(query_codes)
    c = _as_words(corpus_codes)
    if q.shape[1] != c.shape[1]:
        raise ValueError(
            f"code widths differ: {query_codes.shape[1]} vs {corpus_codes.shape[1]} bytes"
        )
    dist = np.zeros((q.shape[0], c.shape[0]), dtype=np.int32)
    for w in range(q.shape[1]):
        dist += np.bitwise_count(q[:, w, None] ^ c[None, :, w])
    return dist


def hamming_topk(
    query_codes: np.ndarray,
    corpus_codes: np.ndarray,
    k: int,
    *,
    query_block: int = 4096,
    corpus_block: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by Hamming distance: (ids int64, distances int32), each (nq, k).

    faiss's ``IndexBinaryFlat`` does the scan (SIMD popcount, a heap per query, memory
    O(query_block x k)); it chooses arbitrarily among codes tied at the k-th distance, so ties
    are made exact here. Each query block asks faiss for k + margin results. When the last of
    them is farther than the k-th, every code tied with the k-th is among them and sorting by
    (distance, row) is exact. Queries whose tie group runs past the margin get one range search
    for everything within the k-th distance. Ties therefore break by corpus row, lower first,
    whatever faiss's threading does. ``corpus_block`` is the chunk in which memmapped codes are
    copied into the index.
    """
    import faiss

    n, width = corpus_codes.shape
    if n == 0:
        raise ValueError("empty corpus: nothing to search")
    if query_codes.shape[1] != width:
        raise ValueError(f"code widths differ: {query_codes.shape[1]} vs {width} bytes")
    k = min(k, n)
    nq = query_codes.shape[0]
    index = faiss.IndexBinaryFlat(8 * width)
    for start in range(0, n, corpus_block):
        index.add(np.ascontiguousarray(corpus_codes[start : start + corpus_block], np.uint8))
    ids = np.empty((nq, k), dtype=np.int64)
    dists = np.empty((nq, k), dtype=np.int32)
    wide = min(n, k + max(16, k // 2))
    for qs in range(0, nq, query_block):
        q = np.ascontiguousarray(query_codes[qs : qs + query_block], np.uint8)
        d, i = index.search(q, wide)
        keys = np.sort(d.astype(np.int64) * n + i, axis=1)
        kth = keys[:, k - 1] // n
        unresolved = np.flatnonzero((keys[:, -1] // n == kth) & (wide < n))
        best = keys[:, :k].copy()
        if unresolved.size:
            best[unresolved] = _within_kth(index, q[unresolved], kth[unresolved], k, n)
        ids[qs : qs + len(q)] = best % n
        dists[qs : qs + len(q)] = best // n
    return ids, dists


def _within_kth(index, q: np.ndarray, kth: np.ndarray, k: int, n: int) -> np.ndarray:
    """(len(q), k) sorted (distance, row) keys from every code within each query's k-th distance."""
    out = np.empty((len(q), k), dtype=np.int64)
    for radius in np.unique(kth):  # one range search per distinct k-th distance
        rows = np.flatnonzero(kth == radius)
        lims, d, i = index.range_search(q[rows], int(radius) + 1)
        keys = d.astype(np.int64) * n + i
        for j, row in enumerate(rows):
            mine = keys[lims[j] : lims[j + 1]]
            out[row] = np.sort(np.partition(mine, k - 1)[:k] if len(mine) > k else mine)
    return out
