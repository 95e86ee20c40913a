"""The numbers do not depend on how many threads faiss and BLAS use on one machine.

Every float search, PQ training (faiss k-means), OPQ training, PQ/int8 encoding and search, and
the random projection runs once with one thread and once with every core; codes, ids and scores
must be bit-identical. (Across different CPUs, BLAS kernels may round the last bit differently; the
README's determinism section says how that shows up and what is recorded to spot it.)
"""

from __future__ import annotations

import os

import faiss
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from phase2_assets.compute.methods import instrument, opq, quantizers
from phase2_assets.compute.search import exact_search


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _everything(threads: int, corpus, queries) -> dict[str, np.ndarray]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            gt_scores, gt_ids = exact_search.float_topk(queries, corpus, 50, corpus_block=4096)
            pq, _ = quantizers.build_pq(corpus, 16, train_size=8000, seed=3)
            int8, _ = quantizers.build_int8(corpus)
            rotated, _ = opq.build_opq(corpus, 16, train_size=8000, seed=3)
            codes = instrument.encode(corpus, 128, 7)
            return {
                "codes": codes,
                "hamming": instrument.hamming_topk(instrument.encode(queries, 128, 7), codes, 50)[
                    0
                ],
                "gt_scores": gt_scores,
                "gt_ids": gt_ids,
                "pq_centroids": faiss.vector_to_array(pq.pq.centroids),
                "pq_codes": faiss.vector_to_array(pq.codes),
                "pq_ids": quantizers.index_topk(pq, queries, 50),
                "int8_ids": quantizers.index_topk(int8, queries, 50),
                "opq_rotation": faiss.vector_to_array(
                    faiss.downcast_VectorTransform(rotated.index.chain.at(0)).A
                ),
                "opq_errors": rotated.errors,
                "opq_ids": quantizers.index_topk(rotated.index, queries, 50),
            }
    finally:
        faiss.omp_set_num_threads(before)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to compare thread counts")
def test_one_thread_and_all_threads_give_bit_identical_results():
    rng = np.random.default_rng(11)
    corpus, queries = _unit(rng, 20_000, 64), _unit(rng, 200, 64)
    single = _everything(1, corpus, queries)
    parallel = _everything(os.cpu_count() or 2, corpus, queries)
    for name, array in single.items():
        assert array.tobytes() == parallel[name].tobytes(), name
