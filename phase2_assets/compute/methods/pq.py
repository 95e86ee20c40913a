"""faiss product quantisation at the same bytes per vector as the binary code."""

from phase2_assets.compute import quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, register


@register
class PQ(Method):
    name = "pq"
    budget = "bits"
    description = "faiss IndexPQ, M = bits/8 sub-quantisers of 8 bits, asymmetric distance."

    follows = "pq"
    in_plan = True

    def fits(self, dim, bits):
        return dim % (bits // 8) == 0

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        m = bits // 8
        return Memory(float(m), 4 * dim * 256)  # M codebooks of 256 centroids of dim/M floats

    def build(self, corpus, bits, settings):
        return Built(
            *quantizers.build_pq(
                corpus,
                bits // 8,
                nbits=settings.pq_nbits,
                train_size=settings.pq_train_size,
                seed=settings.pq_seed,
                block=settings.corpus_block,
                progress=settings.progress,
            )
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return quantizers.index_topk(
            index, queries, k, query_block=settings.query_block, progress=settings.progress
        )
