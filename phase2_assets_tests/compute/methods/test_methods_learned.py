"""Known-answer tests for the learned / beyond-plan methods: ITQ, RaBitQ, OPQ, PCA + int8.

Each quality test is built so that a plausible wrong implementation fails it: ITQ must recover a
hidden rotation exactly (PCA alone or a random rotation cannot), RaBitQ must beat the
rotation-less faiss index on anisotropic data, OPQ must beat PQ where only a learned rotation
helps, PCA + int8 must be (almost) lossless on low-rank data with a common offset, where faiss's
own centred query search is not.
"""

import math

import faiss
import numpy as np
import pytest

from phase2_assets.compute.methods import (
    METHODS,
    Plan,
    Settings,
    instrument,
    itq,
    opq,
    pca_int8,
    quantizers,
    rabitq,
)
from phase2_assets.compute.search.exact_search import float_topk
from phase2_assets.compute.search.metrics import recall_at_k

SMALL = Settings(
    pq_train_size=1000, corpus_block=300, query_block=64, method_params={"itq": {"iterations": 50}}
)
PLANNED = Plan(frozenset({64, 128, 256, 512}), frozenset({8, 16, 32, 64}))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _recall(method, corpus, queries, bits, settings=SMALL, k=10):
    _, truth = float_topk(queries, corpus, k)
    ids = method.search(method.build(corpus, bits, settings), queries, k, bits, settings)
    assert ids.dtype == np.int64 and ids.shape == (len(queries), k)
    return recall_at_k(ids, truth, k), ids


def _read_only_memmap(tmp_path, array: np.ndarray) -> np.memmap:
    path = tmp_path / "corpus.f32"
    array.astype(np.float32).tofile(path)
    return np.memmap(path, dtype=np.float32, mode="r", shape=array.shape)


# ---------------------------------------------------------------------------------------- ITQ


def _rotated_binary(n=2000, b=16, d=64, seed=0, sigma=0.2):
    """Unit vectors that are exactly B in {-1,+1}^b after a hidden rotation, embedded in d dims.

    Some in-subspace noise (sigma relative to the +-1 entries, far below 1 so no sign flips) is
    needed: points exactly on the hypercube vertices make "half-way" rotations fixed points of
    the alternation. All rows of B Q have the same norm, so normalising keeps them binary.
    """
    rng = np.random.default_rng(seed)
    codes = rng.choice([-1.0, 1.0], size=(n, b))
    hidden = itq.random_rotation(b, 1000 + seed)
    basis = np.linalg.qr(rng.standard_normal((d, b)))[0]
    inner = codes @ hidden + sigma * rng.standard_normal((n, b))
    x = inner @ basis.T + 0.01 * rng.standard_normal((n, d))
    return _unit(x), codes


def _pair_agreement(bits01: np.ndarray, codes: np.ndarray, seed=1, pairs=3000) -> float:
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(codes), pairs), rng.integers(0, len(codes), pairs)
    learned = (bits01[i] != bits01[j]).sum(axis=1)
    truth = (codes[i] != codes[j]).sum(axis=1)
    return float(np.mean(learned == truth))


def test_itq_recovers_a_hidden_rotation_of_binary_data():
    x, codes = _rotated_binary()
    method = METHODS["itq"]
    index_built = method.build(x, 16, SMALL)
    index = index_built.index
    bits01 = instrument.unpack(index.codes, 16).astype(np.int64)
    assert _pair_agreement(bits01, codes) > 0.99
    # Each learned bit is one hidden bit up to a flip: a signed permutation, nothing mixed.
    corr = np.abs((2.0 * bits01 - 1).T @ codes) / len(codes)
    assert np.all(corr.max(axis=1) > 0.99)
    assert sorted(corr.argmax(axis=1)) == list(range(16))
    # Controls: PCA + the random start rotation (0 iterations) and the random-projection
    # instrument both leave most pairs with a different Hamming distance.
    start_built = method.build(
        x,
        16,
        Settings(pq_train_size=1000, corpus_block=300, method_params={"itq": {"iterations": 0}}),
    )
    start = start_built.index
    assert _pair_agreement(instrument.unpack(start.codes, 16).astype(np.int64), codes) < 0.5
    random_bits = instrument.unpack(instrument.encode(x, 16, 42), 16).astype(np.int64)
    assert _pair_agreement(random_bits, codes) < 0.5


