"""Matrix products whose every bit is the same on any CPU, BLAS kernel and thread count.

A float32 BLAS product rounds as its kernel sums: OpenBLAS's Haswell kernel gives other last bits
than its SkylakeX kernel, and at 2 threads other bits than at 1 (8,189 of 30,990 ground-truth
scores differed on an AVX-512 EPYC). A sign code flips where a projection lands within those bits
of zero; a ground-truth list reorders where two scores do. So every product whose result the study
keeps (ground-truth scores, the projections behind sign codes, rescoring, the geometry's moments)
is computed here, by the error-free splitting of Ozaki, Ogita and Oishi (2012): each row of ``a``
(each column of ``b``) is scaled by a power of two to its largest entry and cut into slices of
``beta`` bits, integers held in float64. A product of two slices is a sum of at most ``d``
integers below 2**(2*beta) <= 2**53 / d, which float64 holds exactly whatever order BLAS adds them
in, with or without FMA. For a float32 result, two slices a side and three such dgemm products,
combined in a fixed elementwise order, keep every input bit down to 2**-42 of a row's largest
entry (beta is 21 at d <= 2048): the result is within about d * 2**-42 of the row scales of the
exact product, far below float32's rounding, and the same bits everywhere, for about six float32
products' worth of work. A float64 result (the geometry's moments) takes three slices and six
products (2**-63). ``positive`` and the ground truth's screening use a float32 BLAS product
first and recompute exactly only what its error bound leaves undecided.
"""

from __future__ import annotations

import math

import numpy as np


def slice_bits(depth: int) -> int:
    """Bits per slice for products that sum ``depth`` terms: d * 2**(2*beta) <= 2**53."""
    return (53 - math.ceil(math.log2(max(depth, 1)))) // 2


def _slices(dtype) -> int:
    """Two slices (42 bits) for a float32 result, three (63 bits) for a float64 one."""
    return 2 if np.dtype(dtype) == np.float32 else 3


def _split(x: np.ndarray, axis: int, beta: int, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """(slices, exponent): x ~ sum_i slices[i] * 2**(exponent - (i + 1) * beta), the exponent
    per row (axis=-1) or per column (axis=-2), every slice integers below 2**beta in float64."""
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("exact product of an array with NaN or Inf entries")
    _, exponent = np.frexp(np.abs(x).max(axis=axis, keepdims=True, initial=0.0))
    rest = np.ldexp(x, beta - exponent)  # |rest| < 2**beta: a power-of-two scaling, exact
    slices = []
    for _ in range(count):
        high = np.rint(rest)
        slices.append(high)
        rest = np.ldexp(rest - high, beta)  # rest - high is exact (Sterbenz)
    return slices, exponent


def _combine(groups: list[np.ndarray], beta: int) -> np.ndarray:
    """sum_s groups[s] * 2**(-s * beta), from the smallest term up: a fixed elementwise order."""
    total = groups[-1]
    for group in groups[-2::-1]:
        total = group + np.ldexp(total, -beta)
    return total


def matmul(a: np.ndarray, b: np.ndarray, dtype=np.float32) -> np.ndarray:
    """``a @ b`` (2-d or stacked, numpy's broadcasting) as float32, or as float64 from three
    slices a side, the same bits on every machine."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"dimension mismatch: {a.shape[-1]} vs {b.shape[-2]}")
    beta, count = slice_bits(a.shape[-1]), _slices(dtype)
    a_slices, a_exp = _split(a, -1, beta, count)
    b_slices, b_exp = _split(b, -2, beta, count)
    # Each product of two slices is exact (integers, every partial sum at most 2**53); the
    # terms below 2**(-count * beta) of the scales are left out.
    groups = []
    for s in range(count):
        pairs = [(i, s - i) for i in range(s + 1)]
        group = np.matmul(a_slices[pairs[0][0]], b_slices[pairs[0][1]])
        for i, j in pairs[1:]:
            group += np.matmul(a_slices[i], b_slices[j])
        groups.append(group)
    total = _combine(groups, beta)
    return np.ldexp(total, a_exp + b_exp - 2 * beta).astype(dtype, copy=False)


def inner_products(a: np.ndarray, b: np.ndarray, *, block: int = 4096) -> np.ndarray:
    """float32 (len(a), len(b)) ``a @ b.T`` of row vectors, ``b`` taken ``block`` rows at a time
    so its float64 slices stay small: the same bits on every machine."""
    a = np.asarray(a)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"expected 2-d arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {a.shape[1]}-d and {b.shape[1]}-d vectors")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    for start in range(0, b.shape[0], block):
        out[:, start : start + block] = matmul(a, np.asarray(b[start : start + block]).T)
    return out


def row_dots(a: np.ndarray, b: np.ndarray, dtype=np.float32, *, block: int = 256) -> np.ndarray:
    """(n,) float32 (or float64) dot products of matching rows, the same bits on every machine
    (and the same bits as the matching entries of ``inner_products``); small blocks keep the
    float64 slices in cache."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two 2-d arrays of one shape, got {a.shape} and {b.shape}")
    beta, count = slice_bits(a.shape[1]), _slices(dtype)
    out = np.empty(a.shape[0], dtype=dtype)
    for start in range(0, a.shape[0], block):
        a_slices, a_exp = _split(a[start : start + block], -1, beta, count)
        b_slices, b_exp = _split(b[start : start + block], -1, beta, count)
        # Products of integers and sums at most 2**53: exact in any order numpy adds them.
        groups = []
        for s in range(count):
            group = (a_slices[0] * b_slices[s]).sum(axis=1)
            for i in range(1, s + 1):
                group += (a_slices[i] * b_slices[s - i]).sum(axis=1)
            groups.append(group)
        total = _combine(groups, beta)
        out[start : start + block] = np.ldexp(total, (a_exp + b_exp)[:, 0] - 2 * beta)
    return out


