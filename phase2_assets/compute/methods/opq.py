"""Optimized Product Quantization (OPQ): a learned rotation before PQ, at M = bits/8 bytes.

Why: plain PQ cuts the vector into M contiguous sub-vectors and quantises each independently, so
it wastes codes when variance is concentrated in a few directions or correlated across the cut.
OPQ (Ge, He, Ke & Sun, "Optimized Product Quantization for Approximate Nearest Neighbor Search",
CVPR 2013; TPAMI 2014) learns an orthogonal rotation R jointly with the codebooks, alternating
PQ training on the rotated data with the orthogonal Procrustes solution for R, which balances the
variance across sub-spaces and decorrelates them. It is the standard stronger baseline at the
same bytes per vector as PQ; the rotation preserves inner products, so the ranking stays
comparable with the cosine ground truth.

faiss details (1.15), made deterministic:
- ``index_factory(d, "OPQ{M},PQ{M}x8np", METRIC_INNER_PRODUCT)`` gives an ``IndexPreTransform``
  whose chain holds an ``OPQMatrix`` (``faiss.downcast_VectorTransform(index.chain.at(0))``) in
  front of an ``IndexPQ`` (``faiss.downcast_index(index.index)``), 8 bits per sub-quantiser.
  ``np`` turns off the polysemous training the factory enables by default for "PQ": it only
  permutes centroid ids for Hamming filtering, which asymmetric search never uses, and it
  dominated the training time (as for ``pq``, whose ``faiss.IndexPQ`` has it off).
- ``OPQMatrix.train`` starts from a random rotation drawn with a hard-coded seed (1234) and made
  orthogonal with LAPACK's QR, unless ``OPQMatrix.A`` is already set: we set it to a random
  orthogonal d x d matrix from ``numpy.random.default_rng(pq_seed)``.
- The PQ it alternates with is a default ``ProductQuantizer`` (k-means seed 1234) unless
  ``OPQMatrix.pq`` points to one: we pass one whose ``cp.seed`` is ``pq_seed`` (and detach it after
  training). The final ``IndexPQ`` k-means uses ``index.pq.cp.seed = pq_seed``, as ``pq`` does.
- ``OPQMatrix.niter`` (outer alternations, faiss default 50) is ``OPQ_ITERATIONS``; ``niter_pq``
  (4) and ``niter_pq_0`` (40) keep their defaults. Training sees the seeded corpus sample
  (``pq_train_size``), which OPQ subsamples further, with a fixed seed, above
  ``max_train_points`` (65536).
- Memory: M bytes per vector; fixed overhead = the float32 d x d rotation + 256 centroids of d/M
  floats for each of the M sub-quantisers (256 x d floats).
"""

from __future__ import annotations

import faiss
import numpy as np

from phase2_assets.compute import quantizers
from phase2_assets.compute.methods.base import Memory, Method, register

OPQ_ITERATIONS = 50  # faiss's default OPQMatrix.niter
NBITS = 8


def build_opq(
    corpus: np.ndarray,
    m: int,
    *,
    train_size: int,
    seed: int,
    block: int = 65536,
    iterations: int = OPQ_ITERATIONS,
) -> faiss.IndexPreTransform:
    """faiss OPQ rotation + IndexPQ (m bytes per vector, inner product), all training seeded."""
    dim = corpus.shape[1]
    if m <= 0 or dim % m:
        raise ValueError(
            f"OPQ with {m} sub-quantisers needs a dimension divisible by {m}, not {dim}"
        )
    index = faiss.index_factory(dim, f"OPQ{m},PQ{m}x{NBITS}np", faiss.METRIC_INNER_PRODUCT)
    opq = faiss.downcast_VectorTransform(index.chain.at(0))
    opq.niter = iterations
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    start_rotation = q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]
    faiss.copy_array_to_vector(start_rotation.astype(np.float32).ravel(), opq.A)
    alternating_pq = faiss.ProductQuantizer(dim, m, NBITS)
    alternating_pq.cp.seed = seed
    opq.pq = alternating_pq
    faiss.downcast_index(index.index).pq.cp.seed = seed
    try:
        index.train(quantizers.training_sample(corpus, train_size, seed))
    finally:
        opq.pq = None  # the Python object owns it: never leave faiss a dangling pointer
    quantizers.add_in_blocks(index, corpus, quantizers.pq_encode_block(m, NBITS, block))
    return index


@register
class OPQ(Method):
    name = "opq"
    budget = "bits"
    description = (
        "faiss OPQ rotation + IndexPQ (Ge et al., CVPR 2013), M = bits/8 sub-quantisers of "
        "8 bits, asymmetric inner product."
    )

    def applies(self, dim, bits, planned):
        if bits is None:
            return False
        m = bits // 8
        return m in planned.get("pq", set()) and dim % m == 0

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(float(bits // 8), 4 * dim * dim + 4 * 256 * dim)

    def build(self, corpus, bits, settings):
        return build_opq(
            corpus,
            bits // 8,
            train_size=settings.pq_train_size,
            seed=settings.pq_seed,
            block=settings.corpus_block,
            iterations=OPQ_ITERATIONS,
        )

    def search(self, index, queries, k, bits, settings):
        return quantizers.index_topk(
            index, queries, k, query_block=settings.query_block, progress=settings.progress
        )
