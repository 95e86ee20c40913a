"""Geometry of an embedding collection and of its binary codes, as plain numbers for a table.

Why: how well a random-projection sign code preserves a ranking depends on the geometry of the
vectors it hashes. SimHash sees angles; if every vector lies in a narrow cone around a shared
mean direction, most hyperplanes cut no pair apart, many bits are nearly constant and the codes
waste their budget. To explain differences between encoders and collections we therefore record,
next to every result, how anisotropic the float vectors are (and along what: the shared mean,
a few "rogue" dimensions, or a few principal axes), how spread out the pairwise angles are, and
how balanced, informative and distinct the resulting bits are.

Everything here streams over row blocks, so it runs on a memory-mapped (n x d) float32 array
with n up to ~1M and d up to ~1024: memory is O(block x d + d x d) and O(pairs x d), never
O(n x d) in float64 and never n x n. No Dagster imports; the asset layer calls these functions.

Pair sampling is shared: with the same ``seed`` and the same ``n``, :func:`embedding_geometry`
and :func:`code_diagnostics` look at the very same pairs, so ``mean_normalised_hamming`` can be
set against ``mean_angle_deg / 180`` (SimHash: E[Hamming / bits] = angle / pi).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from phase2_assets.compute import exact_eigenvalues, exact_products, threads
from phase2_assets.compute.data.storage import release_pages
from phase2_assets.compute.methods import instrument

# Sampled pairs are processed this many at a time, independent of ``block`` so that the pair
# statistics do not depend on the block size at all.
_PAIR_CHUNK = 8192
# Share of the total variance that ``intrinsic_dim_90`` must reach, and the slack that keeps an
# exact tie (e.g. 9 of 10 equal variances) from failing by one ulp of rounding.
_VARIANCE_TARGET = 0.9
_TIE_SLACK = 1e-9
# Rows are cast to float64 this many elements at a time (32 MiB): small enough to stay cheap
# to allocate, large enough for the Gram product to run at full BLAS speed.
_FLOAT64_STEP_ELEMENTS = 1 << 22
# The 3-sigma outlier rule for dimensions (see :func:`outlier_dimensions`).
_OUTLIER_SIGMAS = 3.0


@dataclass(frozen=True, eq=False)
class Moments:
    """First and second moments of the rows of X (n x d), accumulated in float64.

    ``row_sum`` is sum_r x_r (d,), ``gram`` is X^T X (d, d), ``abs_sum`` is sum_r |x_r| (d,).
    The arrays are read-only, so a ``Moments`` can be shared without being changed under you.
    """

    n: int
    row_sum: np.ndarray
    gram: np.ndarray
    abs_sum: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.row_sum.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """mean(x), (d,)."""
        return self.row_sum / self.n

    @property
    def mean_abs(self) -> np.ndarray:
        """E|x_i| per dimension, (d,)."""
        return self.abs_sum / self.n

    @functools.cached_property
    def eigenvalues(self) -> np.ndarray:
        """Of X^T X, descending, tiny negatives clipped (computed once)."""
        eig = exact_eigenvalues.eigenvalues((self.gram + self.gram.T) / 2.0)[::-1]
        return np.clip(eig, 0.0, None)

    @functools.cached_property
    def centred_eigenvalues(self) -> np.ndarray:
        """Of the centred scatter, descending, tiny negatives clipped (computed once)."""
        return np.clip(exact_eigenvalues.eigenvalues(self.scatter)[::-1], 0.0, None)

    @property
    def scatter(self) -> np.ndarray:
        """(X - 1 mean^T)^T (X - 1 mean^T) = X^T X - n mean mean^T, symmetrised, (d, d)."""
        c = self.gram - np.outer(self.row_sum, self.row_sum) / self.n
        return (c + c.T) / 2.0


def _check_matrix(array, what: str) -> None:
    shape = getattr(array, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"{what} must be a 2-d (n x d) array, got shape {shape}")
    if shape[0] < 2:
        raise ValueError(f"{what} needs at least 2 rows to have a geometry, got {shape[0]}")
    if shape[1] < 1:
        raise ValueError(f"{what} must have at least one column, got shape {tuple(shape)}")


def _check_positive(name: str, value: int) -> None:
    if int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")


def moments(vectors: np.ndarray, block: int = 65536) -> Moments:
    """One streaming pass over the rows: n, sum of rows, Gram matrix X^T X, sum of |x| per dim.

    Each block of ``block`` rows is read as stored (a memmap is paged in block by block), then
    cast to float64 a few thousand rows at a time (32 MiB) and folded into the float64
    accumulators: peak memory is one block as stored plus 32 MiB plus the d x d Gram matrix, and
    the cost is dominated by the O(n d^2) Gram product. Raises ValueError for a non-2-d input,
    fewer than 2 rows, or a non-finite value (naming the first such row).
    """
    if not hasattr(vectors, "shape"):
        vectors = np.asarray(vectors)
    _check_matrix(vectors, "vectors")
    _check_positive("block", block)
    n, d = (int(s) for s in vectors.shape)
    row_sum = np.zeros(d, dtype=np.float64)
    abs_sum = np.zeros(d, dtype=np.float64)
    gram = np.zeros((d, d), dtype=np.float64)
    step = max(1, min(block, _FLOAT64_STEP_ELEMENTS // d))
    for start in range(0, n, block):
        read = np.asarray(vectors[start : start + block])
        for offset in range(0, len(read), step):
            chunk = np.asarray(read[offset : offset + step], dtype=np.float64)
            finite = np.isfinite(chunk).all(axis=1)
            if not finite.all():
                row = start + offset + int(np.flatnonzero(~finite)[0])
                raise ValueError(f"vectors has a non-finite value (NaN or inf) in row {row}")
            row_sum += chunk.sum(axis=0)
            abs_sum += np.abs(chunk).sum(axis=0)
            gram += exact_products.matmul(chunk.T, chunk, np.float64)
        release_pages(vectors)
    for array in (row_sum, gram, abs_sum):
        array.setflags(write=False)
    return Moments(n=n, row_sum=row_sum, gram=gram, abs_sum=abs_sum)


def _eigenvalues(m: Moments, centred: bool) -> np.ndarray:
    """Eigenvalues of X^T X (or of the centred scatter), descending, tiny negatives clipped;
    the same bits on every CPU (``exact_eigenvalues``: LAPACK's follow the BLAS kernel)."""
    return (m.centred_eigenvalues if centred else m.eigenvalues).copy()


def singular_values(m: Moments, centred: bool) -> np.ndarray:
    """The d singular values of X (or of X - mean when ``centred``), descending.

    Exact, not estimated: the singular values of X are the square roots of the eigenvalues of
    X^T X (X = U S V^T gives X^T X = V S^2 V^T), and X - 1 mean^T has X^T X - n mean mean^T in
    the same role. Both d x d matrices come out of the single streaming pass of :func:`moments`
    and are diagonalised in float64 by ``exact_eigenvalues`` (Householder tridiagonalisation and
    bisection, backward stable as ``numpy.linalg.eigvalsh``, the same bits on every CPU) in
    O(d^3): seconds for d <= 1024 (3 s at 768 on 2 cores), so neither a randomised SVD nor a
    second pass over the data is needed, and the result does not depend on a sketch size or seed.

    Forming X^T X squares the condition number: each eigenvalue carries an absolute error of
    about d * eps64 * sigma_1^2, so singular values below ~sqrt(d * eps64) * sigma_1 (around
    1e-7 * sigma_1 for d = 1024) are rounding noise. That is far below anything the ratios in
    :func:`embedding_geometry` look at; the few slightly negative eigenvalues this noise can
    produce are clipped to 0 before the square root. When n < d the trailing d - n values are 0.
    """
    return np.sqrt(_eigenvalues(m, centred))


def _noise_floor(sv: np.ndarray) -> float:
    """Singular values at or below this are indistinguishable from 0 (see singular_values)."""
    return 10.0 * float(sv[0]) * float(np.sqrt(len(sv) * np.finfo(np.float64).eps))


def _anisotropy(sv: np.ndarray) -> float:
    """sigma_1 / median sigma; inf if the median is numerically 0, nan if all of them are."""
    top, median = float(sv[0]), float(np.median(sv))
    if top == 0.0:
        return float("nan")
    if median <= _noise_floor(sv):
        return float("inf")
    return top / median


def outlier_dimensions(m: Moments) -> np.ndarray:
    """Indices of the outlier ("rogue") dimensions, ascending.

    A dimension i is an outlier when its mean absolute activation E|x_i| exceeds
    mean_j E|x_j| + 3 * std_j E|x_j| (population std over the d dimensions): the 3-sigma rule
    that Kovaleva et al. (2021, "BERT Busters: Outlier Dimensions that Disrupt Transformers")
    and Puccetti et al. (2022, "Outlier Dimensions that Disrupt Transformers are Driven by
    Frequency") use to call a dimension an outlier. The rule is relative, so it flags the
    largest of d values that differ only by sampling noise about 0.13% of the time per
    dimension; if every E|x_j| is equal up to rounding (std <= 1e-12 * mean) there is none.
    """
    mean_abs = m.mean_abs
    centre, spread = float(mean_abs.mean()), float(mean_abs.std())
    if spread <= 1e-12 * abs(centre):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(mean_abs > centre + _OUTLIER_SIGMAS * spread).astype(np.int64)


def cosine_shares(m: Moments) -> np.ndarray:
    """Share of the expected cosine similarity contributed by each dimension, (d,).

    Following Timkey & van Schijndel (2021, "All Bark and No Bite: Rogue Dimensions in
    Transformer Language Models Obscure Representational Quality"): for unit vectors x, y drawn
    independently from the collection, E[cos(x, y)] = E[x . y] = sum_i E[x_i] E[y_i] =
    sum_i mu_i^2 with mu the mean vector, so dimension i contributes mu_i^2 and its share is
    mu_i^2 / sum_j mu_j^2. We plug in the sample mean, which overstates each mu_i^2 by
    Var(x_i) / n (negligible at the collection sizes here), instead of averaging over sampled
    pairs as the paper does; the shares sum to 1. All zeros when the mean vector is 0.
    The vectors are taken as given: this is a share of the expected cosine only for unit rows.
    """
    sq = m.mean**2
    total = float(sq.sum())
    if total == 0.0:
        return np.zeros_like(sq)
    return sq / total


def intrinsic_dim(m: Moments, target: float = _VARIANCE_TARGET) -> int:
    """Smallest k whose top-k centred variances hold >= ``target`` of the total (0 if none)."""
    eig = _eigenvalues(m, centred=True)
    total = float(eig.sum())
    if total == 0.0:
        return 0
    held = np.cumsum(eig) / total
    return int(np.searchsorted(held, target - _TIE_SLACK, side="left")) + 1


def _sample_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` index pairs drawn with replacement from ``default_rng(seed)``, i == j dropped."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, size=size)
    b = rng.integers(0, n, size=size)
    keep = a != b
    return a[keep], b[keep]


def _gather(array: np.ndarray, a: np.ndarray, b: np.ndarray, dtype) -> tuple:
    """Rows a and b of ``array``, reading each needed row once and in order (memmap friendly)."""
    rows, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    values = np.asarray(array[rows], dtype=dtype)
    return values[inverse[: len(a)]], values[inverse[len(a) :]]


def _pair_cosines(vectors: np.ndarray, pair_sample: int, seed: int) -> np.ndarray:
    """Cosines of the sampled pairs in float64, rows renormalised; zero-norm rows are skipped."""
    a, b = _sample_pairs(len(vectors), pair_sample, seed)
    out = []
    for start in range(0, len(a), _PAIR_CHUNK):
        va, vb = _gather(
            vectors, a[start : start + _PAIR_CHUNK], b[start : start + _PAIR_CHUNK], np.float64
        )
        dots = exact_products.row_dots(va, vb, dtype=np.float64)
        norms = np.sqrt(exact_products.row_dots(va, va, dtype=np.float64))
        norms *= np.sqrt(exact_products.row_dots(vb, vb, dtype=np.float64))
        ok = norms > 0
        out.append(dots[ok] / norms[ok])
    cos = np.concatenate(out) if out else np.zeros(0)
    return np.clip(cos, -1.0, 1.0)


def embedding_geometry(
    vectors: np.ndarray, *, pair_sample: int = 20000, seed: int = 0, block: int = 65536
) -> dict:
    """Anisotropy, outlier dimensions, intrinsic dimension and pairwise angles of the rows.

    One streaming pass (:func:`moments`) plus ``pair_sample`` random rows read twice. Keys:

    - ``n_vectors``, ``dim``.
    - ``anisotropy_uncentred`` / ``anisotropy_centred``: sigma_1 / median(sigma) over the d
      singular values of X / of X - mean (:func:`singular_values`). The uncentred ratio is
      dominated by the common mean direction (the "cone": sigma_1^2 ~ n ||mean||^2 when every
      vector leans the same way); the centred one removes the mean and measures how unevenly
      the variance spreads over the principal axes (1 for isotropic data). inf when more than
      half of the singular values are numerically 0 (rank below d / 2), nan when all are.
    - ``mean_norm_of_mean_vector``: ||mean(x)||; for unit rows its square is the expected
      cosine of two independent rows.
    - ``outlier_dims`` / ``outlier_fraction``: count and share of the d dimensions flagged by
      the 3-sigma rule on E|x_i| (:func:`outlier_dimensions`, Kovaleva et al. 2021; Puccetti
      et al. 2022).
    - ``top_dim_cosine_share``: largest share of the expected cosine contributed by a single
      dimension, mu_i^2 / sum_j mu_j^2 (:func:`cosine_shares`, Timkey & van Schijndel 2021).
    - ``intrinsic_dim_90``: smallest k whose top-k centred variances hold >= 90% of the total.
    - On sampled pairs (i != j; :func:`_sample_pairs`): ``mean_pairwise_cosine``,
      ``std_pairwise_cosine`` (cosines in float64 of renormalised rows), ``mean_angle_deg``,
      ``angular_spread_deg`` (std of the angles in degrees) and ``n_pairs``. A pair with a
      zero row has no angle and is left out; the four statistics are nan if no pair is left.
    """
    _check_positive("pair_sample", pair_sample)
    with threads.single_thread():  # float64 sums and eigenvalues: thread-dependent otherwise
        m = moments(vectors, block=block)
        sv_uncentred = singular_values(m, centred=False)
        sv_centred = singular_values(m, centred=True)
    outliers = outlier_dimensions(m)
    cos = _pair_cosines(vectors, pair_sample, seed)
    angles = np.degrees(np.arccos(cos))
    empty = len(cos) == 0
    nan = float("nan")
    return {
        "n_vectors": m.n,
        "dim": m.dim,
        "anisotropy_uncentred": _anisotropy(sv_uncentred),
        "anisotropy_centred": _anisotropy(sv_centred),
        "mean_norm_of_mean_vector": float(
            np.sqrt(exact_products.row_dots(m.mean[None, :], m.mean[None, :], np.float64)[0])
        ),
        "outlier_dims": int(len(outliers)),
        "outlier_fraction": len(outliers) / m.dim,
        "top_dim_cosine_share": float(cosine_shares(m).max()),
        "intrinsic_dim_90": intrinsic_dim(m),
        "mean_pairwise_cosine": nan if empty else float(cos.mean()),
        "std_pairwise_cosine": nan if empty else float(cos.std()),
        "mean_angle_deg": nan if empty else float(angles.mean()),
        "angular_spread_deg": nan if empty else float(angles.std()),
        "n_pairs": int(len(cos)),
    }


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in bits, with 0 log 0 = 0: 1 for a balanced bit, 0 for a constant one."""
    p = np.asarray(p, dtype=np.float64)
    h = np.zeros_like(p)
    inner = (p > 0) & (p < 1)
    q = p[inner]
    h[inner] = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return h


def code_diagnostics(
    codes: np.ndarray, bits: int, *, pair_sample: int = 20000, seed: int = 0, block: int = 65536
) -> dict:
    """Balance, entropy, distinctness and Hamming spread of packed uint8 codes.

    ``codes`` is (n, ceil(bits / 8)) uint8 in the layout of :mod:`instrument` (bit j in byte
    j // 8 at position j % 8, least significant first); padding bits past ``bits`` are ignored.
    Keys:

    - ``bits``.
    - ``mean_bit_balance_deviation`` / ``max_bit_balance_deviation``: mean and max over bits of
      |p_ones - 0.5| (0 balanced, 0.5 constant).
    - ``mean_bit_entropy`` / ``min_bit_entropy``: binary entropy in bits of each bit's p_ones
      (1 balanced, 0 constant), averaged / minimum over bits. A bit's entropy bounds what it
      can tell two vectors apart with; it says nothing about redundancy between bits.
    - ``duplicate_code_fraction``: share of rows whose code equals another row's (rows A, A, B
      give 2/3): such rows are tied at distance 0 and cannot be ranked against each other.
    - On sampled pairs (same sampler and pairs as :func:`embedding_geometry` for equal seed and
      n): ``mean_normalised_hamming`` (mean of Hamming / bits; nan without pairs), ``n_pairs``
      and ``hamming_histogram``, a list of bits + 1 int counts indexed by Hamming distance.

    The bit counts stream over ``block`` rows; the duplicate count needs one in-memory copy of
    the codes (a sort of the rows, via ``numpy.unique``), no more.
    """
    if not hasattr(codes, "shape"):
        codes = np.asarray(codes)
    _check_matrix(codes, "codes")
    _check_positive("bits", bits)
    _check_positive("pair_sample", pair_sample)
    _check_positive("block", block)
    if codes.dtype != np.uint8:
        raise ValueError(f"codes must be packed uint8, got dtype {codes.dtype}")
    width = (bits + 7) // 8
    if codes.shape[1] != width:
        raise ValueError(
            f"{bits}-bit codes take {width} bytes per row, but codes has {codes.shape[1]}"
        )
    n = int(codes.shape[0])

    ones = np.zeros(bits, dtype=np.int64)
    for start in range(0, n, block):
        chunk = np.asarray(codes[start : start + block])
        ones += instrument.unpack(chunk, bits).sum(axis=0, dtype=np.int64)
    p_ones = ones / n
    deviation = np.abs(p_ones - 0.5)
    entropy = _binary_entropy(p_ones)

    rows = np.ascontiguousarray(codes).view(np.dtype((np.void, width))).ravel()
    _, counts = np.unique(rows, return_counts=True)
    duplicated = int(counts[counts > 1].sum())

    a, b = _sample_pairs(n, pair_sample, seed)
    histogram = np.zeros(bits + 1, dtype=np.int64)
    for start in range(0, len(a), _PAIR_CHUNK):
        ca, cb = _gather(
            codes, a[start : start + _PAIR_CHUNK], b[start : start + _PAIR_CHUNK], np.uint8
        )
        distance = instrument.unpack(ca ^ cb, bits).sum(axis=1, dtype=np.int64)
        histogram += np.bincount(distance, minlength=bits + 1)
    n_pairs = int(histogram.sum())
    mean_hamming = float(histogram @ np.arange(bits + 1)) / (n_pairs * bits) if n_pairs else None

    return {
        "bits": int(bits),
        "mean_bit_balance_deviation": float(deviation.mean()),
        "max_bit_balance_deviation": float(deviation.max()),
        "mean_bit_entropy": float(entropy.mean()),
        "min_bit_entropy": float(entropy.min()),
        "mean_normalised_hamming": float("nan") if mean_hamming is None else mean_hamming,
        "duplicate_code_fraction": duplicated / n,
        "n_pairs": n_pairs,
        "hamming_histogram": [int(c) for c in histogram],
    }
