"""Asymmetric scoring: the corpus keeps the instrument's sign codes, the query stays real-valued.

Why: binarising the query throws away information that costs nothing to keep, since the query is
encoded once per search and never stored. Scoring the projected query against each document's
sign code, score(q, x) = (R q) · s(x) with s(x) in {-1, +1}^bits, keeps the magnitudes of the
query's projections, so hyperplanes the query lies close to (whose bits are unreliable) weigh
little. The memory is exactly the instrument's: the index *is* the ``binary`` method's codes (same
seed, same bits), and only the search differs. This is the asymmetric distance of Gordo, Perronnin,
Gong & Lazebnik, "Asymmetric distances for binary embeddings", TPAMI 2014 (also Dong, Charikar &
Li, "Asymmetric distance estimation with sketches for similarity search in high-dimensional
spaces", SIGIR 2008); PQ's ADC (Jégou et al., TPAMI 2011) is the same idea for codebooks.

Exact ties: scores are computed in exact integer arithmetic. Each query's projections are put on
an integer grid (scaled so the largest magnitude is 2^30, a finer step than float32 resolves at
that magnitude) and multiplied with the ±1 codes in float64, where every partial sum is an integer
below 2^53. So documents with identical codes get bit-identical scores whatever the BLAS or the
block sizes, and ties break by lower corpus row, as for every other method of the study.

Search streams query blocks x corpus blocks at float32 BLAS speed: a corpus block of codes is
unpacked to ±1 and one float32 matrix product with the projected queries screens it; only the
documents whose screened score is within its error bound (the product's rounding and the grid's)
of each query's k-th are scored exactly on the grid, after the scan
(``exact_search.screened_topk``). No (queries x corpus) matrix is materialised.
"""

from __future__ import annotations

import numpy as np

from phase2_assets.compute import exact_products
from phase2_assets.compute.methods import instrument
from phase2_assets.compute.methods.base import Settings, register
from phase2_assets.compute.methods.binary import Binary
from phase2_assets.compute.search.exact_search import screened_topk

GRID_BITS = 30  # largest |R q| of a query maps to 2^30; bits * 2^30 < 2^53 keeps sums exact


def project_queries(queries: np.ndarray, bits: int, seed: int) -> np.ndarray:
    """(nq, bits) float32 R q: the values whose signs would be the query's instrument code."""
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim != 2:
        raise ValueError(f"expected a 2-d array of queries, got shape {q.shape}")
    return exact_products.matmul(q, instrument.projection_matrix(q.shape[1], bits, seed).T)


def _on_grid(projected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer-valued float64 copy of each row and the per-row scale back to the original units."""
    peak = np.abs(projected).max(axis=1).astype(np.float64)
    scale = np.where(peak > 0, peak / 2.0**GRID_BITS, 1.0)
    return np.rint(projected / scale[:, None]), scale


def signs(codes: np.ndarray, bits: int, dtype=np.float64) -> np.ndarray:
    """(n, bits) ±1 from packed codes: bit 1 -> +1, bit 0 -> -1."""
    return instrument.unpack(np.asarray(codes), bits).astype(dtype) * 2 - 1


def asym_topk(
    codes: np.ndarray, queries: np.ndarray, k: int, bits: int, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64, scores float64), each (nq, min(k, n)): top-k of (R q) · s(x), ties by row."""
    n = codes.shape[0]
    if n == 0:
        raise ValueError("empty corpus: nothing to search")
    if codes.ndim != 2 or codes.shape[1] != bits // 8:
        raise ValueError(f"codes of shape {codes.shape} are not {bits}-bit instrument codes")
    if bits * 2.0**GRID_BITS >= 2.0**53:
        raise ValueError(f"{bits} bits is too many for exact scores")
    k = min(k, n)
    projected = np.concatenate(
        [
            project_queries(queries[qs : qs + settings.query_block], bits, settings.projection_seed)
            for qs in range(0, queries.shape[0], settings.query_block)
        ]
    )
    grid, scale = _on_grid(projected)
    # The float32 screen p·s is within |fl(p·s) - p·s| <= bound·|p|·|s| of p·s, and p·s within
    # bits·scale/2 of the grid score (each entry rounded by at most half a step).
    bound = exact_products.float32_error_bound(bits)
    slack = 3 * (bound * exact_products.norms(projected) * np.sqrt(bits) + bits * scale / 2)
    block = settings.corpus_block

    def on_grid(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The pairs' grid scores in the queries' units: integer sums below 2^53 (exact in any
        order), times the query's scale (one rounding, monotone: ties stay ties)."""
        picked = np.empty(len(rows), dtype=np.float64)
        for a in range(0, len(rows), block):
            r, i = rows[a : a + block], ids[a : a + block]
            picked[a : a + block] = np.einsum("ij,ij->i", grid[r], signs(codes[i], bits))
        return picked * scale[rows]

    blocks = ((cs, signs(codes[cs : cs + block], bits, np.float32)) for cs in range(0, n, block))
    best_s, best_i = screened_topk(
        projected, blocks, k, slack, on_grid, query_block=settings.query_block
    )
    return best_i, best_s


@register
class BinaryAsym(Binary):
    """Same index and memory as ``binary`` (the instrument's codes); only the scoring differs."""

    name = "binary_asym"
    budget = "bits"
    in_plan = False  # beyond the plan, though it shares the instrument's codes
    description = (
        "The instrument's codes scored asymmetrically: real projected query (R q) against the "
        "documents' ±1 sign codes, exact top-k."
    )
    peer = "asymmetric (float query) scoring of the codes"
    also_counted = "projection 4·b·d"

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return asym_topk(index, queries, k, bits, settings)[0]