def test_itq_loss_never_increases_and_drops():
    x, _ = _rotated_binary(n=1000, seed=2)
    mean, directions = itq.pca(x, 16)
    v = (x.astype(np.float64) - mean) @ directions
    rotation, losses = itq.itq_rotation(v, 30, seed=5)
    assert losses.shape == (31,)
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])
    assert losses[-1] < 0.97 * losses[0]
    assert np.allclose(rotation @ rotation.T, np.eye(16), atol=1e-10)
    # The reported loss is the one of the returned rotation.
    vr = v @ rotation
    assert np.isclose(np.sum((np.where(vr >= 0, 1.0, -1.0) - vr) ** 2), losses[-1])


def test_itq_search_is_exact_hamming_deterministic_and_blockwise(tmp_path):
    rng = np.random.default_rng(3)
    corpus = _unit(rng.standard_normal((700, 32)) * np.linspace(3, 0.3, 32))
    queries = _unit(rng.standard_normal((50, 32)) * np.linspace(3, 0.3, 32))
    method = METHODS["itq"]
    index_built = method.build(_read_only_memmap(tmp_path, corpus), 32, SMALL)
    index = index_built.index
    assert index.codes.shape == (700, 4) and index.ntotal == 700
    ids = method.search(index_built, queries, 10, 32, SMALL)
    # Same seeds, other block sizes, in-memory input: identical codes and ids.
    other = Settings(
        pq_train_size=1000,
        corpus_block=128,
        query_block=7,
        method_params={"itq": {"iterations": 50}},
    )
    again_built = method.build(corpus, 32, other)
    again = again_built.index
    assert np.array_equal(again.codes, index.codes)
    assert np.array_equal(method.search(again_built, queries, 10, 32, other), ids)
    # Codes are sign((x - mean) @ P R) > 0, packed like the instrument; search is exact Hamming.
    q_bits = ((queries - index.mean) @ index.projection) > 0
    c_bits = ((corpus - index.mean) @ index.projection) > 0
    assert np.array_equal(np.packbits(c_bits, axis=1, bitorder="little"), index.codes)
    dist = (q_bits[:, None, :] != c_bits[None, :, :]).sum(axis=2)
    expected = np.lexsort((np.broadcast_to(np.arange(700), dist.shape), dist), axis=1)[:, :10]
    assert np.array_equal(ids, expected)
    # A different seed learns a different rotation.
    other_seed_built = method.build(corpus, 32, Settings(pq_train_size=1000, pq_seed=8))
    other_seed = other_seed_built.index
    assert not np.array_equal(other_seed.codes, index.codes)


def test_itq_applies_and_memory():
    method = METHODS["itq"]
    assert method.name == "itq" and method.budget == "bits"
    assert method.applies(384, 256, PLANNED)
    assert not method.applies(384, 512, PLANNED)  # more bits than dimensions
    assert not method.applies(1024, 96, PLANNED)  # not a planned bit length
    mem = method.memory(384, 256)
    assert mem.bytes_per_vector == 32
    assert mem.fixed_overhead_bytes == 4 * (384 * 256 + 384 + 256 * 256)
    assert mem.extra_bytes_per_vector == 0 and mem.external_bytes_per_vector == 0
    assert method.code_bits(384, 256) == 256


# ------------------------------------------------------------------------------------- RaBitQ


def test_rabitq_beats_the_instrument_and_is_deterministic():
    rng = np.random.default_rng(0)
    corpus, queries = _unit(rng.standard_normal((1000, 64))), _unit(rng.standard_normal((200, 64)))
    recall, ids = _recall(METHODS["rabitq"], corpus, queries, None)
    binary, _ = _recall(METHODS["binary"], corpus, queries, 64)
    assert recall > 0.3
    assert recall > binary + 0.1
    _, again = _recall(METHODS["rabitq"], corpus, queries, None)
    assert np.array_equal(ids, again)


def test_rabitq_random_rotation_matters_on_anisotropic_data():
    """Without the paper's rotation (faiss's bare IndexRaBitQ) a few dominant axes ruin it."""
    rng = np.random.default_rng(1)
    scale = np.r_[np.full(4, 8.0), np.ones(60)]
    corpus = _unit(rng.standard_normal((1000, 64)) * scale)
    queries = _unit(rng.standard_normal((200, 64)) * scale)
    recall, _ = _recall(METHODS["rabitq"], corpus, queries, None)
    bare = faiss.IndexRaBitQ(64, faiss.METRIC_INNER_PRODUCT)
    bare.qb = rabitq.QUERY_BITS
    bare.train(corpus)
    bare.add(corpus)
    _, truth = float_topk(queries, corpus, 10)
    unrotated = recall_at_k(quantizers.index_topk(bare, queries, 10), truth, 10)
    assert recall > unrotated + 0.15


