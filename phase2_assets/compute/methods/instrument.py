"""The instrument: seeded Gaussian random projection + sign, bit-packed, with exact Hamming top-k.

Frozen by the golden codes in the instrument's tests (`compute/methods/test_instrument.py`): any
change to the bytes produced here must fail those tests and bump INSTRUMENT_VERSION, which every
code asset records.

Layout, so a reader can re-implement it bit for bit:
- RNG: ``numpy.random.Generator(numpy.random.PCG64(seed))``; ``standard_normal((bits, dim))`` in
  float64, cast to float32. Row j is hyperplane j, so codes are nested: the first 64 bits of a
  128-bit code are the 64-bit code (same seed).
- Bit j of a vector x is 1 iff ``x @ R[j] > 0``, decided by the exact dot product of the float32
  vectors (``compute/exact_products.positive``), not by a BLAS kernel's rounding of it, so a code
  is the same on every CPU; exactly 0 gives 0.
- Packing: bit j lives in byte j // 8 at position j % 8, least significant bit first
  (``numpy.packbits(..., bitorder="little")``), the layout of faiss's binary indexes.
- Search: exact Hamming distance over all codes; ties are broken by corpus row, lower first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phase2_assets.compute.data.storage import row_blocks
from phase2_assets.compute.exact_products import positive

INSTRUMENT_VERSION = "1.1.0"  # 1.1: bits by the exact dot product, the same on every CPU
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
    for start, block in row_blocks(vectors, chunk, np.float32):
        signs = positive(block, r_t)
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


# Bytes of faiss's per-query-block bookkeeping in hamming_topk (see there).
_COUNTER_BYTES = 64 << 20


def hamming_topk(
    query_codes: np.ndarray,
    corpus_codes: np.ndarray,
    k: int,
    *,
    query_block: int = 256,
    corpus_block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by Hamming distance: (ids int64, distances int32), each (nq, k).

    faiss's ``IndexBinaryFlat`` scans with SIMD popcount. Its counting search (``use_heap =
    False``, faiss's ``hammings_knn_mc``) keeps, per distance, the first k codes met in row
    order, and scans rows in order for every query: ties break by corpus row, lower first,
    whatever the threading. It is also about twice as fast as faiss's default heap, which keeps
    an arbitrary subset of the codes tied at the k-th distance. The tests pin the tie order
    against a brute force on tie-heavy data. Its bookkeeping is (queries x (bits + 1) x k)
    int64, so query blocks are sized to keep it under 64 MiB. ``corpus_block`` is the chunk in
    which memory-mapped codes are copied into the index.
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
    index.use_heap = False
    for start in range(0, n, corpus_block):
        index.add(np.ascontiguousarray(corpus_codes[start : start + corpus_block], np.uint8))
    block = max(1, min(query_block, _COUNTER_BYTES // (8 * (8 * width + 1) * k)))
    ids = np.empty((nq, k), dtype=np.int64)
    dists = np.empty((nq, k), dtype=np.int32)
    for qs in range(0, nq, block):
        q = np.ascontiguousarray(query_codes[qs : qs + block], np.uint8)
        d, i = index.search(q, k)
        keys = d.astype(np.int64) * n + i
        if (np.diff(keys, axis=1) <= 0).any():
            raise RuntimeError("faiss returned Hamming neighbours out of (distance, row) order")
        ids[qs : qs + len(q)] = i
        dists[qs : qs + len(q)] = d
        if progress:
            progress(qs + len(q), nq)
    return ids, dists
