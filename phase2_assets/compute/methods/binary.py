"""The instrument as a method: packed sign codes, exact Hamming top-k."""

from phase2_assets.compute import instrument
from phase2_assets.compute.methods.base import Built, Memory, Method, hamming_search, register


@register
class Binary(Method):
    name = "binary"
    budget = "bits"
    in_plan = True
    description = "The instrument: seeded Gaussian projection + sign, exact Hamming top-k."

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        # The projection can be regenerated from its seed; its float32 size is reported anyway.
        return Memory(bits / 8, 4 * bits * dim)

    def build(self, corpus, bits, settings):
        return Built(
            instrument.encode(corpus, bits, settings.projection_seed, chunk=settings.corpus_block)
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        q_codes = instrument.encode(queries, bits, settings.projection_seed)
        return hamming_search(q_codes, index, k, settings)
