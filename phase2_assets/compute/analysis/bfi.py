"""The Binary Friendliness Index (X1): one number per (dataset, model) for how well binary codes
serve that embedding, from a formula short enough to quote and to recompute by hand.

Definition (parameters from the study config's ``bfi`` section, ``BFIFormula`` here):

- R = mean over b in recall_bits of binary recall_at_10 at b (in [0, 1]).
- Q = mean over b in recall_bits of min(1, binary recall_at_10(b) / pq recall_at_10(b)) — the
  iso-memory ratio, capped at 1; bits where the PQ row is missing are skipped; if none, Q is NaN
  and the BFI uses R only (weights renormalised) with a note.
- P = anisotropy_penalty * max(0, log10(anisotropy_centred / anisotropy_reference)) if a geometry
  row is given, else 0.
- BFI = clip((w_recall * R + w_ratio * Q) / (w_recall + w_ratio) - P, 0, 1).

Edge conventions: a pair without a binary row at every b in recall_bits gets no BFI (it is left
out); a PQ recall of 0 counts as a ratio of 1 (binary cannot do worse than nothing); with Q NaN
and w_recall = 0 the BFI is NaN. Every departure from the plain formula is written in ``note``.

Whether the index is worth having is read from ``bfi_summary``: the plan (X1) hopes for a spread
of at least 0.3 across pairs, still finds 0.1–0.3 useful and calls under 0.05 a negative result;
and an index whose ranking merely repeats recall@10 at 256 bits adds nothing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from phase2_assets.compute.analysis import predictors

KEYS = ["dataset", "model"]
WIDE, MILD, COLLAPSED = 0.3, 0.1, 0.05  # spread bands from the study plan (X1)
_EPS = 1e-12  # so that a spread of 0.7 - 0.4 = 0.29999999999999993 is banded as 0.3

SCHEMA = {
    "dataset": pl.String,
    "model": pl.String,
    "bfi": pl.Float64,
    "recall_component": pl.Float64,
    "ratio_component": pl.Float64,
    "anisotropy_penalty_value": pl.Float64,
    "recall_at_10_256": pl.Float64,
    "note": pl.String,
}


@dataclass(frozen=True)
class BFIFormula:
    recall_bits: tuple[int, ...] = (256, 512)
    w_recall: float = 0.5
    w_ratio: float = 0.5
    anisotropy_penalty: float = 0.0
    anisotropy_reference: float = 10.0

    def text(self) -> str:
        """The formula with this study's numbers, as the UI, the report and the memo print it."""
        bits = "/".join(map(str, self.recall_bits))
        w, v = self.w_recall, self.w_ratio
        return (
            f"BFI = clip(({w}·R + {v}·Q)/({w}+{v}) − P, 0, 1); R = mean binary recall_at_10 at "
            f"{bits} bits; Q = mean min(1, binary/PQ recall_at_10) at those bits; P = "
            f"{self.anisotropy_penalty}·max(0, log10(anisotropy_centred/"
            f"{self.anisotropy_reference}))"
        )

    def __post_init__(self) -> None:
        # A config hands over a list; store a tuple so the formula stays hashable.
        object.__setattr__(self, "recall_bits", tuple(int(b) for b in self.recall_bits))
        if not self.recall_bits:
            raise ValueError("recall_bits is empty")
        if self.w_recall < 0 or self.w_ratio < 0 or self.w_recall + self.w_ratio <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        if self.anisotropy_penalty < 0 or self.anisotropy_reference <= 0:
            raise ValueError("anisotropy_penalty must be >= 0 and anisotropy_reference > 0")


# ---- lookups -------------------------------------------------------------------------------------


def _recalls(results: pl.DataFrame, method: str) -> dict[tuple[str, str, int], float]:
    """(dataset, model, bits) -> recall_at_10 for one method; null/NaN recalls count as missing."""
    rows = results.filter(pl.col("method") == method).select(
        *KEYS, pl.col("bits").cast(pl.Int64), pl.col("recall_at_10").cast(pl.Float64)
    )
    if rows.select(*KEYS, "bits").is_duplicated().any():
        raise ValueError(f"results have more than one {method} row per (dataset, model, bits)")
    return {(d, m, b): r for d, m, b, r in rows.iter_rows() if r is not None and not math.isnan(r)}


def _anisotropy(geometry: pl.DataFrame | None) -> dict[tuple[str, str], float]:
    if geometry is None:
        return {}
    rows = geometry.select(*KEYS, pl.col("anisotropy_centred").cast(pl.Float64))
    return {(d, m): a for d, m, a in rows.iter_rows() if a is not None and not math.isnan(a)}


# ---- the formula ---------------------------------------------------------------------------------


def _ratio(binary: float, pq: float) -> float:
    return 1.0 if pq <= 0 else min(1.0, binary / pq)


def penalty(formula: BFIFormula, anisotropy_centred: float | None) -> float:
    """P: zero without a geometry value, and zero at or below the reference anisotropy."""
    if anisotropy_centred is None or anisotropy_centred <= formula.anisotropy_reference:
        return 0.0
    return formula.anisotropy_penalty * math.log10(
        anisotropy_centred / formula.anisotropy_reference
    )


