"""Kill-switches F1–F3, K1–K3 and the GREEN / YELLOW / RED verdict, computed from the result tables.

The plan's rules are written down once, here, as functions of the tables; nothing about the
outcome is typed by hand. Each switch reports whether it could be evaluated at all (a switch on
an empty table has not "passed"), whether it fired, the rule in words and the numbers behind it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field

import polars as pl

from phase2_assets.compute.analysis import scale


@dataclass(frozen=True)
class Switch:
    name: str
    rule: str
    blocks: str  # the work a fired switch stops
    evaluated: bool
    fired: bool
    numbers: dict = field(default_factory=dict)
    why_not: str = ""  # why it could not be evaluated (empty when it was)

    @property
    def state(self) -> str:
        if not self.evaluated:
            return "not evaluated"
        return "FIRED" if self.fired else "clear"

    def to_dict(self) -> dict:
        return {**asdict(self), "state": self.state}


RESULT_KEYS = ("dataset", "model", "method", "bits", "recall_at_10")
# What F3/K3 read: recall_at_10 minus its mean at the same bit length, predicted from geometry
# alone. With bits among the features any model "predicts" recall, which says nothing about
# geometry; older regression tables without this target fall back to recall_at_10.
GEOMETRY_TARGET = "recall_at_10_within_bits"
REGRESSION_KEYS = ("target", "status", "n_points", "loocv_r2", "spearman_rho")


def _usable(table: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """The table, or an empty one with the needed columns when nothing has been computed yet."""
    if table.height and all(c in table.columns for c in columns):
        return table
    return pl.DataFrame(schema={c: pl.Float64 for c in columns}).with_columns(
        [
            pl.col(c).cast(pl.String)
            for c in columns
            if c in ("dataset", "model", "method", "target", "status")
        ]
    )


def binary_vs_pq(results: pl.DataFrame) -> pl.DataFrame:
    """(dataset, model, bits, binary recall@10, pq recall@10, ratio) at matched bytes."""
    results = _usable(results, RESULT_KEYS)
    binary = results.filter(pl.col("method") == "binary").select(
        "dataset", "model", "bits", pl.col("recall_at_10").alias("binary_recall_at_10")
    )
    pq = results.filter(pl.col("method") == "pq").select(
        "dataset", "model", "bits", pl.col("recall_at_10").alias("pq_recall_at_10")
    )
    return (
        binary.join(pq, on=["dataset", "model", "bits"], how="inner")
        .with_columns(ratio=pl.col("binary_recall_at_10") / pl.col("pq_recall_at_10"))
        .sort("dataset", "model", "bits")
    )


def f1_binary_collapse(results: pl.DataFrame, threshold: float, bits: int = 512) -> Switch:
    rows = _usable(results, RESULT_KEYS).filter(
        (pl.col("method") == "binary") & (pl.col("bits") == bits)
    )
    best = float(rows["recall_at_10"].max()) if rows.height else math.nan
    return Switch(
        name="F1",
        rule=f"binary recall_at_10 at {bits} bits < {threshold} on every dataset x model",
        blocks="Tier-2 expansion (tiers after the first)",
        evaluated=rows.height > 0,
        fired=rows.height > 0 and best < threshold,
        numbers={"pairs": rows.height, "best_recall_at_10": best, "threshold": threshold},
        why_not="" if rows.height else f"no binary row at {bits} bits yet",
    )


def pq_skipped_note(skipped: pl.DataFrame | None, limit: int = 3) -> str:
    """The PQ rows of the skipped-rows table (``evaluation.SKIPPED_COLUMNS``) in words, or "":
    "PQ was skipped at 4 benchmarks (tiny × tiny-bert at 8, 16, 32, 64 bits: <reason>)"."""
    if skipped is None or skipped.height == 0 or "method" not in skipped.columns:
        return ""
    rows = skipped.filter(pl.col("method") == "pq").sort("dataset", "model", "bits")
    if rows.height == 0:
        return ""
    groups = []
    for (dataset, model, reason), group in rows.group_by(
        ["dataset", "model", "reason"], maintain_order=True
    ):
        bits = ", ".join(str(b) for b in group["bits"].to_list())
        groups.append(f"{dataset} × {model} at {bits} bits: {reason}")
    more = f"; and {len(groups) - limit} more" if len(groups) > limit else ""
    n = rows.height
    return (
        f"PQ was skipped at {n} benchmark{'s' if n != 1 else ''} "
        f"({'; '.join(groups[:limit])}{more})"
    )


def f2_pq_dominance(
    results: pl.DataFrame, threshold: float, skipped: pl.DataFrame | None = None
) -> Switch:
    """F2; ``skipped``, the skipped-rows table, says why PQ rows are absent when they are."""
    pairs = binary_vs_pq(results)
    best = float(pairs["ratio"].max()) if pairs.height else math.nan
    note = pq_skipped_note(skipped)
    why_not = ""
    if not pairs.height:
        why_not = "no binary and PQ rows at the same bytes" + (f": {note}" if note else " yet")
    numbers = {"benchmarks": pairs.height, "best_ratio": best, "threshold": threshold}
    if note:
        numbers["pq_rows_skipped"] = int((skipped["method"] == "pq").sum())
    return Switch(
        name="F2",
        rule=f"binary recall_at_10 < {threshold} x PQ recall_at_10 at matched memory on every "
        "benchmark (dataset x model x bits)",
        blocks="Tier-2 expansion (tiers after the first)",
        evaluated=pairs.height > 0,
        fired=pairs.height > 0 and best < threshold,
        numbers=numbers,
        why_not=why_not,
    )


def _best_fit(regression: pl.DataFrame, target: str) -> tuple[bool, float, float, int]:
    """(evaluable, best R², best ρ, n) over the fitted models: the most favourable reading.

    ρ is the Spearman correlation of leave-one-out predictions with the measured values. It is
    taken signed: predictions that are anti-correlated with the truth (common for LOOCV on pure
    noise, where leaving a point out shifts the fitted mean away from it) are no predictive
    power, so the plan's |ρ| test is applied to max(ρ, 0).
    """
    regression = _usable(regression, REGRESSION_KEYS)
    rows = regression.filter(
        (pl.col("target") == target) & pl.col("status").str.starts_with("fitted")
    )
    if rows.height == 0:
        n = int(regression["n_points"].max()) if regression.height else 0
        return False, math.nan, math.nan, n
    r2 = float(rows["loocv_r2"].fill_nan(None).max() or -math.inf)
    rho = max(float(rows["spearman_rho"].fill_nan(None).max() or 0.0), 0.0)
    return True, r2, rho, int(rows["n_points"].max())


def _geometry_switch(
    name: str, regression: pl.DataFrame, rho_below: float, r2_below: float, blocks: str
) -> Switch:
    has_target = "target" in regression.columns and GEOMETRY_TARGET in regression["target"]
    target = GEOMETRY_TARGET if has_target else "recall_at_10"
    ok, r2, rho, n = _best_fit(regression, target)
    why_not = ""
    if not ok:
        rows = _usable(regression, REGRESSION_KEYS).filter(pl.col("target") == target)
        status = str(rows["status"][0]) if rows.height else "no regression fitted yet"
        why_not = f"{n} points: {status}" if rows.height else status
    return Switch(
        name=name,
        rule=f"best LOOCV Spearman rho (predicted vs actual, negative counts as 0) < {rho_below} "
        f"and best LOOCV R2 < {r2_below} (geometry features -> binary recall_at_10 relative to "
        "the mean at its bit length, leaving out one (dataset, model) at a time)",
        blocks=blocks,
        evaluated=ok,
        fired=ok and rho < rho_below and r2 < r2_below,
        numbers={"n_points": n, "best_r2": r2, "best_rho": rho},
        why_not=why_not,
    )


def f3_geometry_non_signal(regression: pl.DataFrame, rho_below: float, r2_below: float) -> Switch:
    return _geometry_switch(
        "F3",
        regression,
        rho_below,
        r2_below,
        "geometry-based claims (they would be labelled weak hypotheses in the report and memo)",
    )


def k3_predictor_failure(regression: pl.DataFrame, r2_below: float, rho_below: float) -> Switch:
    return _geometry_switch(
        "K3",
        regression,
        rho_below,
        r2_below,
        "further predictor work (the MLP and any model beyond the linear fits)",
    )


def k1_core_behind_schedule(
    tier1_completion: float | None,
    start: dt.date | None,
    today: dt.date,
    *,
    week: int,
    min_completion: float,
) -> Switch:
    """By week ``week`` of the study, Tier-1 Core (E1–E6) below ``min_completion`` pauses X1–X4.

    Without a start date there is no schedule to be behind, so the switch is not evaluated
    (and does not pause anything); before the deadline it is evaluated and clear.
    """
    due = start + dt.timedelta(weeks=week) if start else None
    weeks = (today - start).days / 7 if start else math.nan
    evaluated = start is not None and tier1_completion is not None
    return Switch(
        name="K1",
        rule=f"at week {week} after the study's start_date, Tier-1 Core completion "
        f"< {min_completion:.0%}",
        blocks="the Exploratory track (X1-X4: BFI, predictors, adapter, design memo)",
        evaluated=evaluated,
        fired=evaluated and today >= due and tier1_completion < min_completion,
        numbers={
            "tier1_completion": tier1_completion,
            "start_date": start.isoformat() if start else None,
            "due_date": due.isoformat() if due else None,
            "weeks_elapsed": round(weeks, 2),
            "threshold": min_completion,
        },
        why_not=""
        if evaluated
        else "no start_date in the study config: no schedule to be behind"
        if start is None
        else "no Tier-1 rows are planned",
    )


K2_BITS = 256


def k2_gain(gain_by_bits: dict[int, float]) -> float | None:
    """The gain K2 reads: at 256 bits, or at the largest adapter bit length when 256 is not run."""
    if not gain_by_bits:
        return None
    return gain_by_bits.get(K2_BITS, gain_by_bits[max(gain_by_bits)])


def k2_adapter_no_signal(first_gain_pp: float | None, min_gain_pp: float, where: str) -> Switch:
    """After the first adapter configuration, < ``min_gain_pp`` recall gain at 256 bits stops X3."""
    evaluated = first_gain_pp is not None and not math.isnan(first_gain_pp)
    return Switch(
        name="K2",
        rule=f"the first adapter configuration on {where} gains < {min_gain_pp} pp of "
        "recall_at_10 at 256 bits over the instrument",
        blocks="further X3 adapter configurations (and their GPU time)",
        evaluated=evaluated,
        fired=evaluated and first_gain_pp < min_gain_pp,
        numbers={"first_gain_pp": first_gain_pp, "threshold_pp": min_gain_pp, "pair": where},
        why_not="" if evaluated else f"the adapter has not run on {where} yet",
    )


@dataclass(frozen=True)
class Verdict:
    colour: str  # GREEN, YELLOW or RED
    final: bool  # False while Tier-1 is incomplete: the colour may still change
    reasons: list[str]
    numbers: dict

    def to_dict(self) -> dict:
        return asdict(self)


def best_regimes(
    results: pl.DataFrame, bits: list[int], min_recall: float, min_ratio: float
) -> pl.DataFrame:
    """Benchmarks where binary meets the plan's GREEN bar (recall and ratio vs PQ)."""
    return binary_vs_pq(results).filter(
        pl.col("bits").is_in(bits)
        & (pl.col("binary_recall_at_10") >= min_recall)
        & (pl.col("ratio") >= min_ratio)
    )


