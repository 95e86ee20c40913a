"""Sanity checks: each must pass on good data and fail on the planted defect it exists to catch."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute.analysis import sanity
from phase2_assets.compute.methods import instrument
from phase2_assets.compute.search import exact_search


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def vecs() -> np.ndarray:
    return _unit(np.random.default_rng(0), 200, 32)


# ---- unit_vectors ------------------------------------------------------------------------------


def test_unit_vectors_pass_on_normalised(vecs):
    out = sanity.unit_vectors(vecs, 1e-3)
    assert out.passed
    assert out.metadata["rows"] == 200
    assert out.metadata["non_finite_rows"] == 0
    assert out.metadata["off_unit_norm_rows"] == 0
    assert out.metadata["max_abs_norm_error"] < 1e-5


@pytest.mark.parametrize("block", [65536, 7])
def test_unit_vectors_fail_on_nan_row_and_name_it(vecs, block):
    bad = vecs.copy()
    bad[137, 5] = np.nan
    out = sanity.unit_vectors(bad, 1e-3, block=block)
    assert not out.passed
    assert out.metadata["non_finite_rows"] == 1
    assert out.metadata["first_non_finite_rows"] == "137"
    assert out.metadata["off_unit_norm_rows"] == 0  # NaN is reported once, as non-finite


def test_unit_vectors_fail_on_inf_row(vecs):
    bad = vecs.copy()
    bad[3, 0] = np.inf
    out = sanity.unit_vectors(bad, 1e-3)
    assert not out.passed
    assert out.metadata["first_non_finite_rows"] == "3"


@pytest.mark.parametrize("block", [65536, 7])
def test_unit_vectors_fail_on_unnormalised_and_zero_rows(vecs, block):
    bad = vecs.copy()
    bad[11] *= 1.01  # norm error 0.01 > tolerance 1e-3
    bad[150] = 0.0  # norm error 1
    out = sanity.unit_vectors(bad, 1e-3, block=block)
    assert not out.passed
    assert out.metadata["off_unit_norm_rows"] == 2
    assert out.metadata["first_off_norm_rows"] == "11, 150"
    assert out.metadata["max_abs_norm_error"] == pytest.approx(1.0)


def test_unit_vectors_tolerance_is_respected(vecs):
    bad = vecs.copy()
    bad[11] *= 1.0005
    assert sanity.unit_vectors(bad, 1e-3).passed
    assert not sanity.unit_vectors(bad, 1e-4).passed


def test_unit_vectors_empty_fails():
    assert not sanity.unit_vectors(np.zeros((0, 4), dtype=np.float32), 1e-3).passed


def test_unit_vectors_preview_truncates_long_lists(vecs):
    bad = vecs.copy()
    bad[:12] = 0.0
    meta = sanity.unit_vectors(bad, 1e-3).metadata
    assert meta["first_off_norm_rows"] == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … (12 in all)"


# ---- expected_shape ----------------------------------------------------------------------------


def test_expected_shape():
    assert sanity.expected_shape(np.zeros((3, 4)), 3, 4).passed
    assert not sanity.expected_shape(np.zeros((3, 4)), 4, 3).passed


# ---- codes -------------------------------------------------------------------------------------


def test_bit_balance_passes_on_real_codes(vecs):
    codes = instrument.encode(vecs, 64, 42)
    out = sanity.bit_balance(codes, 64, 0.25)
    assert out.passed
    assert out.metadata["bits_beyond_threshold"] == 0


def test_bit_balance_fails_on_constant_bit(vecs):
    codes = instrument.encode(vecs, 64, 42)
    codes[:, 2] |= 0b00001000  # bit 2*8 + 3 = 19 always 1
    out = sanity.bit_balance(codes, 64, 0.25)
    assert not out.passed
    assert out.metadata["worst_bit"] == 19
    assert out.metadata["max_deviation_from_half"] == 0.5
    assert out.metadata["bits_beyond_threshold"] == 1


def test_reproducible_codes_pass_and_fail_on_one_flipped_byte(vecs):
    codes = instrument.encode(vecs, 128, 42)
    assert sanity.reproducible_codes(vecs, codes, 128, 42, sample=500, check_seed=0).passed
    tampered = codes.copy()
    tampered[77, 9] ^= 0x01
    out = sanity.reproducible_codes(vecs, tampered, 128, 42, sample=500, check_seed=0)
    assert not out.passed
    assert out.metadata["mismatched_rows"] == 1
    # wrong seed: almost every row differs
    wrong = sanity.reproducible_codes(vecs, codes, 128, 43, sample=500, check_seed=0)
    assert not wrong.passed
    assert wrong.metadata["mismatched_rows"] > 190


def test_self_hamming_zero_passes_on_real_codes(vecs):
    codes = instrument.encode(vecs, 64, 42)
    out = sanity.self_hamming_zero(codes, sample=50, seed=0)
    assert out.passed
    assert out.metadata["sampled_codes"] == 50
    assert out.metadata["top1_distance_nonzero"] == 0


def test_hamming_matches_angle_on_isotropic_vectors():
    v = _unit(np.random.default_rng(1), 400, 32)
    codes = instrument.encode(v, 512, 42)
    out = sanity.hamming_matches_angle(v, codes, 512, 0.03, pairs=2000, seed=0)
    assert out.passed
    assert abs(out.metadata["bias"]) < 0.01
    assert out.metadata["correlation"] > 0.8
    assert out.metadata["pairs"] > 1900


def test_hamming_matches_angle_fails_when_codes_do_not_belong_to_vectors():
    # Vectors in a narrow cone (small angles) with codes of unrelated vectors (Hamming ~ 1/2).
    rng = np.random.default_rng(2)
    cone = rng.standard_normal((300, 32)) * 0.1
    cone[:, 0] += 1.0
    cone = (cone / np.linalg.norm(cone, axis=1, keepdims=True)).astype(np.float32)
    unrelated = instrument.encode(_unit(rng, 300, 32), 512, 42)
    out = sanity.hamming_matches_angle(cone, unrelated, 512, 0.03, pairs=1000, seed=0)
    assert not out.passed
    assert out.metadata["bias"] > 0.2


# ---- ground truth ------------------------------------------------------------------------------


def test_ground_truth_consistent_on_float_topk(vecs):
    q = _unit(np.random.default_rng(3), 20, 32)
    scores, ids = exact_search.float_topk(q, vecs, 10)
    out = sanity.ground_truth_consistent(q, vecs, ids, scores, sample=20, seed=0)
    assert out.passed, out.metadata
    assert out.metadata["max_score_error"] < 1e-5


def test_ground_truth_fails_when_score_columns_swapped(vecs):
    q = _unit(np.random.default_rng(3), 20, 32)
    scores, ids = exact_search.float_topk(q, vecs, 10)
    bad = scores.copy()
    bad[:, [0, 5]] = bad[:, [5, 0]]
    out = sanity.ground_truth_consistent(q, vecs, ids, bad, sample=20, seed=0)
    assert not out.passed
    assert out.metadata["scores_sorted"] is False
    assert out.metadata["max_score_error"] > 1e-3


def test_ground_truth_fails_on_duplicate_or_out_of_range_ids(vecs):
    q = _unit(np.random.default_rng(3), 5, 32)
    scores, ids = exact_search.float_topk(q, vecs, 10)
    dup = ids.copy()
    dup[0, 1] = dup[0, 0]
    assert (
        sanity.ground_truth_consistent(q, vecs, dup, scores, 5, 0).metadata["ids_unique_per_query"]
        is False
    )
    oob = ids.copy()
    oob[0, 9] = len(vecs)
    out = sanity.ground_truth_consistent(q, vecs, oob, scores, 0, 0)  # no rows re-scored
    assert not out.passed
    assert out.metadata["ids_in_range"] is False


# ---- quantiser bounds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recall", "n_docs", "ndcg", "float_ndcg", "passed"),
    [
        (0.80, 1000, 0.60, 0.62, True),  # worse than float, better than random
        (0.80, 1000, 0.63, 0.62, True),  # better than float but within slack 0.02
        (0.80, 1000, 0.65, 0.62, False),  # better than float beyond slack: suspicious
        (0.01, 1000, 0.50, 0.62, False),  # exactly random recall (10/1000): not better
        (0.02, 1000, 0.50, 0.62, True),
        (0.30, 20, 0.50, 0.62, False),  # random recall is 10/20 = 0.5
        (1.00, 8, 0.50, 0.62, True),  # n_docs <= 10: every ranking finds everything
    ],
)
def test_quantiser_within_bounds(recall, n_docs, ndcg, float_ndcg, passed):
    out = sanity.quantiser_within_bounds(recall, n_docs, ndcg, float_ndcg, 0.02)
    assert out.passed is passed
    assert out.metadata["random_recall_at_10"] == pytest.approx(min(10, n_docs) / n_docs)
