"""PCA to b/32 dimensions in float32: the same bytes as a b-bit code, beside ``pca_int8``.

Why: bitbudget and the dimensionality-reduction literature compare binary codes with keeping the
leading principal directions at full precision (Pearson 1901, Hotelling 1933): at b bits that is
b/32 float32 coordinates, against ``pca_int8``'s b/8 coordinates of one byte each. Built and
searched exactly as ``pca_int8`` (faiss ``PCA{p},Flat``, trained on the seeded corpus sample;
corpus stored centred, the query projected without centring, so the ranking is that of q.Px in
the kept subspace; see that module).

Memory: b/8 bytes per vector; fixed overhead = PCA matrix (d x p) and mean (d), float32.
"""

from __future__ import annotations

from phase2_assets.compute.methods.base import Built, Memory, Method, register
from phase2_assets.compute.methods.pca_int8 import build_pca_int8, pca_requirement, search_uncentred


@register
class PCAFloat(Method):
    name = "pca_float"
    family = "reduced"
    budget = "bits"
    description = (
        "PCA to bits/32 dims in float32: the binary code's bytes spent on a few exact "
        "principal coordinates; corpus centred, query not (ranking of q.Px)."
    )
    peer = "bitbudget `pca`"
    code_bytes = "b/8"
    fits_when = "32 divides b, b/32 ≤ d"
    also_counted = "PCA and mean: 4·(d·b/32 + d)"

    def fits(self, dim, bits):
        return bits % 32 == 0 and 0 < bits // 32 <= dim

    def requirement(self, n_docs, dim, bits, settings):
        return pca_requirement(n_docs, settings.pq_train_size, bits // 32)

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        p = bits // 32
        return Memory(bits / 8, 4 * (dim * p + dim))

    def build(self, corpus, bits, settings):
        return Built(
            build_pca_int8(
                corpus,
                bits // 32,
                train_size=settings.pq_train_size,
                seed=settings.pq_seed,
                block=settings.corpus_block,
                storage="Flat",
            )
        )

    def search(self, built, queries, k, bits, settings):
        return search_uncentred(built.index, queries, k, query_block=settings.query_block)
