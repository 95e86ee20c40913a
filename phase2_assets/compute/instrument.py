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
    query_block: int = 256,
    corpus_block: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by Hamming distance: (ids int64, distances int32), each (nq, k).

    Streams query x corpus blocks and keeps a running top-k, so memory is
    O(query_block x corpus_block) whatever the corpus size. Ties break by corpus row.
    """
    n = corpus_codes.shape[0]
    if n == 0:
        raise ValueError("empty corpus: nothing to search")
    k = min(k, n)
    nq = query_codes.shape[0]
    ids = np.empty((nq, k), dtype=np.int64)
    dists = np.empty((nq, k), dtype=np.int32)
    for qs in range(0, nq, query_block):
        q = query_codes[qs : qs + query_block]
        best = None
        for cs in range(0, n, corpus_block):
            c = np.asarray(corpus_codes[cs : cs + corpus_block])
            d = hamming_distances(q, c).astype(np.int64)
            # One sortable key per (distance, row): smaller distance first, then lower row.
            keys = d * n + np.arange(cs, cs + len(c), dtype=np.int64)[None, :]
            if best is not None:
                keys = np.concatenate([best, keys], axis=1)
            if keys.shape[1] > k:
                keys = np.partition(keys, k - 1, axis=1)[:, :k]
            best = keys
        best = np.sort(best, axis=1)
        ids[qs : qs + len(q)] = best % n
        dists[qs : qs + len(q)] = best // n
    return ids, dists