@pytest.mark.parametrize("dim", [64, 100, 384])
def test_rabitq_memory_matches_the_trained_index(dim):
    rng = np.random.default_rng(dim)
    corpus = _unit(rng.standard_normal((300, dim)))
    method = METHODS["rabitq"]
    index_built = method.build(corpus, None, SMALL)
    index = index_built.index
    assert index.ntotal == 300
    trained_code_size = faiss.downcast_index(index.index).code_size
    mem = method.memory(dim, None)
    assert mem.bytes_per_vector == math.ceil(dim / 8)
    assert mem.extra_bytes_per_vector == trained_code_size - math.ceil(dim / 8)
    assert mem.extra_bytes_per_vector == 8  # two float32 factors per vector
    assert mem.fixed_overhead_bytes == 4 * dim + 4 * dim * dim
    assert method.code_bits(dim, None) == dim
    assert method.budget == "reference"


# ---------------------------------------------------------------------------------------- OPQ


def _rotated_low_rank(n, d, r, seed, noise=0.02):
    """Variance in r decaying directions mixed across all coordinates by a random rotation."""
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.standard_normal((d, d)))[0]
    z = np.zeros((n, d))
    z[:, :r] = rng.standard_normal((n, r)) * np.linspace(3, 1, r)
    return _unit((z + noise * rng.standard_normal((n, d))) @ rotation.T)


def _rotation(built) -> np.ndarray:
    return faiss.vector_to_array(faiss.downcast_VectorTransform(built.index.index.chain.at(0)).A)


def test_opq_beats_pq_on_correlated_data_and_is_deterministic():
    data = _rotated_low_rank(2200, 64, 16, seed=0)
    corpus, queries = data[:2000], data[2000:]
    uncapped = {"opq": {"max_iterations": 50}}  # this data converges after 30 updates
    settings = Settings(
        pq_train_size=2000, corpus_block=700, query_block=64, method_params=uncapped
    )
    method = METHODS["opq"]
    built = method.build(corpus, 64, settings)
    assert built.ntotal == 2000 and built.training.n_train == 2000
    assert 0 < built.training.relative_error < 1 and built.training.undertrained
    assert faiss.downcast_index(built.index.index.index).pq.M == 8
    _, truth = float_topk(queries, corpus, 10)
    ids = method.search(built, queries, 10, 64, settings)
    pq_built = METHODS["pq"].build(corpus, 64, settings)
    pq_ids = METHODS["pq"].search(pq_built, queries, 10, 64, settings)
    assert recall_at_k(ids, truth, 10) >= recall_at_k(pq_ids, truth, 10) + 0.05
    # Iteration 0 is PQ itself; every rotation update lowers the quantisation error.
    errors = built.index.errors
    assert np.all(np.diff(errors) <= 0) and errors[-1] < 0.8 * errors[0]
    assert built.index.converged and 1 <= built.index.iterations < 50
    # Same seed: same rotation, same ids; another seed: another rotation.
    again = method.build(corpus, 64, settings)
    rotation = _rotation(built)
    assert np.array_equal(rotation, _rotation(again))
    assert np.array_equal(method.search(again, queries, 10, 64, settings), ids)
    other = method.build(
        corpus, 64, Settings(pq_train_size=2000, pq_seed=8, method_params=uncapped)
    )
    assert not np.allclose(rotation, _rotation(other))
    assert np.allclose(rotation.reshape(64, 64) @ rotation.reshape(64, 64).T, np.eye(64), atol=1e-4)


def test_opq_budget_stops_at_the_tolerance_or_the_cap():
    """A looser tolerance stops sooner; the cap bounds the work; both are in the diagnostics."""
    data = _rotated_low_rank(2000, 32, 8, seed=3)
    tight = METHODS["opq"].build(
        data, 64, Settings(pq_train_size=2000, method_params={"opq": {"tolerance": 1e-4}})
    )
    loose = METHODS["opq"].build(
        data, 64, Settings(pq_train_size=2000, method_params={"opq": {"tolerance": 0.05}})
    )
    capped = METHODS["opq"].build(
        data,
        64,
        Settings(
            pq_train_size=2000, method_params={"opq": {"tolerance": 0.0, "max_iterations": 3}}
        ),
    )
    assert loose.index.iterations < tight.index.iterations
    assert capped.index.iterations == 3 and not capped.index.converged
    assert np.array_equal(capped.index.errors, tight.index.errors[:4])  # the same path, cut short
    diag = METHODS["opq"].diagnostics(capped, None, None, Settings())
    assert diag["iterations"] == 3 and diag["converged"] == 0
    assert diag["error"] == capped.index.errors[-1] < diag["pq_error"]


