"""Exact float top-k (the ground truth), the PQ / int8 baselines and the method registry."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute import methods
from phase2_assets.compute.methods import Plan, instrument, quantizers
from phase2_assets.compute.search import exact_search
from phase2_assets.compute.search.metrics import recall_at_k


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy reference: score desc, then lower corpus row."""
    full = q.astype(np.float64) @ c.astype(np.float64).T
    rows = np.arange(c.shape[0])
    ids = np.array([np.lexsort((rows, -s))[:k] for s in full])
    return np.take_along_axis(full, ids, 1), ids


# ---- exact float top-k ---------------------------------------------------------------------------


@pytest.mark.parametrize(("query_block", "corpus_block"), [(3, 5), (7, 64), (1024, 65536)])
def test_float_topk_matches_numpy_brute_force(query_block, corpus_block):
    rng = np.random.default_rng(0)
    c = rng.standard_normal((300, 24)).astype(np.float32)
    q = rng.standard_normal((17, 24)).astype(np.float32)
    s, i = exact_search.float_topk(q, c, 10, query_block=query_block, corpus_block=corpus_block)
    exp_s, exp_i = _brute(q, c, 10)
    assert s.dtype == np.float32 and i.dtype == np.int64
    assert s.shape == i.shape == (17, 10)
    np.testing.assert_array_equal(i, exp_i)
    np.testing.assert_allclose(s, exp_s, rtol=1e-5, atol=1e-5)


def test_float_topk_ties_across_blocks_prefer_lower_row():
    # Integer vectors: dot products are exact, every distinct vector appears three times.
    rng = np.random.default_rng(0)
    base = rng.integers(-3, 4, size=(12, 8)).astype(np.float32)
    c = np.concatenate([base, base, base])
    q = rng.integers(-3, 4, size=(30, 8)).astype(np.float32)
    # corpus_block=5 < 12: no block holds two copies of a vector, so ties meet only in the merge.
    _, i = exact_search.float_topk(q, c, 10, query_block=4, corpus_block=5)
    np.testing.assert_array_equal(i, _brute(q, c, 10)[1])


def test_float_topk_ties_within_one_block_prefer_lower_row():
    # scores 3, 1, 1, 2, 1: top-3 must be rows 0, 3, then row 1 (lowest of the tied rows 1, 2, 4).
    c = np.array([[3.0], [1.0], [1.0], [2.0], [1.0]], dtype=np.float32)
    q = np.array([[1.0]], dtype=np.float32)
    _, default_blocks = exact_search.float_topk(q, c, 3)
    _, tiny_blocks = exact_search.float_topk(q, c, 3, corpus_block=1)
    assert tiny_blocks.tolist() == [[0, 3, 1]]  # ties meet in the streaming merge
    assert default_blocks.tolist() == [[0, 3, 1]]  # ties meet inside one block


def test_float_topk_clips_k_and_handles_single_doc():
    c = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    q = np.array([[0.2, 0.9]], dtype=np.float32)
    s, i = exact_search.float_topk(q, c, 10)
    assert i.tolist() == [[1, 0]]
    np.testing.assert_allclose(s, [[0.9, 0.2]], rtol=1e-6)


def test_float_topk_dimension_mismatch_raises():
    with pytest.raises(ValueError, match="dimension mismatch"):
        exact_search.float_topk(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32), 2)


def test_float_topk_empty_corpus_raises():
    with pytest.raises(ValueError, match="empty corpus"):
        exact_search.float_topk(np.zeros((2, 3), np.float32), np.zeros((0, 3), np.float32), 2)


def test_merge_topk_orders_by_score_then_id():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]])
    ids = np.array([[7, 3, 2, 9]])
    s, i = exact_search.merge_topk(scores, ids, 3)
    assert i.tolist() == [[3, 2, 7]]
    assert s.tolist() == [[0.9, 0.5, 0.5]]
    s, i = exact_search.merge_topk(scores, ids, 2, larger_is_better=False)
    assert i.tolist() == [[9, 2]]


# ---- PQ ----------------------------------------------------------------------------------------


def _clustered(seed: int, n: int, nq: int, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim)) * 3
    x = centers[rng.integers(0, 20, n)] + rng.standard_normal((n, dim)) * 0.5
    q = centers[rng.integers(0, 20, nq)] + rng.standard_normal((nq, dim)) * 0.5
    return x.astype(np.float32), q.astype(np.float32)


