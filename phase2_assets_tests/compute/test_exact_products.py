"""Exact products: the same bits whatever order the sums run in, and the exact value rounded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phase2_assets.compute import exact_products


def _vectors(rng, n, d, spread=True):
    x = rng.standard_normal((n, d)).astype(np.float32)
    if spread:  # entries over many binades, as real embeddings have
        x *= (2.0 ** rng.integers(-20, 3, size=(n, d))).astype(np.float32)
    return x


def test_the_result_does_not_depend_on_the_summation_order():
    """Permuting the dimensions reorders every sum (as another BLAS kernel or thread count
    does); a float32 BLAS product changes its last bits, the exact product does not."""
    rng = np.random.default_rng(0)
    a, b = _vectors(rng, 50, 384), _vectors(rng, 300, 384)
    perm = rng.permutation(384)
    exact = exact_products.inner_products(a, b)
    assert exact.tobytes() == exact_products.inner_products(a[:, perm], b[:, perm]).tobytes()
    blas = a @ b.T
    assert blas.tobytes() != (a[:, perm] @ b[:, perm].T).tobytes()  # what the test guards


def test_the_result_is_the_exact_dot_product_rounded_to_float32():
    rng = np.random.default_rng(1)
    a, b = _vectors(rng, 20, 96), _vectors(rng, 30, 96)
    got = exact_products.inner_products(a, b)
    for i in range(20):
        for j in range(30):
            # float32 x float32 is exact in float64; fsum rounds the exact sum once.
            truth = math.fsum(float(x) * float(y) for x, y in zip(a[i], b[j], strict=True))
            scale = float(np.abs(a[i]).max() * np.abs(b[j]).max())
            assert abs(float(got[i, j]) - truth) <= abs(truth) * 2**-24 + 96 * 2**-42 * scale


def test_row_dots_and_matmul_agree_with_inner_products_bit_for_bit():
    rng = np.random.default_rng(2)
    a, b = _vectors(rng, 40, 200), _vectors(rng, 40, 200)
    full = exact_products.inner_products(a, b)
    assert exact_products.row_dots(a, b).tobytes() == np.diag(full).tobytes()
    assert exact_products.matmul(a, b.T).tobytes() == full.tobytes()


def test_positive_is_the_sign_of_the_exact_product_also_at_zero():
    rng = np.random.default_rng(3)
    a = _vectors(rng, 500, 64, spread=False)
    r = _vectors(rng, 128, 64, spread=False)
    a[:10] = 0.0  # exactly zero products give 0 bits
    a[10, :2], r[0, :2] = (1.0, 1.0), (1.0, -1.0)  # a dot product that cancels to exactly 0
    a[10, 2:] = 0.0
    signs = exact_products.positive(a, r.T.copy())
    assert (signs == (exact_products.inner_products(a, r) > 0)).all()
    assert not signs[:11, 0].any()


def test_non_finite_input_is_refused():
    a = np.ones((2, 4), dtype=np.float32)
    a[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        exact_products.inner_products(a, a)


def test_slices_keep_every_partial_sum_exact():
    for depth in (1, 7, 384, 768, 1024, 4096):
        beta = exact_products.slice_bits(depth)
        assert depth * 2.0 ** (2 * beta) <= 2.0**53
        assert beta >= 20


def test_ground_truth_is_the_exact_top_k_whatever_the_order_and_blocks():
    """float_topk screens with float32 BLAS but keeps exact scores: the same lists and bits
    with the dimensions permuted (another summation order) and any block sizes, ties by row."""
    from phase2_assets.compute.search import exact_search

    rng = np.random.default_rng(4)
    corpus = rng.standard_normal((5000, 128)).astype(np.float32) + 0.3
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    corpus[3000:3040] = corpus[7]  # exact ties: lower row first
    queries = corpus[:60] + 0.01 * rng.standard_normal((60, 128)).astype(np.float32)
    perm = rng.permutation(128)
    runs = [
        exact_search.float_topk(queries, corpus, 100, corpus_block=1000, query_block=16),
        exact_search.float_topk(queries[:, perm], corpus[:, perm], 100, corpus_block=4096),
    ]
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    assert runs[0][1].tobytes() == runs[1][1].tobytes()
    full = exact_products.inner_products(queries, corpus)
    for r in range(60):
        order = np.lexsort((np.arange(len(corpus)), -full[r]))[:100]
        assert (runs[0][1][r] == order).all()
        assert (runs[0][0][r] == full[r, order]).all()
