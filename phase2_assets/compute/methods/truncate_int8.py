"""Truncation and int8 together: the first b/8 dimensions, re-normalised, one byte each (SQ8).

Why: the usual way to stack the two compressions a Matryoshka model offers (truncate, then
scalar-quantise), at the same b/8 bytes as a b-bit code: 4x the dimensions of ``truncate`` at a
quarter of the precision. The prefix is re-normalised as in ``truncate``; the bytes are faiss SQ8
with the prefix's per-dimension min/max, as the int8 reference row.
"""

from __future__ import annotations

from phase2_assets.compute.methods import quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, register
from phase2_assets.compute.methods.truncate import prefix


@register
class TruncateInt8(Method):
    name = "truncate_int8"
    family = "scalar"
    budget = "bits"
    description = "The first bits/8 dimensions, re-normalised, in faiss SQ8 (one byte each)."
    peer = "Matryoshka truncation + int8"
    code_bytes = "b/8"
    fits_when = "b/8 ≤ d"
    also_counted = "ranges 2·4·b/8"

    def fits(self, dim, bits):
        return 0 < bits // 8 <= dim

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bits / 8, 2 * 4 * (bits // 8))  # the prefix's SQ8 ranges

    def build(self, corpus, bits, settings):
        kept = prefix(corpus, bits // 8, chunk=settings.corpus_block)
        return Built(*quantizers.build_int8(kept, block=settings.corpus_block))

    def search(self, built, queries, k, bits, settings):
        q = prefix(queries, bits // 8, chunk=settings.query_block)
        return quantizers.index_topk(
            built.index,
            q,
            k,
            query_block=settings.query_block,
            corpus_block=settings.corpus_block,
            progress=settings.progress,
        )
