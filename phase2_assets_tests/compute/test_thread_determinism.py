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


def _fingerprint(obj) -> bytes:
    """The bytes of whatever a method built: arrays, faiss indexes (serialised), dataclasses of
    them, and plain values."""
    import dataclasses

    if isinstance(obj, np.ndarray):
        return obj.tobytes()
    if isinstance(obj, faiss.Index):
        return faiss.serialize_index(obj).tobytes()
    if dataclasses.is_dataclass(obj):
        return b"|".join(_fingerprint(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, (list, tuple)):
        return b"|".join(_fingerprint(v) for v in obj)
    if obj is None or isinstance(obj, (int, float, str, bool)):
        return repr(obj).encode()
    raise TypeError(f"no fingerprint for {type(obj).__name__}: add it here")


def _method_run(name: str, bits, threads: int, corpus, queries) -> tuple[bytes, bytes]:
    from phase2_assets.compute import threads as threads_lib
    from phase2_assets.compute.methods import METHODS, Settings

    settings = Settings(pq_train_size=4000, corpus_block=2048, query_block=64)
    method = METHODS[name]
    with threads_lib.limited(threads):
        built = method.build(corpus, bits, settings)
        ids = method.search(built, queries, 50, bits, settings)
    return _fingerprint(built.index), ids.tobytes()


DIM = 384


def _registry_cases():
    from phase2_assets.compute.methods import METHODS

    for name, method in sorted(METHODS.items()):
        if name == "float32":
            continue
        for bits in (None,) if method.budget == "reference" else (64, 256):
            if method.fits(DIM, bits):
                yield pytest.param(name, bits, id=f"{name}-{bits or 'ref'}")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to compare thread counts")
@pytest.mark.parametrize(("name", "bits"), list(_registry_cases()))
def test_every_registered_method_is_bit_identical_at_one_and_all_threads(name, bits):
    """Generated over the registry: a new method is covered without being listed."""
    rng = np.random.default_rng(5)
    # 384-d, a narrow cone: RaBitQ's rotation rounded differently at 2 threads only at this size.
    corpus = _unit(rng, 4000, DIM) + 0.2
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = corpus[:100] + 0.01 * _unit(rng, 100, DIM)
    one = _method_run(name, bits, 1, corpus, queries)
    every = _method_run(name, bits, os.cpu_count() or 2, corpus, queries)
    assert one[0] == every[0], f"{name}: the built index differs"
    assert one[1] == every[1], f"{name}: the result lists differ"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to compare thread counts")
def test_the_geometry_and_the_x3_adapter_are_bit_identical_at_one_and_all_threads():
    from phase2_assets.compute import threads as threads_lib
    from phase2_assets.compute.analysis import adapter, geometry
    from phase2_assets.compute.methods import Settings

    rng = np.random.default_rng(9)
    corpus = _unit(rng, 3000, DIM) + 0.2
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    config = adapter.AdapterConfig(
        name="quick", epochs=3, train_size=1024, anchors=256, neighbours=10, negatives=10
    )
    runs = []
    for n in (1, os.cpu_count() or 2):
        with threads_lib.limited(n):
            shape = geometry.embedding_geometry(corpus, pair_sample=500, seed=1)
            method = adapter.AdapterMethod(config, seed=3, device="cpu")
            codes = method.build(corpus, 128, Settings()).index.codes
        runs.append((shape, codes.tobytes()))
    assert runs[0][0] == runs[1][0]  # every geometry number, to the last bit
    assert runs[0][1] == runs[1][1]  # the adapter's codes
