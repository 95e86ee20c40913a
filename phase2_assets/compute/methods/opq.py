"""Optimized Product Quantization (OPQ): a learned rotation before PQ, at M = bits/8 bytes.

Why: plain PQ cuts the vector into M contiguous sub-vectors and quantises each independently, so
it wastes codes when variance is concentrated in a few directions or correlated across the cut.
OPQ (Ge, He, Ke & Sun, "Optimized Product Quantization for Approximate Nearest Neighbor Search",
CVPR 2013; TPAMI 2014) learns an orthogonal rotation R jointly with the codebooks. It is the
standard stronger baseline at the same bytes per vector as PQ; the rotation preserves inner
products, so the ranking stays comparable with the cosine ground truth.

Training (the paper's non-parametric OPQ), within a budget:
- Start: R = identity and faiss PQ codebooks trained on the sample (``init_iterations``
  k-means iterations, seed ``pq_seed``): iteration 0 *is* PQ, so every step improves on it.
- Each iteration: one Lloyd step of every sub-quantiser on the rotated sample (assign each
  sub-vector to its nearest centroid, move each centroid to the mean of its sub-vectors; an empty
  centroid stays), then the orthogonal Procrustes update R = U V^T from the SVD of X^T Y, Y the
  reconstructions. The quantisation error can only fall.
- Stop when an iteration lowers the error by less than ``tolerance`` (relative), or after
  ``max_iterations`` (``methods.opq`` in the study config). The error history is kept (asset
  metadata: iterations, converged).
- Then one last Lloyd step for the final rotation, and faiss builds the index: an
  ``IndexPreTransform`` of an ``OPQMatrix`` holding R^T and an ``IndexPQ`` holding the codebooks,
  exactly the structure of ``index_factory("OPQ{M},PQ{M}")``; encoding and asymmetric search are
  faiss's.

Why not ``faiss.OPQMatrix.train``: its 50 alternations with 4 hot-started k-means iterations each
(40 for the first) took 17x PQ's training time on SciFact x MiniLM at 64 bytes, mostly LAPACK
SVDs and k-means set-up on tiny sub-spaces, and its multithreaded SVD and matrix products give
different rotations at 1 and 2 threads. Here every step is bit-identical at any thread count:
float32 matrix products whose outputs are each summed by one thread, ``numpy.argmin`` (ties to the
lower centroid), ``numpy.bincount`` sums, and the 384 x 384 SVD in float64 on one thread. The
budget's measured cost is in bench/RESULTS.md ("OPQ's training budget").

Memory: M bytes per vector; fixed overhead = the float32 d x d rotation + 256 centroids of d/M
floats for each of the M sub-quantisers (256 x d floats).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from phase2_assets.compute import threads
from phase2_assets.compute.methods import quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, register

NBITS = 8
KSUB = 1 << NBITS


@dataclass(frozen=True)
class OpqIndex:
    """The faiss index (rotation + PQ) and how its training went."""

    index: faiss.IndexPreTransform
    errors: np.ndarray  # quantisation error per training vector: PQ's, then after each iteration
    converged: bool  # stopped by the tolerance, not by the iteration cap

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def iterations(self) -> int:
        return len(self.errors) - 1


def nearest_centroids(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, M) code of each sub-vector of ``x``: its nearest of the M x 256 centroids (L2)."""
    m, _, dsub = centroids.shape
    codes = np.empty((x.shape[0], m), dtype=np.int64)
    for j in range(m):
        c = centroids[j]
        distances = (c * c).sum(axis=1)[None, :] - 2.0 * (x[:, j * dsub : (j + 1) * dsub] @ c.T)
        codes[:, j] = np.argmin(distances, axis=1)
    return codes


