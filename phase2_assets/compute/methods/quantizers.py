"""The baselines at matched memory: faiss product quantisation (PQ) and 8-bit scalar quantisation.

Both are built with inner-product metric, so their rankings are directly comparable with the
cosine ground truth. PQ trains on a seeded sample of the corpus (faiss wants >= 39 x 2^nbits points
per sub-quantiser; smaller corpora train on everything and the diagnostics say so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

from phase2_assets.compute import threads
from phase2_assets.compute.data.storage import release_pages
from phase2_assets.compute.search import decoded
from phase2_assets.compute.search.exact_search import float_topk, merge_topk


@dataclass(frozen=True)
class TrainingReport:
    """What a researcher needs to judge whether a trained quantiser is a fair baseline."""

    n_train: int
    recommended_min_train: int
    train_seconds: float
    add_seconds: float
    reconstruction_mse: float  # mean squared error per vector on the training sample
    relative_error: float  # mse / mean squared norm of the training vectors

    @property
    def undertrained(self) -> bool:
        return self.n_train < self.recommended_min_train

    @property
    def warning(self) -> str | None:
        """faiss's k-means warning, said once for the whole training (see quiet_kmeans)."""
        if not self.undertrained:
            return None
        return (
            f"trained on {self.n_train:,} points; faiss's k-means asks for at least "
            f"{self.recommended_min_train:,} (39 per centroid) for each sub-quantiser"
        )


# faiss's rule of thumb for k-means: at least this many training points per centroid.
MIN_POINTS_PER_CENTROID = 39


def quiet_kmeans(pq: faiss.ProductQuantizer) -> faiss.ProductQuantizer:
    """Stop faiss printing its too-few-points warning for every sub-quantiser and iteration.

    ``ClusteringParameters.min_points_per_centroid`` is read only by that warning (faiss 1.15,
    ``Clustering::train_encoded``), so results are unchanged; the shortfall is reported once per
    training instead (``TrainingReport.warning``, the ``enough_training_data`` check).
    """
    pq.cp.min_points_per_centroid = 1
    return pq


def kmeans_requirement(n_docs: int, train_size: int, nbits: int, what: str) -> str | None:
    """faiss's k-means refuses fewer training points than centroids (2^nbits per sub-quantiser)."""
    n_train, centroids = min(n_docs, train_size), 1 << nbits
    if n_train >= centroids:
        return None
    return (
        f"{what}'s k-means needs at least {centroids:,} training vectors ({centroids:,} centroids "
        f"per sub-quantiser); the corpus has {n_docs:,}"
    )