def test_build_pq_recall_well_above_random():
    x, q = _clustered(0, 3000, 50)
    index, report = quantizers.build_pq(x, 8, train_size=65536, seed=7)
    assert index.ntotal == 3000
    assert index.code_size == 8  # m bytes per vector at nbits=8
    pred = quantizers.index_topk(index, q, 10)
    _, truth = exact_search.float_topk(q, x, 10)
    recall = recall_at_k(pred, truth, 10)
    assert recall > 0.3  # random ranking gives 10 / 3000
    assert report.n_train == 3000  # the corpus is smaller than train_size: train on everything
    assert report.recommended_min_train == 39 * 256
    assert report.undertrained
    assert 0 < report.relative_error < 0.1


def test_undertrained_pq_says_so_once_and_faiss_prints_nothing(capfd):
    """faiss's k-means warns once per sub-quantiser (and per OPQ iteration) on stderr; the
    silenced training gives the very same codebooks, and the report carries one warning."""
    import faiss

    x, _ = _clustered(2, 3000, 5, dim=32)
    capfd.readouterr()
    index, report = quantizers.build_pq(x, 8, train_size=65536, seed=7)
    assert "WARNING" not in capfd.readouterr().err
    assert report.warning == (
        "trained on 3,000 points; faiss's k-means asks for at least 9,984 (39 per centroid) "
        "for each sub-quantiser"
    )
    loud = faiss.IndexPQ(32, 8, 8, faiss.METRIC_INNER_PRODUCT)
    loud.pq.cp.seed = 7
    loud.train(x)
    assert "please provide at least 9984 training points" in capfd.readouterr().err
    assert np.array_equal(
        faiss.vector_to_array(loud.pq.centroids), faiss.vector_to_array(index.pq.centroids)
    )
    enough = quantizers.TrainingReport(9984, 39 * 256, 0.0, 0.0, 0.0, 0.0)
    assert enough.warning is None


def test_build_pq_is_deterministic_for_a_seed():
    x, q = _clustered(1, 1000, 5, dim=16)
    a, _ = quantizers.build_pq(x, 4, train_size=600, seed=7)
    b, _ = quantizers.build_pq(x, 4, train_size=600, seed=7)
    np.testing.assert_array_equal(a.sa_encode(x[:50]), b.sa_encode(x[:50]))


def test_build_pq_rejects_dimension_not_divisible():
    x = np.zeros((300, 30), dtype=np.float32)
    with pytest.raises(ValueError, match="divisible by 8"):
        quantizers.build_pq(x, 8, train_size=300, seed=0)


@pytest.mark.parametrize(("n_train", "undertrained"), [(1, True), (9983, True), (9984, False)])
def test_training_report_undertrained_threshold(n_train, undertrained):
    r = quantizers.TrainingReport(n_train, 39 * 256, 0.0, 0.0, 0.0, 0.0)
    assert r.undertrained is undertrained


def test_training_sample_seeded_sorted_and_whole_when_small():
    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    s1 = quantizers.training_sample(x, 10, 3)
    s2 = quantizers.training_sample(x, 10, 3)
    s3 = quantizers.training_sample(x, 10, 4)
    assert s1.shape == (10, 2) and s1.dtype == np.float32
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)
    rows = s1[:, 0] / 2
    assert np.all(np.diff(rows) > 0)  # row order kept, no duplicates
    np.testing.assert_array_equal(quantizers.training_sample(x, 50, 3), x)


# ---- int8 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [65536, 300])  # the streaming min/max must not depend on blocks
def test_build_int8_recall_on_unit_vectors(block):
    rng = np.random.default_rng(0)
    c, q = _unit(rng, 2000, 32), _unit(rng, 50, 32)
    index, report = quantizers.build_int8(c, block=block)
    assert index.ntotal == 2000
    assert index.code_size == 32  # one byte per dimension
    pred = quantizers.index_topk(index, q, 10, query_block=16)
    _, truth = exact_search.float_topk(q, c, 10)
    assert recall_at_k(pred, truth, 10) >= 0.95
    assert report.relative_error < 1e-3
    assert not report.undertrained


def test_build_int8_blocks_give_identical_codes():
    rng = np.random.default_rng(1)
    c = _unit(rng, 500, 16)
    a, _ = quantizers.build_int8(c)
    b, _ = quantizers.build_int8(c, block=37)
    np.testing.assert_array_equal(a.sa_encode(c), b.sa_encode(c))


# ---- method registry ---------------------------------------------------------------------------


