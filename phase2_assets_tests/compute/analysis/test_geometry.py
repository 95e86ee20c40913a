"""Embedding and code geometry: known answers on data whose geometry is fixed by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phase2_assets.compute.analysis import geometry
from phase2_assets.compute.methods import instrument

EMBEDDING_KEYS = {
    "n_vectors",
    "dim",
    "anisotropy_uncentred",
    "anisotropy_centred",
    "mean_norm_of_mean_vector",
    "outlier_dims",
    "outlier_fraction",
    "top_dim_cosine_share",
    "intrinsic_dim_90",
    "mean_pairwise_cosine",
    "std_pairwise_cosine",
    "mean_angle_deg",
    "angular_spread_deg",
    "n_pairs",
}
CODE_KEYS = {
    "bits",
    "mean_bit_balance_deviation",
    "max_bit_balance_deviation",
    "mean_bit_entropy",
    "min_bit_entropy",
    "mean_normalised_hamming",
    "duplicate_code_fraction",
    "n_pairs",
    "hamming_histogram",
}


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def isotropic() -> np.ndarray:
    rng = np.random.default_rng(1)
    return _normalise(rng.standard_normal((20000, 64))).astype(np.float32)


@pytest.fixture(scope="module")
def coned() -> np.ndarray:
    """Gaussian plus a large shift along e_0: every vector leans the same way (a "cone")."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20000, 64))
    x[:, 0] += 8.0
    return _normalise(x).astype(np.float32)


def _rank_k(k: int, n: int = 5000, d: int = 64, scale: float = 3.0) -> np.ndarray:
    """A (n x k) @ B (k x d): A centred with orthogonal columns of equal norm, B orthonormal rows.

    The centred scatter matrix is then scale^2 * B^T B: k equal variances and d - k zeros.
    """
    rng = np.random.default_rng(k)
    a = rng.standard_normal((n, k))
    a -= a.mean(axis=0)
    q, _ = np.linalg.qr(a)
    b, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return (scale * q) @ b.T


def test_isotropic_vectors_have_no_preferred_direction(isotropic):
    g = geometry.embedding_geometry(isotropic)
    assert set(g) == EMBEDDING_KEYS
    assert (g["n_vectors"], g["dim"]) == (20000, 64)
    # Marchenko-Pastur: singular values within 1 +- sqrt(d/n) ~ 1 +- 0.06 of each other.
    assert 1.0 < g["anisotropy_centred"] < 1.2
    assert 1.0 < g["anisotropy_uncentred"] < 1.2
    assert g["mean_norm_of_mean_vector"] < 0.02  # ~ 1 / sqrt(n)
    assert abs(g["mean_pairwise_cosine"]) < 0.01
    # Cosine of two random unit vectors in R^64 has std 1 / sqrt(64).
    assert g["std_pairwise_cosine"] == pytest.approx(1 / 8, rel=0.05)
    assert g["mean_angle_deg"] == pytest.approx(90.0, abs=1.0)
    assert g["angular_spread_deg"] == pytest.approx(math.degrees(1 / 8), rel=0.05)
    assert g["outlier_dims"] == 0 and g["outlier_fraction"] == 0.0
    # Variance spread evenly over 64 axes: 90% needs close to 0.9 * 64 of them.
    assert 55 <= g["intrinsic_dim_90"] <= 59
    assert 18000 <= g["n_pairs"] <= 20000
    assert all(type(v) in (int, float) for v in g.values())


