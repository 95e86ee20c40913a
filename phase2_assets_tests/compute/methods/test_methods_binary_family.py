"""Known-answer tests of the binary family: re-ranking, asymmetric scoring, mean-centred signs."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute.methods import (
    METHODS,
    Memory,
    Plan,
    Settings,
    binary_asym,
    binary_rerank,
    instrument,
    sign_centered,
)
from phase2_assets.compute.search import exact_search
from phase2_assets.compute.search.metrics import recall_at_k

PLANNED = Plan(frozenset({64, 128, 256, 512}), frozenset({8, 16, 32, 64}))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _anisotropic(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Unit vectors whose coordinate j has standard deviation 1 / sqrt(j + 1) before normalising."""
    return _unit(rng.standard_normal((n, dim)) / np.sqrt(np.arange(1, dim + 1)))


def _narrow_cone(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """normalise(0.1 gauss + 5 e0): every pair has cosine > 0.99, the common offset dominates."""
    offset = np.zeros(dim)
    offset[0] = 5.0
    return _unit(0.1 * rng.standard_normal((n, dim)) + offset)


def _lexsort_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """numpy reference: score desc, then lower corpus row."""
    rows = np.arange(scores.shape[1])
    return np.array([np.lexsort((rows, -s))[:k] for s in scores])


def _recall(method: str, corpus, queries, bits, settings, k: int = 10) -> float:
    _, truth = exact_search.float_topk(queries, corpus, k)
    m = METHODS[method]
    return recall_at_k(
        m.search(m.build(corpus, bits, settings), queries, k, bits, settings), truth, k
    )


def _read_only_memmap(tmp_path, array: np.ndarray) -> np.memmap:
    path = tmp_path / "corpus.f32"
    array.tofile(path)
    return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)


# ---- registration and memory accounting ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "budget", "bits", "code_bits", "memory"),
    [
        ("binary_rerank", "bits", 256, 256, Memory(32.0, 4 * 256 * 384, 0.0, 4.0 * 384)),
        ("binary_asym", "bits", 256, 256, Memory(32.0, 4 * 256 * 384)),
        ("sign_centered", "reference", None, 384, Memory(48.0, 4 * 384)),
        ("sign_centered_proj", "bits", 256, 256, Memory(32.0, 4 * 384 + 4 * 256 * 384)),
    ],
)
def test_registered_with_budget_and_memory(name, budget, bits, code_bits, memory):
    m = METHODS[name]
    assert m.budget == budget and m.description
    assert m.code_bits(384, bits) == code_bits
    assert m.memory(384, bits) == memory
    if bits is None:
        assert m.applies(384, None, PLANNED)
    else:
        assert m.applies(384, 256, PLANNED)
        assert not m.applies(384, 96, PLANNED)  # a multiple of 8, but not planned
        assert not m.applies(384, 256, Plan(pq_bytes=frozenset({32})))


def test_sign_centered_pads_odd_dimensions_to_whole_bytes():
    m = METHODS["sign_centered"]
    assert m.code_bits(10, None) == 16
    assert m.memory(10, None) == Memory(2.0, 40)


# ---- binary_rerank -------------------------------------------------------------------------------


def test_rerank_with_whole_corpus_shortlist_is_exact_float_topk(tmp_path):
    rng = np.random.default_rng(1)
    corpus = _read_only_memmap(tmp_path, _unit(rng.standard_normal((150, 24))))
    queries = _unit(rng.standard_normal((19, 24)))
    settings = Settings(
        corpus_block=37, query_block=7, method_params={"binary_rerank": {"factor": 15}}
    )  # 15 x 10 >= 150 rows
    m = METHODS["binary_rerank"]
    index_built = m.build(corpus, 64, settings)
    index = index_built.index
    assert isinstance(index.corpus, np.memmap)  # kept by reference, not copied
    ids = m.search(index_built, queries, 10, 64, settings)
    _, truth = exact_search.float_topk(queries, np.asarray(corpus), 10)
    assert ids.dtype == np.int64 and ids.shape == (19, 10)
    np.testing.assert_array_equal(ids, truth)
    assert binary_rerank.shortlist_recall(index, queries, truth, 10, settings) == 1.0