def training_sample(corpus: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Seeded sample of rows, in row order; the whole corpus when it is smaller than ``size``."""
    n = corpus.shape[0]
    if n <= size:
        return np.ascontiguousarray(corpus[:], dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    sample = np.ascontiguousarray(corpus[rows], dtype=np.float32)
    release_pages(corpus)
    return sample


# Bytes of scratch faiss may use to encode one block of rows (see pq_encode_block).
ENCODE_WORKSPACE_BYTES = 64 << 20


def pq_encode_block(m: int, nbits: int, block: int) -> int:
    """Rows per faiss PQ encode call so that its scratch stays within ENCODE_WORKSPACE_BYTES.

    ``ProductQuantizer::compute_codes`` encodes a batch with BLAS through a (rows x 2^nbits x m)
    float32 distance table when sub-vectors have >= 16 dimensions: 2 GiB for 65,536 rows at
    m = 32, and 8 GiB for one ``add`` of a whole 1M corpus (faiss blocks at 262,144 rows).
    """
    return max(256, min(block, ENCODE_WORKSPACE_BYTES // (4 * (1 << nbits) * m)))


def add_in_blocks(
    index: faiss.Index,
    corpus: np.ndarray,
    block: int,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Add a (possibly memory-mapped) corpus a block at a time, as float32."""
    n = corpus.shape[0]
    for start in range(0, n, block):
        index.add(np.ascontiguousarray(corpus[start : start + block], dtype=np.float32))
        release_pages(corpus)
        if progress:
            progress(min(start + block, n), n)


def _report(
    index: faiss.Index,
    sample: np.ndarray,
    min_train: int,
    t_train: float,
    t_add: float,
    block: int = 65536,
):
    recon = np.empty_like(sample)
    for start in range(0, len(sample), block):
        part = sample[start : start + block]
        recon[start : start + len(part)] = index.sa_decode(index.sa_encode(part))
    mse = float(np.mean(np.sum((recon - sample) ** 2, axis=1)))
    norm2 = float(np.mean(np.sum(sample.astype(np.float64) ** 2, axis=1)))
    return TrainingReport(
        n_train=len(sample),
        recommended_min_train=min_train,
        train_seconds=t_train,
        add_seconds=t_add,
        reconstruction_mse=mse,
        relative_error=mse / norm2 if norm2 > 0 else float("nan"),
    )


def build_pq(
    corpus: np.ndarray,
    m: int,
    *,
    nbits: int = 8,
    train_size: int,
    seed: int,
    block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[faiss.IndexPQ, TrainingReport]:
    """faiss IndexPQ with ``m`` sub-quantisers of ``nbits`` (m bytes per vector at nbits=8)."""
    dim = corpus.shape[1]
    if dim % m:
        raise ValueError(
            f"PQ with {m} sub-quantisers needs a dimension divisible by {m}, got {dim}"
        )
    index = faiss.IndexPQ(dim, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.pq.cp.seed = seed
    quiet_kmeans(index.pq)
    sample = training_sample(corpus, train_size, seed)
    block = pq_encode_block(m, nbits, block)
    t0 = time.perf_counter()
    train_pq(index, sample)
    t1 = time.perf_counter()
    encode_in_blocks(index, corpus, block, progress)
    t2 = time.perf_counter()
    min_train = MIN_POINTS_PER_CENTROID * (1 << nbits)
    return index, _report(index, sample, min_train, t1 - t0, t2 - t1, block)


def train_pq(index: faiss.IndexPQ, sample: np.ndarray) -> None:
    """``index.train(sample)`` as faiss does it (``ProductQuantizer::train``: one k-means per
    sub-quantiser, each with ``pq.cp`` and a flat L2 index), the sub-quantisers side by side on
    the step's cores, each on one thread: k-means assigns with faiss's OpenBLAS, whose sums
    depend on the thread count, so the centroids are the same on any number of cores and equal
    to a one-thread ``index.train`` (a test compares the bytes)."""
    pq = index.pq
    dsub = pq.dsub

    def one(j: int) -> np.ndarray:
        clustering = faiss.Clustering(dsub, pq.ksub, pq.cp)
        clustering.train(
            np.ascontiguousarray(sample[:, j * dsub : (j + 1) * dsub]), faiss.IndexFlatL2(dsub)
        )
        return faiss.vector_to_array(clustering.centroids)

    centroids = np.concatenate(list(threads.blocks_in_parallel(one, range(pq.M))))
    faiss.copy_array_to_vector(centroids, pq.centroids)
    index.is_trained = True


def encode_in_blocks(
    index: faiss.Index,
    corpus: np.ndarray,
    block: int,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Add a (possibly memory-mapped) corpus, the blocks encoded side by side on the step's
    cores, each on one thread (faiss encodes sub-vectors of 16 or more dimensions with its
    OpenBLAS), the codes added in row order: the same codes as ``add`` on one thread."""
    n = corpus.shape[0]

    def encode(start: int) -> np.ndarray:
        codes = index.sa_encode(np.ascontiguousarray(corpus[start : start + block], np.float32))
        release_pages(corpus)
        return codes

    for start, codes in zip(
        range(0, n, block), threads.blocks_in_parallel(encode, range(0, n, block)), strict=True
    ):
        index.add_sa_codes(codes)
        if progress:
            progress(min(start + block, n), n)


def build_int8(
    corpus: np.ndarray,
    *,
    block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[faiss.Index, TrainingReport]:
    """faiss SQ8: one byte per dimension, per-dimension min/max learned from the whole corpus."""
    return build_scalar(corpus, faiss.ScalarQuantizer.QT_8bit, block=block, progress=progress)


def build_scalar(
    corpus: np.ndarray,
    qtype: int,
    *,
    block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[faiss.Index, TrainingReport]:
    """A faiss scalar quantiser (SQ8, SQ4, fp16), inner product, with the per-dimension min/max
    ranges of the whole corpus (unused by fp16, which needs no training)."""
    dim = corpus.shape[1]
    index = faiss.IndexScalarQuantizer(dim, qtype, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    # Training needs the per-dimension range; a streaming min/max over blocks gives the same
    # range as training on the whole corpus without loading it at once.
    lo = np.full(dim, np.inf, dtype=np.float32)
    hi = np.full(dim, -np.inf, dtype=np.float32)
    for start in range(0, corpus.shape[0], block):
        chunk = np.asarray(corpus[start : start + block], dtype=np.float32)
        lo = np.minimum(lo, chunk.min(axis=0))
        hi = np.maximum(hi, chunk.max(axis=0))
        release_pages(corpus)
    index.train(np.stack([lo, hi]).astype(np.float32))
    t1 = time.perf_counter()
    add_in_blocks(index, corpus, block, progress)
    t2 = time.perf_counter()
    sample = np.ascontiguousarray(corpus[: min(len(corpus), 65536)], dtype=np.float32)
    return index, _report(index, sample, 2, t1 - t0, t2 - t1)


def index_topk(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    *,
    query_block: int = 1024,
    corpus_block: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Top-k ids (nq, k) from a faiss index, re-ordered by (score desc, row asc).

    A scalar quantiser (SQ8, SQ4, fp16) is scanned as faiss scans it, ``q · decode(code)`` for
    every vector, but as blocked matrix products: the exact float top-k over its vectors
    decoded ``corpus_block`` rows at a time (``search.decoded``), several times faster than
    faiss's one-vector-at-a-time loop and the same lists on every machine and thread count.
    Other indexes are searched by faiss. Where faiss's search goes through its OpenBLAS
    (``uses_blas``), whose sums depend on the thread count, each query block is searched on one
    OpenMP thread and the blocks run side by side (``threads.blocks_in_parallel``): the same
    lists at any thread count, at parallel speed."""
    if isinstance(faiss.downcast_index(index), faiss.IndexScalarQuantizer):
        return float_topk(
            queries,
            decoded.DecodedVectors(index),
            k,
            query_block=query_block,
            corpus_block=corpus_block,
            progress=progress,
            with_scores=False,
        )[1]
    k = min(k, index.ntotal)
    nq = queries.shape[0]
    out = np.empty((nq, k), dtype=np.int64)

    def search(qs: int) -> int:
        q = np.ascontiguousarray(queries[qs : qs + query_block], dtype=np.float32)
        scores, ids = index.search(q, k)
        out[qs : qs + len(q)] = merge_topk(scores, ids, k)[1]
        return qs + len(q)

    starts = range(0, nq, query_block)
    done = threads.blocks_in_parallel(search, starts) if uses_blas(index) else map(search, starts)
    for end in done:
        if progress:
            progress(end, nq)
    return out


def uses_blas(index: faiss.Index) -> bool:
    """Whether faiss's search of ``index`` calls its OpenBLAS, whose sums depend on the thread
    count: a transform applied to the queries (PCA, OPQ, a rotation), a flat float index, and
    PQ's distance tables, which faiss computes with sgemm for sub-vectors of 16 or more
    dimensions (``ProductQuantizer::compute_inner_prod_tables``). Binary codes are scanned
    vector by vector, the same at any thread count. (Scalar quantisers never reach faiss's
    search: ``index_topk`` scans them itself.)"""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPQ):
        return index.pq.dsub >= 16
    return True