def test_a_shared_mean_direction_shows_as_cone_outlier_and_cosine_share(coned):
    g = geometry.embedding_geometry(coned)
    # Uncentred, sigma_1 is the mean direction (~ sqrt(n/2)) against a bulk ~ sqrt(n / 2 / 63).
    assert g["anisotropy_uncentred"] > 5.0
    assert g["anisotropy_uncentred"] > 5.0 * g["anisotropy_centred"]
    assert g["anisotropy_centred"] < 1.5
    # x ~ (g + 8 e_0) / ||.||: E[cos] ~ 64 / (64 + 64), ||mean|| ~ 8 / sqrt(64 + 64).
    assert g["mean_pairwise_cosine"] == pytest.approx(0.5, abs=0.05)
    assert g["mean_pairwise_cosine"] == pytest.approx(g["mean_norm_of_mean_vector"] ** 2, abs=0.01)
    assert g["mean_angle_deg"] < 65.0
    assert g["outlier_dims"] == 1 and g["outlier_fraction"] == 1 / 64
    m = geometry.moments(coned)
    assert geometry.outlier_dimensions(m).tolist() == [0]
    shares = geometry.cosine_shares(m)
    assert int(shares.argmax()) == 0 and shares.sum() == pytest.approx(1.0)
    assert g["top_dim_cosine_share"] > 0.99


@pytest.mark.parametrize(("k", "k90"), [(7, 7), (10, 9), (20, 18)])
def test_exact_rank_k_has_k_axes_and_the_hand_computed_k90(k, k90):
    # k equal variances: the smallest k' with k'/k >= 0.9 (ties at exactly 0.9 count as reached).
    assert k90 == math.ceil(0.9 * k - 1e-12)
    x = _rank_k(k)
    m = geometry.moments(x)
    sv = geometry.singular_values(m, centred=True)
    assert sv[:k] == pytest.approx(np.full(k, 3.0), rel=1e-9)
    assert np.all(sv[k:] < 1e-6 * sv[0])
    g = geometry.embedding_geometry(x, pair_sample=2000)
    assert g["intrinsic_dim_90"] == k90
    # Rank below d / 2: the median singular value is 0, so the ratio is infinite by definition.
    assert g["anisotropy_centred"] == math.inf
    assert g["mean_norm_of_mean_vector"] < 1e-12


def test_intrinsic_dim_on_unequal_variances():
    # Variances 50, 30, 15, 5 (of 100) along the axes: 80% with two, 95% with three.
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4000, 4))
    q, _ = np.linalg.qr(a - a.mean(axis=0))  # centred, orthonormal columns
    x = q * np.sqrt([50.0, 30.0, 15.0, 5.0])
    assert geometry.intrinsic_dim(geometry.moments(x)) == 3
    assert geometry.intrinsic_dim(geometry.moments(x), target=0.8) == 2
    assert geometry.intrinsic_dim(geometry.moments(x), target=0.81) == 3


@pytest.mark.parametrize("shape", [(40, 6), (5, 9)])
def test_singular_values_match_numpy_svd(shape):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * [1.0 + i for i in range(shape[1])] + 2.5
    m = geometry.moments(x)
    r = min(shape)
    for centred, matrix in ((False, x), (True, x - x.mean(axis=0))):
        ours = geometry.singular_values(m, centred=centred)
        assert ours.shape == (shape[1],)
        assert np.all(np.diff(ours) <= 0)
        expected = np.linalg.svd(matrix, compute_uv=False)
        # Centring a 5-row matrix leaves rank 4: compare against the non-zero part only.
        nonzero = expected > 1e-9 * expected[0]
        assert ours[: nonzero.sum()] == pytest.approx(expected[nonzero], rel=1e-8)
        assert np.all(ours[nonzero.sum() :] < 1e-6 * ours[0])
        assert nonzero.sum() == (r - 1 if centred and shape[0] <= shape[1] else r)


def test_moments_are_exact_and_independent_of_the_block_size():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((503, 16))
    x[:, 0] += 3.0
    x = _normalise(x).astype(np.float32)
    small = geometry.moments(x, block=7)
    whole = geometry.moments(x, block=65536)
    x64 = x.astype(np.float64)
    for m in (small, whole):
        assert m.n == 503 and m.dim == 16
        np.testing.assert_allclose(m.row_sum, x64.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(m.gram, x64.T @ x64, rtol=1e-12)
        np.testing.assert_allclose(m.abs_sum, np.abs(x64).sum(axis=0), rtol=1e-12)
        with pytest.raises(ValueError):
            m.gram[0, 0] = 1.0  # read-only
    a = geometry.embedding_geometry(x, pair_sample=3000, block=7)
    b = geometry.embedding_geometry(x, pair_sample=3000, block=65536)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-10), key


