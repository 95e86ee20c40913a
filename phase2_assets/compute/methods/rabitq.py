"""RaBitQ: one bit per dimension after a random rotation, with an unbiased distance estimator.

Why: RaBitQ (Gao & Long, "RaBitQ: Quantizing High-Dimensional Vectors with a Theoretical Error
Bound for Approximate Nearest Neighbor Search", SIGMOD 2024) is the strongest published 1-bit
quantiser: it normalises each vector around a centroid, randomly rotates it and keeps the sign of
every coordinate, and stores two floats per vector (the residual norm and the code's inner product
with the true direction) so that the inner product with a query is estimated without bias and
with an O(1/sqrt(d)) error bound. Its size follows the model's dimension (d bits plus the factors),
so it is a 'reference' row, not a bit-budget row: it shows what a careful 1-bit-per-dimension code
achieves against the instrument's sign codes.

faiss details (1.15):
- ``faiss.IndexRaBitQ(d, metric)`` is the quantiser *without* the random rotation (the faiss
  authors leave it to ``IndexPreTransform`` + ``RandomRotationMatrix``, PR #4235). The paper's
  guarantees need the rotation, and without it the sign code is taken in the model's own basis:
  on anisotropic data (a few dominant coordinates, as in real embeddings) recall drops far below
  the rotated version. So the index is ``index_factory(d, "RR{d},RaBitQ", METRIC_INNER_PRODUCT)``
  with the rotation drawn from ``settings.projection_seed`` (``RandomRotationMatrix.init(seed)``;
  left untrained, faiss would seed it with a fixed 12345).
- Training only computes the centroid (mean of the seeded corpus sample); the corpus is added in
  blocks. Queries are quantised to ``qb = 4`` bits: the paper's B_q = 4 and the default of
  faiss 1.15 (faiss PR #4757 changed it from 0, float queries), pinned here so results do not
  change with the faiss version.
- ``code_size`` is ceil(d/8) + 8 bytes: the sign bits plus two float32 factors per vector. It is
  available on an untrained index, so ``memory`` needs no data; the tests check it against a
  trained index.
- Memory: bytes_per_vector = ceil(d/8) (the code), extra_bytes_per_vector = the factors; the
  fixed overhead is the float32 centroid (d) and the rotation (d x d), which could be regenerated
  from its seed but is counted, as the instrument's projection is.
"""

from __future__ import annotations

import math

import faiss

from phase2_assets.compute import threads
from phase2_assets.compute.methods import quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, register

QUERY_BITS = 4


def rabitq_code_size(dim: int) -> int:
    """Bytes faiss stores per vector (sign bits + per-vector factors), from an untrained index."""
    return int(faiss.IndexRaBitQ(dim, faiss.METRIC_INNER_PRODUCT).code_size)


def build_rabitq(
    corpus, *, train_size: int, train_seed: int, rotation_seed: int, block: int = 65536
) -> faiss.IndexPreTransform:
    """Seeded random rotation + IndexRaBitQ (inner product), trained on a seeded corpus sample."""
    dim = corpus.shape[1]
    index = faiss.index_factory(dim, f"RR{dim},RaBitQ", faiss.METRIC_INNER_PRODUCT)
    rotation = faiss.downcast_VectorTransform(index.chain.at(0))
    faiss.downcast_index(index.index).qb = QUERY_BITS
    # Thread counts change faiss's numbers in three places, so all run on one thread: the
    # rotation's QR (LAPACK), the centroid (an OpenMP sum) and the rotation applied by faiss's
    # bundled OpenBLAS (its sgemm rounds the last bits differently with 2 threads: different
    # codes on 384-d MiniLM vectors; ``threads.single_thread``).
    with threads.single_thread():
        rotation.init(rotation_seed)  # marks it trained, so index.train keeps this rotation
        index.train(quantizers.training_sample(corpus, train_size, train_seed))
        quantizers.add_in_blocks(index, corpus, block)
    return index


@register
class RaBitQ(Method):
    name = "rabitq"
    budget = "reference"
    description = (
        "faiss IndexRaBitQ after a seeded random rotation (Gao & Long, SIGMOD 2024): 1 bit per "
        "dimension + 2 float factors per vector, 4-bit query, unbiased inner-product estimate."
    )
    peer = "faiss IndexRaBitQ (Gao & Long 2024)"
    code_bytes = "⌈d/8⌉"
    also_counted = "rotation 4·d² + 4·d; 2 float factors / vector as `extra_bytes_per_vector`"

    def code_bits(self, dim, bits):
        return dim

    def memory(self, dim, bits):
        code = math.ceil(dim / 8)
        return Memory(
            float(code),
            4 * dim + 4 * dim * dim,
            extra_bytes_per_vector=float(rabitq_code_size(dim) - code),
        )

    def build(self, corpus, bits, settings):
        return Built(
            build_rabitq(
                corpus,
                train_size=settings.pq_train_size,
                train_seed=settings.pq_seed,
                rotation_seed=settings.projection_seed,
                block=settings.corpus_block,
            )
        )

    def search(self, built, queries, k, bits, settings):
        return quantizers.index_topk(
            built.index,
            queries,
            k,
            query_block=settings.query_block,
            progress=settings.progress,
        )
