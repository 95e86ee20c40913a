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

Search streams query blocks x corpus blocks: a corpus block of codes is unpacked to ±1, one
matrix product gives the (query block x corpus block) scores, and a running merge keeps the best
k per query (``exact_search.block_topk`` / ``merge_topk``).
"""

from __future__ import annotations

import numpy as np

from phase2_assets.compute import exact_products
from phase2_assets.compute.methods import instrument
from phase2_assets.compute.methods.base import Settings, register
from phase2_assets.compute.methods.binary import Binary
from phase2_assets.compute.search.exact_search import block_topk, merge_topk

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


def signs(codes: np.ndarray, bits: int) -> np.ndarray:
    """(n, bits) float64 ±1 from packed codes: bit 1 -> +1, bit 0 -> -1."""
    return instrument.unpack(np.asarray(codes), bits).astype(np.float64) * 2.0 - 1.0


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
    nq = queries.shape[0]
    out_i = np.empty((nq, k), dtype=np.int64)
    out_s = np.empty((nq, k), dtype=np.float64)
    for qs in range(0, nq, settings.query_block):
        projected = project_queries(
            queries[qs : qs + settings.query_block], bits, settings.projection_seed
        )
        grid, scale = _on_grid(projected)
        best_s = best_i = None
        for cs in range(0, n, settings.corpus_block):
            s, i = block_topk(grid @ signs(codes[cs : cs + settings.corpus_block], bits).T, cs, k)
            if best_s is not None:
                s = np.concatenate([best_s, s], axis=1)
                i = np.concatenate([best_i, i], axis=1)
            best_s, best_i = merge_topk(s, i, k)
        out_i[qs : qs + len(grid)] = best_i
        out_s[qs : qs + len(grid)] = best_s * scale[:, None]
    return out_i, out_s


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