def test_registry_holds_the_four_methods_with_budgets():
    reg = methods.METHODS
    assert {"float32", "int8", "binary", "pq"} <= set(reg)
    assert reg["float32"].budget == "reference"
    assert reg["int8"].budget == "reference"
    assert reg["binary"].budget == "bits"
    assert reg["pq"].budget == "bits"
    assert {m.name for m in methods.methods_for("bits")} >= {"binary", "pq"}
    assert "float32" not in {m.name for m in methods.methods_for("bits")}


def test_register_twice_raises():
    with pytest.raises(ValueError, match="registered twice"):
        methods.register(type(methods.METHODS["binary"]))


def test_binary_applies_follows_plan():
    b = methods.METHODS["binary"]
    planned = Plan(frozenset({128, 256}), frozenset({16}))
    assert b.applies(384, 128, planned)
    assert not b.applies(384, 64, planned)
    assert not b.applies(384, 128, Plan(pq_bytes=frozenset({16})))


def test_pq_applies_needs_plan_and_divisible_dimension():
    p = methods.METHODS["pq"]
    assert p.applies(384, 128, Plan(pq_bytes=frozenset({16})))
    assert not p.applies(384, 128, Plan(pq_bytes=frozenset({32})))  # 16 bytes not planned
    assert not p.applies(100, 64, Plan(pq_bytes=frozenset({8})))  # 100 % 8 != 0
    assert p.applies(96, 64, Plan(pq_bytes=frozenset({8})))


def test_memory_and_code_bits():
    reg = methods.METHODS
    assert reg["float32"].memory(384, None) == methods.Memory(1536.0, 0)
    assert reg["float32"].code_bits(384, None) == 32 * 384
    assert reg["int8"].memory(384, None) == methods.Memory(384.0, 8 * 384)
    assert reg["binary"].memory(384, 256) == methods.Memory(32.0, 4 * 256 * 384)
    assert reg["pq"].memory(384, 256) == methods.Memory(32.0, 4 * 384 * 256)
    assert reg["pq"].code_bits(384, 256) == 256


def test_binary_build_and_search_match_instrument():
    rng = np.random.default_rng(2)
    c, q = _unit(rng, 200, 16), _unit(rng, 9, 16)
    settings = methods.Settings(projection_seed=5, query_block=4, corpus_block=32)
    b = methods.METHODS["binary"]
    built = b.build(c, 64, settings)
    assert built.training is None and built.ntotal == 200
    np.testing.assert_array_equal(built.index, instrument.encode(c, 64, 5))
    got = b.search(built, q, 7, 64, settings)
    exp, _ = instrument.hamming_topk(instrument.encode(q, 64, 5), built.index, 7)
    np.testing.assert_array_equal(got, exp)


def test_int8_method_build_and_search():
    rng = np.random.default_rng(3)
    c, q = _unit(rng, 300, 16), _unit(rng, 5, 16)
    m = methods.METHODS["int8"]
    built = m.build(c, None, methods.Settings())
    assert built.training.n_train == 300 and built.ntotal == 300
    pred = m.search(built, q, 5, None, methods.Settings())
    _, truth = exact_search.float_topk(q, c, 5)
    assert pred.shape == (5, 5)
    assert recall_at_k(pred, truth, 5) >= 0.9


def test_long_loops_report_every_block_and_finish_at_the_total():
    from phase2_assets.compute.methods import instrument

    rng = np.random.default_rng(5)
    corpus = rng.standard_normal((1000, 16)).astype(np.float32)
    queries = rng.standard_normal((25, 16)).astype(np.float32)
    calls: dict[str, list] = {"gt": [], "ham": [], "add": [], "search": []}
    exact_search.float_topk(
        queries,
        corpus,
        5,
        query_block=10,
        corpus_block=300,
        progress=lambda *a: calls["gt"].append(a),
    )
    codes = instrument.encode(corpus, 64, 1)
    instrument.hamming_topk(
        instrument.encode(queries, 64, 1),
        codes,
        5,
        query_block=10,
        progress=lambda *a: calls["ham"].append(a),
    )
    index, _ = quantizers.build_int8(corpus, block=300, progress=lambda *a: calls["add"].append(a))
    quantizers.index_topk(
        index,
        queries,
        5,
        query_block=10,
        corpus_block=400,
        progress=lambda *a: calls["search"].append(a),
    )
    # The exact scans (float, scalar quantisers) report corpus rows scanned; Hamming, queries.
    assert calls["gt"] == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    assert calls["ham"] == [(10, 25), (20, 25), (25, 25)]
    assert calls["add"] == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    assert calls["search"] == [(400, 1000), (800, 1000), (1000, 1000)]