def test_lloyd_step_matches_a_brute_force_assignment():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    centroids = rng.standard_normal((2, opq.KSUB, 4)).astype(np.float32)
    codes = opq.nearest_centroids(x, centroids)
    for j in range(2):
        d2 = ((x[:, None, 4 * j : 4 * j + 4] - centroids[j][None]) ** 2).sum(-1)
        assert np.array_equal(codes[:, j], d2.argmin(1))
    moved = opq.centroid_means(x, codes, centroids)
    for j in range(2):
        for c in range(opq.KSUB):
            members = x[codes[:, j] == c, 4 * j : 4 * j + 4]
            expected = members.mean(0) if len(members) else centroids[j, c]
            np.testing.assert_allclose(moved[j, c], expected, rtol=1e-5, atol=1e-6)


def test_opq_applies_and_memory():
    method = METHODS["opq"]
    assert method.name == "opq" and method.budget == "bits"
    assert method.applies(384, 128, PLANNED)  # M = 16
    assert not method.applies(100, 128, PLANNED)  # 100 % 16 != 0
    assert not method.applies(384, 1024, PLANNED)  # M = 128 not planned
    mem = method.memory(384, 128)
    assert mem.bytes_per_vector == 16
    assert mem.fixed_overhead_bytes == 4 * 384 * 384 + 4 * 256 * 384


# ---------------------------------------------------------------------------------- PCA + int8


def test_pca_int8_is_nearly_lossless_on_low_rank_data_with_an_offset(tmp_path):
    """Rank-12 unit vectors sharing a common direction, p = 16 >= 12: PCA loses nothing."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((64, 12)))[0]
    z = rng.standard_normal((2100, 12))
    z[:, 0] += 2.0
    data = _unit(z @ basis.T)
    corpus, queries = data[:2000], data[2000:]
    method = METHODS["pca_int8"]
    index_built = method.build(_read_only_memmap(tmp_path, corpus), 128, SMALL)
    index = index_built.index
    assert index.ntotal == 2000 and faiss.downcast_index(index.index).code_size == 16
    _, truth = float_topk(queries, corpus, 10)
    ids = method.search(index_built, queries, 10, 128, SMALL)
    assert recall_at_k(ids, truth, 10) >= 0.95
    # faiss's own search centres the query too, which adds -mu.Px per document: far worse.
    _, centred = index.search(queries, 10)
    assert recall_at_k(centred, truth, 10) < 0.6
    # Deterministic, and independent of the block sizes.
    other = Settings(pq_train_size=1000, corpus_block=999, query_block=13)
    assert np.array_equal(
        method.search(method.build(corpus, 128, other), queries, 10, 128, other), ids
    )


def test_pca_int8_recall_grows_with_bits_on_full_rank_data():
    rng = np.random.default_rng(1)
    scale = np.linspace(2, 0.2, 64)
    corpus = _unit(rng.standard_normal((2000, 64)) * scale)
    queries = _unit(rng.standard_normal((100, 64)) * scale)
    method = METHODS["pca_int8"]
    recalls = [_recall(method, corpus, queries, bits)[0] for bits in (64, 128, 256)]
    assert recalls[0] + 0.1 < recalls[1] and recalls[1] + 0.1 < recalls[2]


def test_pca_int8_applies_and_memory():
    method = METHODS["pca_int8"]
    assert method.name == "pca_int8" and method.budget == "bits"
    assert method.applies(384, 512, PLANNED)  # p = 64 <= 384
    assert method.applies(32, 256, PLANNED)  # p = 32 <= 32
    assert not method.applies(16, 256, PLANNED)
    assert not method.applies(384, 96, PLANNED)
    mem = method.memory(384, 256)
    assert mem.bytes_per_vector == 32
    assert mem.fixed_overhead_bytes == 4 * (384 * 32 + 384 + 2 * 32)
    # The uncentred query projection is faiss's PCA matrix, transposed.
    rng = np.random.default_rng(2)
    index = pca_int8.build_pca_int8(
        _unit(rng.standard_normal((400, 32))), 8, train_size=400, seed=7
    )
    a_t = pca_int8.query_projection(index)
    assert a_t.shape == (32, 8)
    assert np.allclose(a_t.T @ a_t, np.eye(8), atol=1e-4)