def test_pairwise_angles_of_a_known_configuration():
    # Two rows at 60 degrees, of arbitrary lengths: every sampled pair (i != j) is that pair.
    x = np.array([[5.0, 0.0, 0.0], [0.05, 0.05 * math.sqrt(3.0), 0.0]])
    g = geometry.embedding_geometry(x, pair_sample=1000, seed=7)
    rng = np.random.default_rng(7)
    expected_pairs = int(np.sum(rng.integers(0, 2, 1000) != rng.integers(0, 2, 1000)))
    assert g["n_pairs"] == expected_pairs
    assert g["mean_pairwise_cosine"] == pytest.approx(0.5, abs=1e-12)
    assert g["std_pairwise_cosine"] == pytest.approx(0.0, abs=1e-12)
    assert g["mean_angle_deg"] == pytest.approx(60.0, abs=1e-9)
    assert g["angular_spread_deg"] == pytest.approx(0.0, abs=1e-6)


def test_works_on_a_memory_mapped_array(tmp_path, coned):
    path = tmp_path / "vectors.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=coned.shape)
    out[:] = coned
    out.flush()
    del out
    mapped = np.load(path, mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    from_disk = geometry.embedding_geometry(mapped, pair_sample=5000, block=4096)
    in_memory = geometry.embedding_geometry(coned, pair_sample=5000)
    for key in in_memory:
        assert from_disk[key] == pytest.approx(in_memory[key], rel=1e-10), key


def test_hamming_matches_angle_on_the_same_sampled_pairs(isotropic):
    x = isotropic[:3000]
    codes = instrument.encode(x, 256, seed=11)
    g = geometry.embedding_geometry(x, pair_sample=5000, seed=3)
    c = geometry.code_diagnostics(codes, 256, pair_sample=5000, seed=3)
    assert set(c) == CODE_KEYS
    assert c["n_pairs"] == g["n_pairs"]  # same sampler, same pairs
    assert c["mean_normalised_hamming"] == pytest.approx(g["mean_angle_deg"] / 180, abs=0.01)
    assert c["mean_bit_entropy"] > 0.99 and c["duplicate_code_fraction"] == 0.0


def test_code_diagnostics_on_balanced_and_constant_bits():
    # All 256 byte values: each of the 8 bits is 1 in exactly half of the rows.
    balanced = np.arange(256, dtype=np.uint8)[:, None]
    c = geometry.code_diagnostics(balanced, 8, pair_sample=4000)
    assert c["mean_bit_entropy"] == 1.0 and c["min_bit_entropy"] == 1.0
    assert c["max_bit_balance_deviation"] == 0.0
    assert c["duplicate_code_fraction"] == 0.0
    assert len(c["hamming_histogram"]) == 9
    assert sum(c["hamming_histogram"]) == c["n_pairs"] > 3900
    assert c["hamming_histogram"][0] == 0  # distinct codes are never at distance 0
    # Bit 3 forced to 1 (constant), so bit 3 is p = 1: deviation 0.5, entropy 0.
    constant = balanced | np.uint8(1 << 3)
    c = geometry.code_diagnostics(constant, 8, pair_sample=100)
    assert c["max_bit_balance_deviation"] == 0.5 and c["min_bit_entropy"] == 0.0
    assert c["mean_bit_entropy"] == pytest.approx(7 / 8)
    assert c["mean_bit_balance_deviation"] == pytest.approx(0.5 / 8)
    assert c["duplicate_code_fraction"] == 1.0  # each code now appears twice


def test_code_diagnostics_hand_computed_entropy_and_bit_order():
    # 4 rows, 16 bits. Bit 0 (byte 0, LSB) is on in 1 of 4 rows; bit 15 (byte 1, MSB) in 3 of 4;
    # the other 14 bits are always 0.
    codes = np.array([[1, 0x80], [0, 0x80], [0, 0x80], [0, 0]], dtype=np.uint8)
    c = geometry.code_diagnostics(codes, 16, pair_sample=10)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))  # 0.8112781...
    assert c["mean_bit_entropy"] == pytest.approx(2 * h / 16, rel=1e-12)
    assert c["min_bit_entropy"] == 0.0
    assert c["mean_bit_balance_deviation"] == pytest.approx((0.25 + 0.25 + 14 * 0.5) / 16)
    assert c["duplicate_code_fraction"] == pytest.approx(2 / 4)  # rows 1 and 2


