"""The instrument as a method: packed sign codes, exact Hamming top-k."""

from phase2_assets.compute.analysis import sanity
from phase2_assets.compute.methods import instrument
from phase2_assets.compute.methods.base import (
    Built,
    Check,
    Memory,
    Method,
    Stored,
    hamming_search,
    register,
)


@register
class Binary(Method):
    name = "binary"
    budget = "bits"
    in_plan = True
    description = "The instrument: seeded Gaussian projection + sign, exact Hamming top-k."
    peer = "the plan's instrument (random projection + sign)"
    code_bytes = "b/8"
    also_counted = "projection 4·b·d (regenerable from its seed, counted anyway)"
    stored = Stored(
        asset="binary_codes",
        format="npy",
        experiments=("E2", "E5"),
        description=(
            "The instrument's packed binary codes of the corpus (n_docs x bits/8 uint8): seeded "
            "Gaussian projection d -> bits (seed projection = {projection_seed}), sign, packed "
            "little-endian. Skipped (not materialised) where the study's tiers do not ask for "
            "binary codes at this bit length."
        ),
        seeds=(("projection", "projection_seed"),),
        memory_heavy=False,
        index_checks=(
            Check(
                "self_hamming_zero",
                "A sample of codes searched against the corpus finds distance 0 first (itself "
                "or an exact duplicate): the Hamming search and packing agree.",
                blocking=True,
            ),
            Check(
                "reproducible",
                "Re-encoding a sample with the recorded seed gives the stored bytes exactly: "
                "the codes are a deterministic function of (vectors, seed, bits).",
                blocking=True,
            ),
            Check(
                "bit_balance",
                "No bit is (nearly) constant: the fraction of ones of every bit is within the "
                "configured deviation from 0.5. Anisotropic embeddings skew bits; a constant "
                "bit wastes memory. Warning only.",
                warn_only=True,
            ),
            Check(
                "hamming_tracks_angle",
                "SimHash theory: normalised Hamming distance estimates angle/pi. The mean error "
                "over random pairs must stay within the configured bound.",
            ),
        ),
    )

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

    def index_metadata(self, built, bits, settings):
        return {"instrument_version": instrument.INSTRUMENT_VERSION}

    def check_index(self, built, corpus, bits, settings):
        codes, t = built.index, settings.check_thresholds
        sample, seed = t["sample_size"], settings.checks_seed
        return {
            "self_hamming_zero": sanity.self_hamming_zero(codes, sample, seed),
            "reproducible": sanity.reproducible_codes(
                corpus, codes, bits, settings.projection_seed, sample, seed
            ),
            "bit_balance": sanity.bit_balance(codes, bits, t["bit_balance_max_deviation"]),
            "hamming_tracks_angle": sanity.hamming_matches_angle(
                corpus, codes, bits, t["hamming_angle_max_error"], sample, seed
            ),
        }
