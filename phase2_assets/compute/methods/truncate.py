"""Matryoshka-style truncation: the first b/32 dimensions in float32, re-normalised.

Why: Matryoshka representation learning (Kusupati et al., "Matryoshka Representation Learning",
NeurIPS 2022) trains embeddings whose leading dimensions carry most of the information, and
several model families (OpenAI text-embedding-3, nomic-embed, mxbai, later bge and e5 variants)
advertise truncation as their compression. At a budget of b bits this keeps b/32 float32
dimensions: the same bytes as a b-bit code. On a model not trained that way the leading
dimensions are no better than any others, which is itself worth measuring.

The kept prefix is re-normalised (a zero prefix stays zero), so scores are cosines of the
prefixes; search is the exact float top-k of the ground truth (``exact_search.float_topk``).
"""

from __future__ import annotations

import numpy as np

from phase2_assets.compute.data.storage import row_blocks
from phase2_assets.compute.methods.base import Built, Memory, Method, register
from phase2_assets.compute.search.exact_search import float_topk


def prefix(vectors: np.ndarray, p: int, *, chunk: int = 65536) -> np.ndarray:
    """(n, p) float32: the first p dimensions of every row, L2-normalised."""
    if not 0 < p <= vectors.shape[1]:
        raise ValueError(f"a {p}-dimension prefix of {vectors.shape[1]}-d vectors")
    out = np.empty((len(vectors), p), dtype=np.float32)
    for start, rows in row_blocks(vectors, chunk):
        block = np.asarray(rows[:, :p], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block / np.where(norms > 0, norms, 1)
    return out


@register
class Truncate(Method):
    name = "truncate"
    family = "reduced"
    budget = "bits"
    description = "The first bits/32 dimensions in float32, re-normalised: Matryoshka truncation."
    peer = "Matryoshka truncation (bitbudget `truncate`)"
    code_bytes = "b/8"
    fits_when = "32 divides b, b/32 ≤ d"

    def fits(self, dim, bits):
        return bits % 32 == 0 and 0 < bits // 32 <= dim

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bits / 8, 0)

    def build(self, corpus, bits, settings):
        return Built(prefix(corpus, bits // 32, chunk=settings.corpus_block))

    def search(self, built, queries, k, bits, settings):
        q = prefix(queries, built.index.shape[1], chunk=settings.query_block)
        return float_topk(
            q,
            built.index,
            k,
            query_block=settings.query_block,
            corpus_block=settings.corpus_block,
            progress=settings.progress,
            with_scores=False,
        )[1]
