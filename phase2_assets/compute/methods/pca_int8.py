"""PCA to p = bits/8 dimensions, then 8-bit scalar quantisation: the same bytes as a b-bit code.

Why: a b-bit binary code spends b/8 bytes on one bit in each of b directions. The obvious
alternative spends the same bytes on p = b/8 directions at 8 bits each: keep the p principal
directions of the corpus (PCA; Pearson 1901, Hotelling 1933) and quantise each coordinate to a
byte with a per-dimension min/max range (faiss SQ8, as the int8 reference row; Douze et al.,
"The Faiss library", arXiv:2401.08281, 2024). When the embeddings' variance is concentrated in few
directions this can beat many 1-bit directions, so it is the natural "reduce the dimension instead
of binarising" baseline at matched memory.

faiss details (1.15): ``index_factory(d, "PCA{p},SQ8", METRIC_INNER_PRODUCT)`` gives an
``IndexPreTransform``: a ``PCAMatrix`` (x -> A (x - mu), no whitening, no extra rotation; trained
on the seeded corpus sample) in front of an ``IndexScalarQuantizer`` (QT_8bit, min/max ranges of
the projected sample; out-of-range values are clamped).

Centring, and why the queries are *not* centred: faiss applies the same transform to queries, so
its own search ranks by A(q - mu) . A(x - mu) = q.Px - q.Pmu - mu.Px + mu.Pmu (P = A^T A, the
projector on the kept directions). The q.Pmu and mu.Pmu terms are constant per query, but
mu.Px depends on the document: every document is penalised by its similarity to the corpus mean,
which is large and variable for real embeddings (they share a common direction). That changes
the ranking even when PCA is lossless (on rank-6 unit vectors with a common offset, 3000 x 64,
recall@10 was 0.06 with faiss's search against 0.95 with the uncentred query). So the corpus is
stored centred (tight SQ8 ranges) while the query is projected *without* centring, q -> A q, and
scored against the stored codes: A q . A (x - mu) = q.Px - q.Pmu, whose second term is constant
per query, so the ranking is that of q.Px, the inner product in the kept subspace, up to int8
noise.

Memory: p bytes = bits/8 per vector; fixed overhead = PCA matrix (d x p), mean (d) and the SQ8
range (2 x p: minimum and width per dimension), float32.
"""

from __future__ import annotations

import faiss
import numpy as np

from phase2_assets.compute import exact_products, threads
from phase2_assets.compute.methods import quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, register


def build_pca_int8(
    corpus: np.ndarray,
    p: int,
    *,
    train_size: int,
    seed: int,
    block: int = 65536,
    storage: str = "SQ8",
) -> faiss.IndexPreTransform:
    """faiss PCA{p},SQ8 (inner product) trained on a seeded corpus sample, filled in blocks;
    ``storage="Flat"`` keeps the projected coordinates in float32 instead (``pca_float``)."""
    dim = corpus.shape[1]
    if not 0 < p <= dim:
        raise ValueError(f"PCA to {p} dimensions needs 0 < p <= {dim}")
    index = faiss.index_factory(dim, f"PCA{p},{storage}", faiss.METRIC_INNER_PRODUCT)
    # faiss's PCAMatrix sums its covariance and solves the eigenproblem with a thread-dependent
    # order, and applies it with the bundled OpenBLAS: trained and applied on one thread, so the
    # index is the same on any number of cores (``threads.single_thread``).
    with threads.single_thread():
        index.train(quantizers.training_sample(corpus, train_size, seed))
        quantizers.add_in_blocks(index, corpus, block)
    return index


def pca_requirement(n_docs: int, train_size: int, p: int) -> str | None:
    """faiss's PCAMatrix needs at least as many training vectors as kept dimensions."""
    n_train = min(n_docs, train_size)
    if n_train >= p:
        return None
    return f"PCA to {p} dimensions needs at least {p} training vectors; the corpus has {n_docs:,}"


def query_projection(index: faiss.IndexPreTransform) -> np.ndarray:
    """The (d, p) float32 matrix A^T: queries are projected by it, without centring."""
    pca = faiss.downcast_VectorTransform(index.chain.at(0))
    return faiss.vector_to_array(pca.A).reshape(pca.d_out, pca.d_in).T.copy()


def search_uncentred(
    index: faiss.IndexPreTransform, queries: np.ndarray, k: int, *, query_block: int = 1024
) -> np.ndarray:
    """Top-k ids scored by (A q) . code(A (x - mu)): the ranking of q.Px (see module docstring)."""
    a_t = query_projection(index)
    codes = faiss.downcast_index(index.index)
    k = min(k, codes.ntotal)
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for qs in range(0, queries.shape[0], query_block):
        q = exact_products.matmul(np.asarray(queries[qs : qs + query_block], np.float32), a_t)
        out[qs : qs + len(q)] = quantizers.index_topk(
            codes, np.ascontiguousarray(q), k, query_block=query_block
        )
    return out


@register
class PCAInt8(Method):
    name = "pca_int8"
    family = "scalar"
    budget = "bits"
    description = (
        "PCA to bits/8 dims + faiss SQ8 (one byte per kept dimension): the binary code's bytes "
        "spent on fewer, finer coordinates; corpus centred, query not (ranking of q.Px)."
    )
    peer = "PCA + faiss SQ8"
    code_bytes = "b/8"
    fits_when = "b/8 ≤ d"
    also_counted = "PCA, mean and ranges: 4·(d·b/8 + d + 2·b/8)"

    def fits(self, dim, bits):
        return 0 < bits // 8 <= dim

    def requirement(self, n_docs, dim, bits, settings):
        return pca_requirement(n_docs, settings.pq_train_size, bits // 8)

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        p = bits // 8
        return Memory(bits / 8, 4 * (dim * p + dim + 2 * p))

    def build(self, corpus, bits, settings):
        return Built(
            build_pca_int8(
                corpus,
                bits // 8,
                train_size=settings.pq_train_size,
                seed=settings.pq_seed,
                block=settings.corpus_block,
            )
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return search_uncentred(index, queries, k, query_block=settings.query_block)
