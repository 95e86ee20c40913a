"""Eigenvalues of a symmetric matrix that are the same bits on every CPU and BLAS kernel.

LAPACK's ``dsyevd`` (``numpy.linalg.eigvalsh``) reduces the matrix with BLAS calls, so its last
bits follow the kernel: the geometry's anisotropy differed in the 14th digit between OpenBLAS's
SkylakeX and Haswell kernels, and with it geometry.parquet, the regressions and the verdict's
numbers. Here the same two classical steps run on operations whose result does not depend on the
machine: a Householder reduction to tridiagonal form whose only products are the exact ones of
``exact_products`` (every other step is elementwise IEEE arithmetic, correctly rounded on any
CPU), then bisection on Sturm sequence counts of the tridiagonal matrix (Barth, Martin and
Wilkinson 1967; LAPACK's ``dstebz``), for every eigenvalue at once. Both steps are backward stable,
so the eigenvalues are as accurate as LAPACK's (a test holds them to ``eigvalsh``). The cost is
O(d^3) elementwise work: about a second at d = 384 and ten at d = 1024, once per pair.
"""

from __future__ import annotations

import numpy as np

from phase2_assets.compute import exact_products


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(exact_products.row_dots(a[None, :], b[None, :], np.float64)[0])


def tridiagonal(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(diagonal (n,), off-diagonal (n-1,)) of a symmetric matrix orthogonally similar to it."""
    a = np.array(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("eigenvalues of a matrix with NaN or Inf entries")
    a = (a + a.T) / 2.0
    n = a.shape[0]
    off = np.zeros(max(n - 1, 0))
    for k in range(n - 2):
        x = a[k + 1 :, k]
        norm = np.sqrt(_dot(x, x))
        if norm == 0.0:
            continue
        alpha = -norm if x[0] >= 0 else norm
        v = x.copy()
        v[0] -= alpha
        vv = _dot(v, v)
        off[k] = alpha
        if vv == 0.0:
            continue
        block = a[k + 1 :, k + 1 :]
        p = exact_products.matmul(block, v[:, None], np.float64)[:, 0] * (2.0 / vv)
        w = p - v * (_dot(p, v) / vv)
        update = np.outer(v, w)
        block -= update + update.T  # H B H = B - v w^T - w v^T, kept exactly symmetric
        a[k + 1 :, k] = 0.0
        a[k, k + 1 :] = 0.0
    if n >= 2:
        off[n - 2] = a[n - 1, n - 2]
    return np.diagonal(a).copy(), off


def _below(diag: np.ndarray, off_sq: np.ndarray, shifts: np.ndarray, pivmin: float):
    """Number of eigenvalues below each shift: negative pivots of T - shift I (Sturm count)."""
    count = np.zeros(len(shifts), dtype=np.int64)
    q = np.ones(len(shifts))
    for i in range(len(diag)):
        q = diag[i] - shifts - (off_sq[i - 1] / q if i else 0.0)
        q = np.where(np.abs(q) < pivmin, -pivmin, q)
        count += q < 0
    return count


def eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Every eigenvalue of the symmetric ``matrix``, ascending, float64 (as ``eigvalsh``)."""
    diag, off = tridiagonal(matrix)
    n = len(diag)
    if n == 0:
        return np.zeros(0)
    radius = np.abs(np.concatenate([[0.0], off])) + np.abs(np.concatenate([off, [0.0]]))
    scale = max(float(np.abs(diag).max() + radius.max()), np.finfo(np.float64).tiny)
    lo = np.full(n, float((diag - radius).min()) - scale * 1e-15)
    hi = np.full(n, float((diag + radius).max()) + scale * 1e-15)
    off_sq = off * off
    pivmin = np.finfo(np.float64).tiny / np.finfo(np.float64).eps * max(1.0, scale * scale)
    index = np.arange(n)
    for _ in range(128):  # halves each interval; float64 runs out of bits well before 128
        mid = (lo + hi) / 2.0
        open_ = (mid > lo) & (mid < hi)
        if not open_.any():
            break
        above = _below(diag, off_sq, mid, pivmin) > index  # the index-th is below mid
        hi = np.where(open_ & above, mid, hi)
        lo = np.where(open_ & ~above, mid, lo)
    return (lo + hi) / 2.0
