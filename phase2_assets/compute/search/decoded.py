"""A faiss scalar quantiser's stored vectors as a float32 matrix, decoded a block at a time.

Why: faiss scans a scalar quantiser (SQ8, SQ4, fp16) by decoding and multiplying one vector at a
time, about 9 G multiply-adds a second on 2 cores, while the same arithmetic as blocked matrix
products runs at BLAS speed (the float ground truth: 500K x 768 x 1,000 queries in 7.9 s against
SQ8's 41.9 s). Every score of such an index is ``q · decode(code)``, so the exact float search
(``exact_search.float_topk``) over these decoded vectors *is* faiss's scan, done as products of
query blocks with decoded corpus blocks. Being exact, its lists are also the same on every CPU
and thread count, ties by lower row; they can differ from faiss's only where two scores are
within faiss's own float32 rounding of each other.

Memory: the codes are read in place from the index (no copy); one decoded block of
``corpus_block`` rows exists at a time, as for a memory-mapped float matrix.
"""

from __future__ import annotations

import faiss
import numpy as np


class DecodedVectors:
    """Read-only (n, d) float32 array-like over a faiss index's codes: slices and row arrays
    decode through the index's own ``sa_decode`` (the vectors faiss's search multiplies)."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, index: faiss.Index):
        index = faiss.downcast_index(index)
        if not isinstance(index, faiss.IndexFlatCodes):
            raise TypeError(f"{type(index).__name__} keeps no flat codes to decode")
        self.index = index  # keeps the codes the view below reads alive
        n, size = index.ntotal, index.code_size
        self.shape = (n, index.d)
        self.codes = (
            faiss.rev_swig_ptr(index.codes.data(), n * size).reshape(n, size)
            if n
            else np.empty((0, size), dtype=np.uint8)
        )

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        codes = self.codes[rows]
        if codes.ndim == 1:
            raise IndexError("index rows by a slice or an array of rows")
        if not len(codes):
            return np.empty((0, self.shape[1]), dtype=np.float32)
        return self.index.sa_decode(np.ascontiguousarray(codes))