def _combine(formula: BFIFormula, r: float, q: float) -> float:
    if math.isnan(q):
        return r if formula.w_recall > 0 else math.nan
    weights = formula.w_recall + formula.w_ratio
    return (formula.w_recall * r + formula.w_ratio * q) / weights


def _bits_list(bits: list[int]) -> str:
    return ", ".join(str(b) for b in bits)


def _ratio_component(
    key: tuple[str, str],
    bits: tuple[int, ...],
    binary: dict[tuple[str, str, int], float],
    pq: dict[tuple[str, str, int], float],
) -> tuple[float, list[str]]:
    """Q over the bits that have a PQ row, and a note for the bits that do not."""
    with_pq = [b for b in bits if (*key, b) in pq]
    if not with_pq:
        return math.nan, [
            f"no PQ row at bits {_bits_list(bits)}: BFI from R only (weights renormalised)"
        ]
    q = float(np.mean([_ratio(binary[(*key, b)], pq[(*key, b)]) for b in with_pq]))
    missing = [b for b in bits if b not in with_pq]
    if missing:
        return q, [f"no PQ row at bits {_bits_list(missing)}: Q from {_bits_list(with_pq)} only"]
    return q, []


def _pair_row(
    key: tuple[str, str],
    formula: BFIFormula,
    binary: dict[tuple[str, str, int], float],
    pq: dict[tuple[str, str, int], float],
    anisotropy: dict[tuple[str, str], float],
    geometry_given: bool,
) -> dict | None:
    bits = formula.recall_bits
    if any((*key, b) not in binary for b in bits):
        return None
    r = float(np.mean([binary[(*key, b)] for b in bits]))
    q, notes = _ratio_component(key, bits, binary, pq)
    if formula.anisotropy_penalty > 0 and key not in anisotropy:
        where = "for this pair" if geometry_given else "given"
        notes.append(f"no geometry {where}: no anisotropy penalty")
    p = penalty(formula, anisotropy.get(key))
    raw = _combine(formula, r, q) - p
    bfi = min(1.0, max(0.0, raw)) if not math.isnan(raw) else math.nan
    if math.isnan(raw):
        notes.append("w_recall = 0 and no PQ rows: BFI undefined")
    elif bfi != raw:
        notes.append(f"clipped from {raw:.4g} to {bfi:g}")
    return {
        "dataset": key[0],
        "model": key[1],
        "bfi": bfi,
        "recall_component": r,
        "ratio_component": q,
        "anisotropy_penalty_value": p,
        "recall_at_10_256": binary.get((*key, 256), math.nan),
        "note": "; ".join(notes),
    }


def compute_bfi(
    results: pl.DataFrame, formula: BFIFormula, geometry: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per (dataset, model) with a binary row at every ``recall_bits``; others left out."""
    binary = _recalls(results, "binary")
    pq = _recalls(results, "pq")
    anisotropy = _anisotropy(geometry)
    pairs = sorted({(d, m) for d, m, _ in binary})
    rows = [_pair_row(k, formula, binary, pq, anisotropy, geometry is not None) for k in pairs]
    return pl.DataFrame([r for r in rows if r is not None], schema=SCHEMA)


# ---- is the index worth having? ------------------------------------------------------------------


def _band(spread: float) -> str:
    if math.isnan(spread):
        return "undefined"
    if spread >= WIDE - _EPS:
        return "wide"
    if spread >= MILD - _EPS:
        return "mild"
    if spread < COLLAPSED - _EPS:
        return "collapsed"
    return "narrow"


def _never_discordant(a: np.ndarray, b: np.ndarray) -> bool:
    """No two pairs ordered one way by ``a`` and the other way by ``b`` (ties in either allowed)."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    return bool(np.all(da * db >= 0))


def bfi_summary(bfi: pl.DataFrame) -> dict:
    """Spread, std (ddof = 1), band, and how far the BFI merely repeats recall@10 at 256 bits.

    Pairs with a NaN BFI are ignored; the comparisons with recall also ignore pairs without a
    256-bit recall. ``monotonic_with_recall_256`` is vacuously true with fewer than two pairs.
    """
    values = bfi["bfi"].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
    n = len(values)
    spread = float(values.max() - values.min()) if n >= 1 else math.nan
    both = bfi.select(
        pl.col("bfi").cast(pl.Float64).fill_nan(None),
        pl.col("recall_at_10_256").cast(pl.Float64).fill_nan(None),
    ).drop_nulls()
    a, b = both["bfi"].to_numpy(), both["recall_at_10_256"].to_numpy()
    rho = math.nan
    if len(a) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = predictors.spearman(a, b)[0]  # NaN when either side is constant
    return {
        "n_pairs": n,
        "spread": spread,
        "std": float(np.std(values, ddof=1)) if n >= 2 else math.nan,
        "spearman_vs_recall_256": rho,
        "monotonic_with_recall_256": _never_discordant(a, b),
        "band": _band(spread),
    }
