"""Eigenvalues by exact Householder reduction and bisection: as accurate as LAPACK's."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute import exact_eigenvalues


@pytest.mark.parametrize("n", [1, 2, 3, 17, 96])
def test_eigenvalues_match_lapack_to_rounding(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3 * n + 2, n))
    x[:, 0] += 4.0  # a dominant direction, as embeddings have
    a = x.T @ x
    ours, ref = exact_eigenvalues.eigenvalues(a), np.linalg.eigvalsh(a)
    assert np.all(np.diff(ours) >= 0)
    assert np.abs(ours - ref).max() <= 1e-13 * ref.max()


def test_known_spectra():
    assert exact_eigenvalues.eigenvalues(np.diag([3.0, 1.0, 2.0])).tolist() == [1.0, 2.0, 3.0]
    # [[2, 1], [1, 2]] has eigenvalues 1 and 3.
    assert exact_eigenvalues.eigenvalues(np.array([[2.0, 1.0], [1.0, 2.0]])) == pytest.approx(
        [1.0, 3.0], abs=1e-15
    )
    rank_one = np.outer(np.arange(1.0, 6.0), np.arange(1.0, 6.0))  # one eigenvalue |v|^2 = 55
    eig = exact_eigenvalues.eigenvalues(rank_one)
    assert eig[-1] == pytest.approx(55.0, rel=1e-14) and np.abs(eig[:-1]).max() < 1e-12
    assert np.abs(exact_eigenvalues.eigenvalues(np.zeros((4, 4)))).max() < 1e-300


def test_the_tridiagonal_form_is_similar_to_the_matrix():
    """Trace and Frobenius norm are kept by an orthogonal similarity."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 12))
    a = x.T @ x
    diag, off = exact_eigenvalues.tridiagonal(a)
    assert diag.sum() == pytest.approx(np.trace(a), rel=1e-13)
    frob = np.sqrt((diag**2).sum() + 2 * (off**2).sum())
    assert frob == pytest.approx(np.linalg.norm(a), rel=1e-13)


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError, match="square"):
        exact_eigenvalues.eigenvalues(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        exact_eigenvalues.eigenvalues(np.array([[1.0, np.nan], [np.nan, 1.0]]))