def test_rerank_returns_float_order_of_the_hamming_shortlist():
    # Not the float top-k: the best k of the r x k Hamming shortlist, by exact inner product.
    rng = np.random.default_rng(2)
    corpus = _anisotropic(rng, 400, 32)
    queries = _anisotropic(rng, 11, 32)
    settings = Settings(
        corpus_block=50, query_block=4, method_params={"binary_rerank": {"factor": 3}}
    )
    built = METHODS["binary_rerank"].build(corpus, 64, settings)
    ids = METHODS["binary_rerank"].search(built, queries, 5, 64, settings)
    shortlist = METHODS["binary"].search(
        METHODS["binary"].build(corpus, 64, settings), queries, 15, 64, settings
    )
    scores = queries.astype(np.float64) @ corpus.astype(np.float64).T
    for q in range(len(queries)):
        cand = shortlist[q]
        order = np.lexsort((cand, -scores[q, cand]))[:5]
        np.testing.assert_array_equal(ids[q], cand[order])
    _, truth = exact_search.float_topk(queries, corpus, 5)
    assert not np.array_equal(ids, truth)  # the shortlist really limits the result here


def test_rerank_ties_prefer_lower_row():
    # Integer vectors, each present twice: exact float ties, resolved by row across blocks.
    rng = np.random.default_rng(3)
    base = rng.integers(-3, 4, size=(20, 8)).astype(np.float32)
    corpus = np.concatenate([base, base])
    queries = rng.integers(-3, 4, size=(9, 8)).astype(np.float32)
    settings = Settings(
        corpus_block=6, query_block=4, method_params={"binary_rerank": {"factor": 4}}
    )  # 4 x 10 >= 40 rows
    m = METHODS["binary_rerank"]
    ids = m.search(m.build(corpus, 64, settings), queries, 10, 64, settings)
    np.testing.assert_array_equal(ids, _lexsort_topk(queries @ corpus.T, 10))


def test_rerank_beats_binary_and_reaches_its_shortlist_ceiling():
    rng = np.random.default_rng(4)
    corpus = _anisotropic(rng, 2000, 64)
    queries = _anisotropic(rng, 60, 64)
    settings = Settings(
        corpus_block=512, query_block=32, method_params={"binary_rerank": {"factor": 4}}
    )
    _, truth = exact_search.float_topk(queries, corpus, 10)
    index_built = METHODS["binary_rerank"].build(corpus, 64, settings)
    index = index_built.index
    rerank = recall_at_k(
        METHODS["binary_rerank"].search(index_built, queries, 10, 64, settings), truth, 10
    )
    plain = _recall("binary", corpus, queries, 64, settings)
    ceiling = binary_rerank.shortlist_recall(index, queries, truth, 10, settings)
    assert rerank >= plain + 0.15  # ~0.4 vs ~0.17 at 64 bits
    # Every true neighbour in the shortlist outscores every other candidate, so re-ranking
    # reaches the ceiling exactly; a larger shortlist can only raise it.
    assert ceiling == pytest.approx(rerank, abs=1e-12)
    wider = Settings(
        corpus_block=512, query_block=32, method_params={"binary_rerank": {"factor": 8}}
    )
    assert binary_rerank.shortlist_recall(index, queries, truth, 10, wider) > ceiling


def test_rerank_k_larger_than_corpus_returns_every_row():
    rng = np.random.default_rng(5)
    corpus = _unit(rng.standard_normal((7, 16)))
    queries = _unit(rng.standard_normal((3, 16)))
    settings = Settings(
        corpus_block=3, query_block=2, method_params={"binary_rerank": {"factor": 2}}
    )
    m = METHODS["binary_rerank"]
    ids = m.search(m.build(corpus, 64, settings), queries, 10, 64, settings)
    np.testing.assert_array_equal(ids, exact_search.float_topk(queries, corpus, 10)[1])


# ---- binary_asym ---------------------------------------------------------------------------------


def _asym_brute(corpus: np.ndarray, queries: np.ndarray, bits: int, seed: int):
    """(R q) · s(x) in float64, s(x) = ±1 from the sign of x @ R.T; equal codes, equal scores."""
    r = instrument.projection_matrix(corpus.shape[1], bits, seed)
    s = np.where(corpus @ r.T > 0, 1.0, -1.0)
    unique, inverse = np.unique(s, axis=0, return_inverse=True)
    projected = (queries @ r.T).astype(np.float64)
    return (projected @ unique.T)[:, inverse.ravel()]


def test_asym_index_is_the_instruments_codes():
    rng = np.random.default_rng(6)
    corpus = _unit(rng.standard_normal((30, 16)))
    settings = Settings(corpus_block=7)
    np.testing.assert_array_equal(
        METHODS["binary_asym"].build(corpus, 128, settings).index,
        instrument.encode(corpus, 128, settings.projection_seed),
    )