def test_histogram_and_duplicates_on_hand_built_codes():
    same = np.full((5, 4), 0xA5, dtype=np.uint8)
    c = geometry.code_diagnostics(same, 32, pair_sample=500)
    assert c["hamming_histogram"][0] == c["n_pairs"] > 0
    assert sum(c["hamming_histogram"][1:]) == 0
    assert c["mean_normalised_hamming"] == 0.0 and c["duplicate_code_fraction"] == 1.0
    # Complementary codes: every pair of distinct rows is at distance 8 (all bits differ).
    opposite = np.array([[0x00], [0xFF]], dtype=np.uint8)
    c = geometry.code_diagnostics(opposite, 8, pair_sample=500)
    assert c["hamming_histogram"][8] == c["n_pairs"] > 0 and c["mean_normalised_hamming"] == 1.0
    # Rows A, A, B: two of the three rows share their code.
    aab = np.array([[1, 2], [1, 2], [3, 4]], dtype=np.uint8)
    assert geometry.code_diagnostics(aab, 16)["duplicate_code_fraction"] == pytest.approx(2 / 3)


def test_padding_bits_past_bits_are_ignored():
    # 12-bit codes in 2 bytes: the top 4 bits of byte 1 are padding and differ between rows.
    codes = np.array([[0x0F, 0x00], [0x0F, 0xF0]], dtype=np.uint8)
    c = geometry.code_diagnostics(codes, 12, pair_sample=200)
    assert c["hamming_histogram"][0] == c["n_pairs"] and len(c["hamming_histogram"]) == 13
    assert c["duplicate_code_fraction"] == 0.0  # bytes differ, so stored rows are distinct
    assert c["min_bit_entropy"] == 0.0 and c["max_bit_balance_deviation"] == 0.5


def test_nan_row_is_named():
    x = np.ones((10, 4), dtype=np.float32)
    x[6, 2] = np.nan
    with pytest.raises(ValueError, match=r"row 6\b"):
        geometry.embedding_geometry(x, block=4)
    x[6, 2] = 1.0
    x[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"row 9\b"):
        geometry.moments(x, block=3)


def test_float64_sub_steps_inside_a_block(monkeypatch):
    # Force 2-row float64 steps inside 5-row blocks: same moments, and the NaN row is still named.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((23, 4)).astype(np.float32)
    reference = geometry.moments(x)
    monkeypatch.setattr(geometry, "_FLOAT64_STEP_ELEMENTS", 8)
    stepped = geometry.moments(x, block=5)
    np.testing.assert_allclose(stepped.gram, reference.gram, rtol=1e-12)
    np.testing.assert_allclose(stepped.row_sum, reference.row_sum, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stepped.abs_sum, reference.abs_sum, rtol=1e-12)
    x[8, 1] = np.nan  # block 1 (rows 5-9), second step (rows 7-8)
    with pytest.raises(ValueError, match=r"row 8\b"):
        geometry.moments(x, block=5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones(8, dtype=np.float32), "2-d"),
        (np.ones((2, 3, 4), dtype=np.float32), "2-d"),
        (np.ones((1, 4), dtype=np.float32), "at least 2 rows"),
        (np.ones((0, 4), dtype=np.float32), "at least 2 rows"),
    ],
)
def test_invalid_shapes_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        geometry.embedding_geometry(bad)
    with pytest.raises(ValueError, match=message):
        geometry.code_diagnostics(bad.astype(np.uint8), 8)


def test_code_width_and_dtype_are_checked():
    with pytest.raises(ValueError, match="2 bytes"):
        geometry.code_diagnostics(np.zeros((3, 1), dtype=np.uint8), 16)
    with pytest.raises(ValueError, match="uint8"):
        geometry.code_diagnostics(np.zeros((3, 1), dtype=np.int64), 8)