# The unit roundoffs: a product of depth d in float32 (float64) is within gamma(d) * |a| * |b| of
# the exact one in any summation order, with or without FMA (Higham, Accuracy and Stability, 3.1).
_UNIT_ROUNDOFF = 2.0**-24
_UNIT_ROUNDOFF_64 = 2.0**-53


def float32_error_bound(depth: int, unit: float = _UNIT_ROUNDOFF) -> float:
    """gamma_d: |fl(a . b) - a . b| <= gamma_d * ||a|| * ||b|| for vectors of length d,
    whatever kernel and thread count computed fl (Cauchy-Schwarz on the classical bound)."""
    nu = depth * unit
    return nu / (1.0 - nu)


def norms(x: np.ndarray) -> np.ndarray:
    """Upper bounds of the rows' L2 norms (float64): summed in the rows' own precision, then
    raised by that sum's error bound and the square root's rounding, so they bound the true
    norms whatever order the sum ran in."""
    x = np.asarray(x)
    unit = _UNIT_ROUNDOFF if x.dtype == np.float32 else _UNIT_ROUNDOFF_64
    raise_by = 1 + 2 * float32_error_bound(x.shape[-1], unit) + 4 * unit
    return np.sqrt(np.einsum("ij,ij->i", x, x).astype(np.float64)) * raise_by + 1e-300


def _signs_of_pairs(a: np.ndarray, b: np.ndarray, a_norms, b_norms) -> np.ndarray:
    """Signs (+1, 0, -1) of the exact dot products of matching float32 rows (norm bounds given):
    float64 sums (the products of float32 numbers are exact in float64) where their error bound
    clears zero, the three-slice exact product (to 2**-63 of the scales) for the rest."""
    approx = np.einsum("ij,ij->i", a, b, dtype=np.float64)
    slack = 2 * float32_error_bound(a.shape[1], _UNIT_ROUNDOFF_64) * a_norms * b_norms
    signs = np.sign(approx)
    unsure = np.flatnonzero(np.abs(approx) <= slack)
    if unsure.size:
        signs[unsure] = np.sign(row_dots(a[unsure], b[unsure], np.float64))
    return signs


def positive(a: np.ndarray, b_t: np.ndarray, *, block: int = 4096) -> np.ndarray:
    """Boolean (n, m) ``a @ b_t > 0`` decided by the exact dot product, at BLAS speed.

    A float32 BLAS product whose error bound clears zero has the exact sign; the entries within
    twice the bound of zero (about 0.2% of a 768-d Gaussian projection) are decided again in
    float64, and the few within its bound by the exact product (``_signs_of_pairs``). Each tier
    decides only where it must be right, so every entry gets the sign of the exact product
    (exactly 0 gives False) whichever tier decided it on whichever machine. Rows go ``block``
    at a time, so the bounds and masks stay in cache."""
    b_t = np.asarray(b_t, dtype=np.float32)
    b_rows = np.ascontiguousarray(b_t.T)
    b_norms = norms(b_rows)
    bound = 2 * float32_error_bound(b_t.shape[0]) * float(b_norms.max(initial=0.0))
    out = np.empty((a.shape[0], b_t.shape[1]), dtype=bool)
    for start in range(0, a.shape[0], block):
        part = np.ascontiguousarray(a[start : start + block], dtype=np.float32)
        fast = part @ b_t
        part_norms = norms(part)
        slack = (bound * part_norms).astype(np.float32)[:, None]
        rows, cols = np.nonzero(np.abs(fast) <= slack)
        decided = fast > 0
        if rows.size:
            signs = _signs_of_pairs(part[rows], b_rows[cols], part_norms[rows], b_norms[cols])
            decided[rows, cols] = signs > 0
        out[start : start + len(part)] = decided
    return out