@pytest.mark.parametrize(("query_block", "corpus_block"), [(3, 7), (5, 64), (256, 65536)])
def test_asym_scores_and_ids_match_brute_force(query_block, corpus_block):
    rng = np.random.default_rng(7)
    corpus = _unit(rng.standard_normal((200, 24)))
    queries = _unit(rng.standard_normal((13, 24)))
    settings = Settings(corpus_block=corpus_block, query_block=query_block)
    codes_built = METHODS["binary_asym"].build(corpus, 64, settings)
    codes = codes_built.index
    ids, scores = binary_asym.asym_topk(codes, queries, 10, 64, settings)
    full = _asym_brute(corpus, queries, 64, settings.projection_seed)
    expected = _lexsort_topk(full, 10)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(
        METHODS["binary_asym"].search(codes_built, queries, 10, 64, settings), ids
    )
    # Not the symmetric ranking: the query's magnitudes change the order.
    hamming = METHODS["binary"].search(codes_built, queries, 10, 64, settings)
    assert not np.array_equal(ids, hamming)


def test_asym_equal_codes_tie_by_lower_row_across_blocks():
    rng = np.random.default_rng(8)
    base = _unit(rng.standard_normal((15, 16)))
    corpus = np.concatenate([base, base, base])  # rows i, i + 15, i + 30 share a code
    queries = _unit(rng.standard_normal((6, 16)))
    settings = Settings(corpus_block=4, query_block=4)  # copies always meet in the merge
    built = METHODS["binary_asym"].build(corpus, 64, settings)
    ids = METHODS["binary_asym"].search(built, queries, 9, 64, settings)
    np.testing.assert_array_equal(
        ids, _lexsort_topk(_asym_brute(corpus, queries, 64, settings.projection_seed), 9)
    )
    for row in ids:  # each code's three copies come together, lowest row first
        np.testing.assert_array_equal(row.reshape(3, 3) - row[::3, None], [[0, 15, 30]] * 3)


def test_asym_beats_symmetric_hamming_at_256_bits():
    # Gordo et al. (TPAMI 2014): keeping the query real-valued improves on Hamming ranking.
    rng = np.random.default_rng(9)
    corpus = _anisotropic(rng, 3000, 64)
    queries = _anisotropic(rng, 100, 64)
    settings = Settings(corpus_block=1024, query_block=64)
    asym = _recall("binary_asym", corpus, queries, 256, settings)
    plain = _recall("binary", corpus, queries, 256, settings)
    assert asym >= plain + 0.05  # ~0.51 vs ~0.41


# ---- sign_centered / sign_centered_proj ----------------------------------------------------------