def centroid_means(x: np.ndarray, codes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each centroid moved to the mean of the sub-vectors coded to it (empty ones stay)."""
    n, m = codes.shape
    dsub = centroids.shape[2]
    cell = (codes + KSUB * np.arange(m)[None, :]).ravel()
    count = np.bincount(cell, minlength=m * KSUB).reshape(m, KSUB, 1)
    parts = x.reshape(n * m, dsub)
    sums = np.stack(
        [np.bincount(cell, weights=parts[:, k], minlength=m * KSUB) for k in range(dsub)], axis=1
    ).reshape(m, KSUB, dsub)
    return np.where(count > 0, sums / np.maximum(count, 1), centroids).astype(np.float32)


def _lloyd_step(x, rotation, centroids):
    """One k-means step on the rotated data: (codes, new centroids, reconstructions, error)."""
    rotated = x @ rotation
    codes = nearest_centroids(rotated, centroids)
    centroids = centroid_means(rotated, codes, centroids)
    recon = centroids[np.arange(centroids.shape[0])[None, :], codes].reshape(x.shape)
    error = float(np.square(rotated - recon, dtype=np.float64).sum() / len(x))
    return centroids, recon, error


def _procrustes(x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """The orthogonal R minimising ||x R - recon||: U V^T of the SVD of x^T recon."""
    with threadpool_limits(1):  # LAPACK's blocked SVD sums in a thread-dependent order
        u, _, vt = np.linalg.svd((x.T @ recon).astype(np.float64))
    return (u @ vt).astype(np.float32)


def train_opq(
    sample: np.ndarray,
    m: int,
    *,
    seed: int,
    init_iterations: int,
    max_iterations: int,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(rotation (d, d), centroids (m, 256, d/m), error history, converged) for x -> x @ R."""
    x = np.ascontiguousarray(sample, dtype=np.float32)
    dim = x.shape[1]
    pq = faiss.ProductQuantizer(dim, m, NBITS)
    pq.cp.seed = seed
    pq.cp.niter = init_iterations
    quantizers.quiet_kmeans(pq).train(x)
    centroids = faiss.vector_to_array(pq.centroids).reshape(m, KSUB, dim // m)
    rotation = np.eye(dim, dtype=np.float32)
    centroids, recon, error = _lloyd_step(x, rotation, centroids)
    errors, converged = [error], False
    for _ in range(max_iterations):
        rotation = _procrustes(x, recon)
        centroids, recon, error = _lloyd_step(x, rotation, centroids)
        errors.append(error)
        if errors[-2] - error < tolerance * errors[-2]:
            converged = True
            break
    return rotation, centroids, np.asarray(errors), converged


def build_opq(
    corpus: np.ndarray,
    m: int,
    *,
    train_size: int,
    seed: int,
    block: int = 65536,
    init_iterations: int = 10,
    max_iterations: int = 50,
    tolerance: float = 0.005,
) -> tuple[OpqIndex, quantizers.TrainingReport]:
    """OPQ rotation + faiss IndexPQ (m bytes per vector, inner product), all training seeded."""
    dim = corpus.shape[1]
    if m <= 0 or dim % m:
        raise ValueError(
            f"OPQ with {m} sub-quantisers needs a dimension divisible by {m}, not {dim}"
        )
    sample = quantizers.training_sample(corpus, train_size, seed)
    t0 = time.perf_counter()
    # Its k-means, rotation updates (numpy's BLAS and LAPACK) and the rotation faiss applies
    # (faiss's OpenBLAS) round by the thread count: all on one thread (threads.single_thread).
    with threads.single_thread():
        rotation, centroids, errors, converged = train_opq(
            sample,
            m,
            seed=seed,
            init_iterations=init_iterations,
            max_iterations=max_iterations,
            tolerance=tolerance,
        )
    transform = faiss.OPQMatrix(dim, m)
    faiss.copy_array_to_vector(np.ascontiguousarray(rotation.T).ravel(), transform.A)
    transform.is_trained = True
    pq_index = faiss.IndexPQ(dim, m, NBITS, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(np.ascontiguousarray(centroids).ravel(), pq_index.pq.centroids)
    pq_index.is_trained = True
    index = faiss.IndexPreTransform(transform, pq_index)  # faiss keeps both referenced
    t1 = time.perf_counter()
    with threads.single_thread():
        quantizers.add_in_blocks(index, corpus, quantizers.pq_encode_block(m, NBITS, block))
    training = quantizers.TrainingReport(
        n_train=len(sample),
        recommended_min_train=quantizers.MIN_POINTS_PER_CENTROID * KSUB,
        train_seconds=t1 - t0,
        add_seconds=time.perf_counter() - t1,
        reconstruction_mse=float(errors[-1]),
        relative_error=float(errors[-1] / np.mean(np.sum(np.square(sample, dtype=np.float64), 1))),
    )
    return OpqIndex(index, errors, converged), training


class OpqParams(BaseModel):
    """``methods.opq`` in the study config: OPQ's training budget (bench/RESULTS.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    init_iterations: int = Field(
        10, ge=1, description="k-means iterations of the starting (plain PQ) codebooks"
    )
    max_iterations: int = Field(
        30,
        ge=0,
        description="rotation updates at most: the training budget (with train_size), so that "
        "OPQ's build stays within 3x PQ's at 500K x 768; its recall cost on SciFact is in "
        "bench/RESULTS.md",
    )
    tolerance: float = Field(
        0.005, ge=0, description="stop once an update lowers the error by less than this fraction"
    )
    train_size: int = Field(
        16384,
        ge=256,
        description="corpus rows (a seeded sample, at most pq.train_size) the rotation and "
        "codebooks train on: each iteration rotates the whole sample, so at 768-d PQ's 65,536 "
        "rows cost 5.8x PQ's build; 16,384 keep OPQ within 3x (bench/RESULTS.md)",
    )


@register
class OPQ(Method):
    name = "opq"
    family = "pq"
    budget = "bits"
    Params = OpqParams
    description = (
        "OPQ rotation (Ge et al., CVPR 2013; trained to a tolerance) + faiss IndexPQ, "
        "M = bits/8 sub-quantisers of 8 bits, asymmetric inner product."
    )
    peer = "faiss OPQ + IndexPQ (Ge et al.'s training)"
    code_bytes = "b/8"
    fits_when = "b/8 divides d"
    also_counted = "rotation 4·d² + codebooks 4·256·d"

    follows = "pq"

    def fits(self, dim, bits):
        return dim % (bits // 8) == 0

    def requirement(self, n_docs, dim, bits, settings):
        train_size = min(settings.params(self).train_size, settings.pq_train_size)
        return quantizers.kmeans_requirement(n_docs, train_size, NBITS, "OPQ")

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(float(bits // 8), 4 * dim * dim + 4 * 256 * dim)

    def build(self, corpus, bits, settings):
        params = settings.params(self)
        return Built(
            *build_opq(
                corpus,
                bits // 8,
                train_size=min(params.train_size, settings.pq_train_size),
                seed=settings.pq_seed,
                block=settings.corpus_block,
                **params.model_dump(exclude={"train_size"}),
            )
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return quantizers.index_topk(
            index.index, queries, k, query_block=settings.query_block, progress=settings.progress
        )

    def diagnostics(self, built, queries, truth_ids, settings):
        index = built.index
        return {
            "iterations": index.iterations,
            "converged": int(index.converged),
            "pq_error": float(index.errors[0]),
            "error": float(index.errors[-1]),
        }
