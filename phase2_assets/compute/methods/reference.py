"""Reference rows: float32 (the exact ranking itself) and int8 (faiss SQ8)."""

from phase2_assets.compute import quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, register


@register
class Float32(Method):
    name = "float32"
    budget = "reference"
    in_plan = True
    description = "Exact inner product on the float32 vectors: the ground truth itself."

    def code_bits(self, dim, bits):
        return 32 * dim

    def memory(self, dim, bits):
        return Memory(4.0 * dim, 0)


@register
class Int8(Method):
    name = "int8"
    budget = "reference"
    in_plan = True
    description = "faiss SQ8: one byte per dimension, per-dimension min/max ranges."

    def code_bits(self, dim, bits):
        return 8 * dim

    def memory(self, dim, bits):
        return Memory(float(dim), 2 * 4 * dim)

    def build(self, corpus, bits, settings):
        return Built(
            *quantizers.build_int8(corpus, block=settings.corpus_block, progress=settings.progress)
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return quantizers.index_topk(
            index, queries, k, query_block=settings.query_block, progress=settings.progress
        )
