"""The sign of every raw dimension: the binary code users get by default.

Why: sentence-transformers' ``quantize_embeddings(..., precision="ubinary")`` (Shakir, Aarsen &
Lee, "Binary and Scalar Embedding Quantization for Significantly Faster & Cheaper Retrieval",
Hugging Face blog, 2024), bitbudget's ``binary`` and the binary indexes of vector databases all
threshold each dimension of the embedding at zero: d bits, no projection, no centring. It is the
scheme a search engineer compares against first, so it sits beside the instrument (a random
projection to any bit length) and ``sign_centered`` (thresholds at the corpus mean).

The packing is sentence-transformers' exactly, ``np.packbits(x > 0, axis=-1)``: most significant
bit first, the last byte padded with zero bits when d is not a multiple of 8 (a test checks the
bytes against ``quantize_embeddings``). Hamming distance does not depend on the bit order within a
byte, and the padding is the same for corpus and queries, so it never adds distance. Search is the
instrument's exact Hamming top-k, ties by lower corpus row.
"""

from __future__ import annotations

import numpy as np

from phase2_assets.compute.data.storage import row_blocks
from phase2_assets.compute.methods.base import Built, Memory, Method, hamming_search, register


def encode_sign(vectors: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """(n, ceil(d/8)) uint8: ``np.packbits(x > 0)``, block by block (memmap friendly)."""
    if vectors.ndim != 2:
        raise ValueError(f"vectors of shape {vectors.shape}: expected (n, d)")
    n, d = vectors.shape
    codes = np.empty((n, -(-d // 8)), dtype=np.uint8)
    for start, block in row_blocks(vectors, chunk):
        codes[start : start + len(block)] = np.packbits(block > 0, axis=-1)
    return codes


def padded_bits(dim: int) -> int:
    return -(-dim // 8) * 8


@register
class Sign(Method):
    name = "sign"
    budget = "reference"
    description = (
        "Sign of each raw dimension (d bits, no projection or centring: sentence-transformers' "
        "ubinary), exact Hamming top-k."
    )
    peer = "sentence-transformers `quantize_embeddings(precision='ubinary')`, bitbudget `binary`"
    code_bytes = "⌈d/8⌉"

    def code_bits(self, dim, bits):
        return padded_bits(dim)

    def memory(self, dim, bits):
        return Memory(padded_bits(dim) / 8, 0)

    def build(self, corpus, bits, settings):
        return Built(encode_sign(corpus, chunk=settings.corpus_block))

    def search(self, built, queries, k, bits, settings):
        q_codes = encode_sign(queries, chunk=settings.query_block)
        if q_codes.shape[1] != built.index.shape[1]:
            raise ValueError(
                f"dimension mismatch: queries give {q_codes.shape[1]}-byte codes, the corpus "
                f"{built.index.shape[1]}-byte codes"
            )
        return hamming_search(q_codes, built.index, k, settings)