def test_sign_centered_codes_by_hand():
    a = np.array([1, -1, 2, 0, 3, -3, 1, 1, -2, 5], dtype=np.float32)
    corpus = np.stack([10 + a, 10 - a, np.full(10, 10, dtype=np.float32)])  # mean: 10 everywhere
    settings = Settings(corpus_block=2)
    index_built = METHODS["sign_centered"].build(corpus, None, settings)
    index = index_built.index
    np.testing.assert_array_equal(index.mean, np.full(10, 10.0))
    # bits [1,0,1,0,1,0,1,1 | 0,1], [0,1,0,0,0,1,0,0 | 1,0], all 0 (at the mean gives 0);
    # least significant bit first, bits 10..15 padded with 0.
    expected = np.array([[0b11010101, 0b10], [0b00100010, 0b01], [0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(index.codes, expected)
    # Without centring every bit would be 1 for every row; queries use the same mean and padding.
    queries = np.stack([10 + a, 10 + 0.5 * a])
    ids = METHODS["sign_centered"].search(index_built, queries, 3, None, settings)
    np.testing.assert_array_equal(ids, [[0, 2, 1], [0, 2, 1]])  # Hamming 0, 6, 9


def test_sign_centered_proj_codes_match_numpy(tmp_path):
    rng = np.random.default_rng(10)
    corpus = _read_only_memmap(tmp_path, _narrow_cone(rng, 50, 12))
    settings = Settings(corpus_block=9, projection_seed=3)
    index_built = METHODS["sign_centered_proj"].build(corpus, 24, settings)
    index = index_built.index
    mu = np.asarray(corpus, dtype=np.float64).mean(axis=0)
    np.testing.assert_allclose(index.mean, mu, rtol=1e-6)
    r = instrument.projection_matrix(12, 24, 3)
    bits = (np.asarray(corpus) - mu.astype(np.float32)) @ r.T > 0
    np.testing.assert_array_equal(index.codes, np.packbits(bits, axis=1, bitorder="little"))


def test_centring_fixes_the_narrow_cone():
    rng = np.random.default_rng(11)
    corpus = _narrow_cone(rng, 2000, 32)
    queries = _narrow_cone(rng, 100, 32)
    settings = Settings(corpus_block=512, query_block=64)
    # The failure mode: uncentred codes of a cone are nearly all equal, centred ones are not.
    plain_bits = instrument.unpack(METHODS["binary"].build(corpus, 128, settings).index, 128)
    centred_bits = instrument.unpack(
        METHODS["sign_centered_proj"].build(corpus, 128, settings).index.codes, 128
    )
    assert np.mean(plain_bits[::2] != plain_bits[1::2]) < 0.1
    assert np.mean(centred_bits[::2] != centred_bits[1::2]) > 0.4
    plain = _recall("binary", corpus, queries, 128, settings)
    centred = _recall("sign_centered_proj", corpus, queries, 128, settings)
    assert centred >= 3 * plain and centred >= plain + 0.15  # ~0.25 vs ~0.05


@pytest.mark.parametrize(("name", "bits"), [("sign_centered", None), ("sign_centered_proj", 64)])
def test_mean_comes_from_the_corpus_only(name, bits):
    rng = np.random.default_rng(12)
    corpus = _narrow_cone(rng, 300, 16)
    settings = Settings(corpus_block=64, query_block=8)
    m = METHODS[name]
    index_built = m.build(corpus, bits, settings)
    index = index_built.index
    mean, codes = index.mean.copy(), index.codes.copy()
    np.testing.assert_allclose(index.mean, corpus.astype(np.float64).mean(axis=0), rtol=1e-6)
    queries = corpus[:5]
    alone = m.search(index_built, queries, 4, bits, settings)
    shift = np.zeros(16, dtype=np.float32)
    shift[1] = 3.0
    crowd = np.concatenate([queries, queries + shift, queries - 2 * shift])
    together = m.search(index_built, crowd, 4, bits, settings)
    np.testing.assert_array_equal(together[:5], alone)  # a query's code ignores its batch
    np.testing.assert_array_equal(index.codes[alone[:, 0]], index.codes[:5])  # Hamming 0 first
    np.testing.assert_array_equal(index.mean, mean)
    np.testing.assert_array_equal(index.codes, codes)
    if bits is None:  # shifted queries move their own codes, never the corpus mean
        q = sign_centered.encode_centered(queries + shift, index.mean)
        np.testing.assert_array_equal(
            instrument.unpack(q, 16)[:, 1], (queries[:, 1] + 3.0 > index.mean[1]).astype(np.uint8)
        )


def test_corpus_mean_streams_in_blocks(tmp_path):
    rng = np.random.default_rng(13)
    data = (rng.standard_normal((101, 8)) + 7).astype(np.float32)
    mean = sign_centered.corpus_mean(_read_only_memmap(tmp_path, data), chunk=10)
    assert mean.dtype == np.float32
    np.testing.assert_allclose(mean, data.astype(np.float64).mean(axis=0), rtol=1e-7)


def test_rerank_rescoring_stops_at_the_operating_depth():
    """Deeper ranks (for recall_at_50/100) continue in Hamming order after the re-ranked head."""
    rng = np.random.default_rng(5)
    corpus = rng.standard_normal((400, 32)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = corpus[:7] + 0.1 * rng.standard_normal((7, 32)).astype(np.float32)
    settings = Settings(
        method_params={"binary_rerank": {"factor": 2, "depth": 5}}, query_block=3, corpus_block=64
    )
    method = METHODS["binary_rerank"]
    index_built = method.build(corpus, 64, settings)
    index = index_built.index
    ids = method.search(index_built, queries, 30, 64, settings)
    hamming, _ = instrument.hamming_topk(
        instrument.encode(queries, 64, settings.projection_seed), index.codes, 30
    )
    head = 2 * 5
    # The head is the Hamming top-10 re-ordered by float score; the tail is Hamming order.
    assert [sorted(r) for r in ids[:, :head].tolist()] == [sorted(r) for r in hamming[:, :head]]
    np.testing.assert_array_equal(ids[:, head:], hamming[:, head:])
    scores = np.einsum("qkd,qd->qk", corpus[ids[:, :head]], queries)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