def verdict(
    results: pl.DataFrame,
    switches: list[Switch],
    *,
    tier1_completion: float,
    tier2_completion: float | None,
    exploratory_done: bool,
    adapter_gain_pp: float | None,
    green_bits: list[int],
    green_recall: float,
    green_ratio: float,
    green_adapter_gain_pp: float,
    tier2_mostly_done: float,
    full_scale_passages: int | None = None,
) -> Verdict:
    """The plan's summary rules (SEED-phase2-plan.md, "GREEN / YELLOW / RED Summary"). The
    colour follows the rules whatever the corpus size; the reasons say on what sizes it was
    judged, and a verdict reached only below ``full_scale_passages`` says that it does not
    carry to the plan's ~500K scale."""
    fired = {s.name for s in switches if s.fired}
    tier1_done = tier1_completion >= 1.0
    regimes = best_regimes(results, green_bits, green_recall, green_ratio)
    reasons: list[str] = [f"Tier-1 core completion {tier1_completion:.0%}"]
    docs = scale.corpus_range(results)
    small = full_scale_passages is not None and scale.is_small(docs, full_scale_passages)
    if docs is not None:
        reasons.append(
            f"judged {scale.note(docs, small)}"
            + (
                f" (below {scale.short(full_scale_passages)}: the plan's thresholds are written "
                "for ~500K passages, where the same codes rank against many more distractors, "
                "so this colour is not evidence at that scale)"
                if small
                else ""
            )
        )
    numbers = {
        "corpus_docs": list(docs) if docs else None,
        "small_scale": small,
        "tier1_completion": tier1_completion,
        "tier2_completion": tier2_completion,
        "green_regimes": regimes.height,
        "fired_switches": sorted(fired),
        "adapter_gain_pp": adapter_gain_pp,
    }
    if fired & {"F1", "F2"}:
        reasons.append(f"core kill-switch fired: {', '.join(sorted(fired & {'F1', 'F2'}))}")
        if not tier1_done:
            reasons.append("and the results are incomplete, so the failure is not quantified")
            return Verdict("RED", True, reasons, numbers)
        reasons.append("but Tier-1 results are complete: an honest, quantified negative result")
        return Verdict("YELLOW", True, reasons, numbers)

    green_missing = []
    if regimes.height == 0:
        green_missing.append(
            f"no benchmark with binary recall_at_10 >= {green_recall} and >= {green_ratio}x PQ "
            f"at {'/'.join(map(str, green_bits))} bits"
        )
    else:
        best = regimes.sort("ratio", descending=True).row(0, named=True)
        reasons.append(
            f"binary meets the GREEN bar on {regimes.height} benchmark(s), e.g. "
            f"{best['dataset']} x {best['model']} at {best['bits']} bits: recall_at_10 "
            f"{best['binary_recall_at_10']:.3f}, {best['ratio']:.2f}x PQ"
        )
    if tier2_completion is not None and tier2_completion < tier2_mostly_done:
        green_missing.append(f"Tier-2 core not mostly done ({tier2_completion:.0%} done)")
    if not exploratory_done:
        green_missing.append("Exploratory X1/X2/X4 not complete")
    if adapter_gain_pp is None:
        green_missing.append("X3 adapter not run")
    elif adapter_gain_pp < green_adapter_gain_pp:
        green_missing.append(
            f"X3 adapter gain {adapter_gain_pp:.1f} pp < {green_adapter_gain_pp:g} pp"
        )
    for s in switches:
        if not s.evaluated:
            reasons.append(
                f"{s.name} not evaluated ({s.why_not or 'no data'}); until it can be judged it "
                f"does not stop {s.blocks}"
            )
    if not tier1_done:
        reasons.append("provisional: Tier-1 is incomplete")
        reasons.extend(f"GREEN needs: {m}" for m in green_missing)
        return Verdict("YELLOW", False, reasons, numbers)
    if not green_missing:
        return Verdict("GREEN", True, reasons, numbers)
    reasons.extend(f"not GREEN: {m}" for m in green_missing)
    return Verdict("YELLOW", True, reasons, numbers)
