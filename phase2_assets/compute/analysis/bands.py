"""The plan's target bands (Hope / Still useful / Negative) of E1–E8 and X1–X4, judged from the
measured tables.

The plan gives every experiment a question and three bands with numbers. Each rule below tests
the plan's *Hope* and *Negative* as written; what is neither is *Still useful*, the plan's middle
band, so every measured outcome lands in exactly one band and the plan's small gaps between bands
(E1's 30 to 35 GPU-hours, X3's 2 to 3 points) are not left unjudged. A band that cannot be judged
yet (no rows, too few pairs) is "not judged" with the reason, as a kill-switch is "not
evaluated". Where the plan's band is qualitative (E2's "distributions look reasonable", E7's
"confirm known pathologies", X4's "clear thresholds") the rule states the measurable reading
chosen, next to the plan's words.

Every band also carries the corpus sizes it was judged on: the plan's thresholds are written for
~500K-passage corpora, where the same codes rank against a hundred times the distractors of a
5K-passage collection, so a band reached only on small collections says so.

Pure: polars tables and numbers in, ``Band`` records out; the Dagster layer gathers the inputs
(including the code and ground-truth checks from the instance) and turns bands into checks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from phase2_assets.compute.analysis import bfi as bfi_lib
from phase2_assets.compute.analysis import decisions, predictors, scale

HOPE, USEFUL, NEGATIVE, NOT_JUDGED = "Hope", "Still useful", "Negative", "not judged"
BANDS = (HOPE, USEFUL, NEGATIVE, NOT_JUDGED)
EXPERIMENTS = ("E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "X1", "X2", "X3", "X4")
_EPS = 1e-12  # so that 0.7 - 0.4 = 0.29999999999999993 meets a 0.3 bar

QUESTIONS = {
    "E1": "Can we obtain a clean, reusable embedding corpus for every planned pair within the "
    "GPU budget?",
    "E2": "Are the binary codes stable and deterministic at every bit length, without numerical "
    "or storage issues?",
    "E3": "Are the PQ indices strong, fair compression baselines at matched memory?",
    "E4": "Are the float brute-force baselines trusted, at realistic compute cost?",
    "E5": "How much quality is lost moving from float/PQ to pure binary retrieval at matched "
    "memory?",
    "E6": "Where does PQ sit on the quality-memory frontier, and how large is the binary-PQ gap?",
    "E7": "What are the geometric pathologies of these embeddings, and do they align with binary "
    "failures?",
    "E8": "Do geometry diagnostics predict binary retrieval quality?",
    "X1": "Does the Binary Friendliness Index rank embeddings by how well they binarise?",
    "X2": "Are simple geometry features useful predictors of binary performance?",
    "X3": "Is binary quality easily recoverable with a small adapter on cached embeddings?",
    "X4": "Does the design memo give concrete, numeric Phase-3 criteria and baselines?",
}


@dataclass(frozen=True)
class Band:
    experiment: str
    band: str  # one of BANDS
    reading: str  # the rule that placed it, in words, with the numbers
    numbers: dict = field(default_factory=dict)
    why_not: str = ""  # why it is not judged (empty when it is)
    corpus_docs: tuple[int, int] | None = None  # (smallest, largest) collection judged on
    small_scale: bool = False  # judged only on collections below the plan's scale

    @property
    def question(self) -> str:
        return QUESTIONS[self.experiment]

    @property
    def judged(self) -> bool:
        return self.band != NOT_JUDGED

    def scale_note(self) -> str:
        return scale.note(self.corpus_docs, self.small_scale)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["corpus_docs"] = list(self.corpus_docs) if self.corpus_docs else None
        return {**out, "question": self.question, "scale": self.scale_note()}


# ---- helpers ----------------------------------------------------------------------------------


def _rows(results: pl.DataFrame, method: str, bits: list[int] | None = None) -> pl.DataFrame:
    if results.height == 0 or "method" not in results.columns:
        return pl.DataFrame(
            schema={"dataset": pl.String, "model": pl.String, "bits": pl.Int64, "r": pl.Float64}
        )
    rows = results.filter(pl.col("method") == method)
    if bits is not None:
        rows = rows.filter(pl.col("bits").is_in(bits))
    return rows.select("dataset", "model", "bits", pl.col("recall_at_10").alias("r"))


def _best_per_pair(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.group_by("dataset", "model").agg(pl.col("r").max()).sort("dataset", "model")


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _not_judged(experiment: str, why: str, **numbers) -> Band:
    return Band(experiment, NOT_JUDGED, "", numbers, why_not=why)


def _datasets_meeting(best: pl.DataFrame, bar: float, model_share: float) -> tuple[int, int]:
    """(datasets where at least ``model_share`` of their models reach ``bar``, datasets)."""
    if best.height == 0:
        return 0, 0
    per = best.group_by("dataset").agg(
        ((pl.col("r") >= bar - _EPS).sum() / pl.len()).alias("share")
    )
    return int((per["share"] >= model_share - _EPS).sum()), per.height


# ---- E1: embeddings -------------------------------------------------------------------------


def e1(
    results: pl.DataFrame,
    ledger: pl.DataFrame | None,
    planned_pairs: dict[str, set[tuple[str, str]]],
    t: Any,
) -> Band:
    """Hope: every tier's pairs embedded within ``e1_hope_gpu_hours`` and no major reruns;
    Negative: over ``e1_negative_gpu_hours`` (the plan's "exceeds 35–40 A100-hours") or a
    core-tier pair with no embeddings once the rest are done."""
    have = set()
    if results.height and "method" in results.columns:
        have = {
            (d, m)
            for d, m in results.filter(pl.col("method") == "float32")
            .select("dataset", "model")
            .iter_rows()
        }
    tiers = list(planned_pairs)
    if not tiers:
        return _not_judged("E1", "no tier plans any pair")
    core = planned_pairs[tiers[0]]
    every = set().union(*planned_pairs.values())
    if not have:
        return _not_judged("E1", "no pair has embeddings (float32 rows) yet")
    gpu, spent = 0.0, 0.0
    if ledger is not None and ledger.height and "experiment" in ledger.columns:
        e1_rows = ledger.filter(pl.col("experiment") == "E1")
        if e1_rows.height:
            gpu = float(e1_rows["gpu_hours"][0] or 0.0)
            spent = float(e1_rows["spent_gpu_hours"][0] or 0.0)
    rerun_share = (spent - gpu) / gpu if gpu > 0 else 0.0
    numbers = {
        "core_pairs_embedded": f"{len(core & have)}/{len(core)}",
        "all_pairs_embedded": f"{len(every & have)}/{len(every)}",
        "gpu_hours": round(gpu, 3),
        "rerun_gpu_share": round(rerun_share, 3),
    }
    if gpu > t.e1_negative_gpu_hours + _EPS:
        return Band(
            "E1",
            NEGATIVE,
            f"{_f(gpu, 1)} GPU-hours > {t.e1_negative_gpu_hours:g} (the plan's Negative)",
            numbers,
        )
    if not core <= have:
        return _not_judged(
            "E1",
            f"core tier embedded on {len(core & have)} of {len(core)} pairs: still running",
            **numbers,
        )
    if (
        every <= have
        and gpu <= t.e1_hope_gpu_hours + _EPS
        and rerun_share <= t.e1_max_rerun_share + _EPS
    ):
        reading = (
            f"all {len(every)} planned pair(s) embedded with {_f(gpu, 2)} GPU-hours "
            f"<= {t.e1_hope_gpu_hours:g}, reruns {rerun_share:.0%} <= "
            f"{t.e1_max_rerun_share:.0%} of it"
        )
        return Band("E1", HOPE, reading, numbers)
    reading = (
        f"core tier embedded ({len(core)} pairs); {len(every & have)}/{len(every)} of all "
        f"planned pairs, {_f(gpu, 2)} GPU-hours (Hope needs every pair, <= "
        f"{t.e1_hope_gpu_hours:g} h and reruns <= {t.e1_max_rerun_share:.0%})"
    )
    return Band("E1", USEFUL, reading, numbers)


# ---- E2: binary codes -----------------------------------------------------------------------

BLOCKING_CODE_CHECKS = ("self_hamming_zero", "reproducible")


def e2(results: pl.DataFrame, code_checks: pl.DataFrame) -> Band:
    """Plan: Hope "codes stable and reproducible; no pathological failures; Hamming distance
    distributions look reasonable for all bit-lengths". Reading: every code partition passed
    ``self_hamming_zero`` and ``reproducible`` (stable, deterministic), ``hamming_tracks_angle``
    and ``bit_balance`` (the distances behave as SimHash predicts, no near-constant bit), and
    binary recall_at_10 never falls as bits grow on any pair (no pathological code length).
    Negative ("systematic failures, non-reproducible codes"): any partition failing
    ``self_hamming_zero`` or ``reproducible``. Still useful ("minor quirks"): the rest."""
    if code_checks.height == 0:
        return _not_judged("E2", "no check of binary_codes has run yet")
    latest = code_checks.select("check", "partition", "passed")
    failed = latest.filter(~pl.col("passed"))
    by_check = {
        c: int(failed.filter(pl.col("check") == c).height)
        for c in sorted(set(latest["check"].to_list()))
    }
    numbers = {
        "partitions_checked": latest["partition"].n_unique(),
        **{f"{c}_failed": n for c, n in by_check.items()},
    }
    blocking = failed.filter(pl.col("check").is_in(BLOCKING_CODE_CHECKS))
    if blocking.height:
        where = ", ".join(sorted(set(blocking["partition"].to_list()))[:3])
        return Band(
            "E2",
            NEGATIVE,
            f"{blocking.height} failed {'/'.join(BLOCKING_CODE_CHECKS)} check(s), e.g. {where}",
            numbers,
        )
    falls = _recall_falls_with_bits(results)
    numbers["pairs_where_recall_falls_with_bits"] = len(falls)
    if failed.height == 0 and not falls:
        return Band(
            "E2",
            HOPE,
            f"all {numbers['partitions_checked']} code partitions passed every check "
            "(self-distance 0, reproducible, Hamming tracks angle/pi, bit balance) and "
            "recall_at_10 rises with bits on every pair",
            numbers,
        )
    quirks = [f"{c} failed on {n}" for c, n in by_check.items() if n]
    if falls:
        quirks.append(f"recall_at_10 falls with bits on {', '.join(falls[:3])}")
    return Band("E2", USEFUL, "minor quirks: " + "; ".join(quirks), numbers)


def _recall_falls_with_bits(results: pl.DataFrame) -> list[str]:
    rows = _rows(results, "binary").sort("dataset", "model", "bits")
    falls = []
    for (d, m), group in rows.group_by(["dataset", "model"], maintain_order=True):
        r = group["r"].to_numpy()
        if len(r) > 1 and np.any(np.diff(r) < -_EPS):
            falls.append(f"{d} × {m}")
    return falls


# ---- E3 and E6: PQ ----------------------------------------------------------------------------


def e3(results: pl.DataFrame, t: Any) -> Band:
    """Hope: PQ recall_at_10 >= ``e3_hope_fraction_of_float`` of float (float's own is 1) at
    32–64 bytes for every model of at least ``e3_hope_dataset_share`` of the datasets.
    Negative: PQ recall_at_10 < ``e3_negative_recall_at_64_bytes`` at 64 bytes on every pair
    ("across the board")."""
    hope_bits = [8 * b for b in t.e3_hope_bytes]
    best = _best_per_pair(_rows(results, "pq", hope_bits))
    at64 = _rows(results, "pq", [512])
    if best.height == 0:
        return _not_judged("E3", f"no PQ row at {'/'.join(map(str, t.e3_hope_bytes))} bytes")
    bar = t.e3_hope_fraction_of_float
    good, datasets = _datasets_meeting(best, bar, 1.0)
    numbers = {
        "datasets_competitive": f"{good}/{datasets}",
        "best_pq_recall_at_10": float(best["r"].max()),
        "worst_pq_recall_at_10": float(best["r"].min()),
    }
    neg = t.e3_negative_recall_at_64_bytes
    if at64.height and bool((at64["r"] < neg - _EPS).all()):
        return Band(
            "E3",
            NEGATIVE,
            f"PQ recall_at_10 < {neg:g} at 64 bytes on all {at64.height} pairs "
            f"(best {_f(float(at64['r'].max()))})",
            numbers,
        )
    share = _share(good, datasets)
    reading = (
        f"PQ at {'/'.join(map(str, t.e3_hope_bytes))} bytes reaches recall_at_10 >= {bar:g} for "
        f"every model on {good} of {datasets} datasets"
    )
    if share >= t.e3_hope_dataset_share - 1e-9:
        return Band("E3", HOPE, reading, numbers)
    return Band(
        "E3", USEFUL, reading + f" (Hope needs {t.e3_hope_dataset_share:.0%} of them)", numbers
    )


def e6(results: pl.DataFrame, t: Any) -> Band:
    """Hope: PQ-32/64 recall_at_10 >= ``e6_hope_recall`` on most (over half of) the core pairs.
    Negative: PQ recall_at_10 < ``e6_negative_recall_at_64_bytes`` at 64 bytes on most pairs."""
    best = _best_per_pair(_rows(results, "pq", [256, 512]))
    at64 = _rows(results, "pq", [512])
    if best.height == 0:
        return _not_judged("E6", "no PQ row at 32 or 64 bytes")
    strong = int((best["r"] >= t.e6_hope_recall - _EPS).sum())
    numbers = {
        "pairs_pq_strong": f"{strong}/{best.height}",
        "median_pq_recall_at_10": float(best["r"].median()),
    }
    if at64.height:
        weak = int((at64["r"] < t.e6_negative_recall_at_64_bytes - _EPS).sum())
        numbers["pairs_pq_weak_at_64_bytes"] = f"{weak}/{at64.height}"
        if weak > at64.height / 2:
            return Band(
                "E6",
                NEGATIVE,
                f"PQ recall_at_10 < {t.e6_negative_recall_at_64_bytes:g} at 64 bytes on {weak} "
                f"of {at64.height} pairs",
                numbers,
            )
    reading = f"PQ-32/64 recall_at_10 >= {t.e6_hope_recall:g} on {strong} of {best.height} pairs"
    if strong > best.height / 2:
        return Band("E6", HOPE, reading, numbers)
    return Band("E6", USEFUL, reading + " (Hope needs most of them)", numbers)


# ---- E4: float ground truth ----------------------------------------------------------------


def e4(results: pl.DataFrame, truth_checks: pl.DataFrame, cpu_hours: float | None, t) -> Band:
    """Hope: every ground-truth check passed and the float rows took <= ``e4_hope_cpu_hours``.
    Negative: a ground-truth check failed ("inconsistencies"). Still useful: trusted but dearer.

    The measured hours vary from run to run, so the band keeps only which side of the budget
    they fell on (the hours themselves are in the asset's metadata): the same tables give the
    same bands, byte for byte."""
    if truth_checks.height == 0:
        return _not_judged("E4", "no check of float_ground_truth has run yet")
    failed = truth_checks.filter(~pl.col("passed"))
    within = None if cpu_hours is None else cpu_hours <= t.e4_hope_cpu_hours + _EPS
    numbers = {
        "partitions_checked": truth_checks["partition"].n_unique(),
        "checks_failed": failed.height,
        "within_cpu_hours": within,
    }
    if failed.height:
        where = ", ".join(sorted(set(failed["partition"].to_list()))[:3])
        return Band(
            "E4", NEGATIVE, f"{failed.height} ground-truth check(s) failed: {where}", numbers
        )
    if within is False:
        return Band(
            "E4", USEFUL, f"every check passed; over {t.e4_hope_cpu_hours:g} CPU-hours", numbers
        )
    cost = "" if within is None else f" within {t.e4_hope_cpu_hours:g} CPU-hours"
    return Band(
        "E4",
        HOPE,
        f"every ground-truth check passed on {numbers['partitions_checked']} pair(s){cost}",
        numbers,
    )


# ---- E5: binary --------------------------------------------------------------------------------


def e5(results: pl.DataFrame, switches: list[decisions.Switch], t: Any) -> Band:
    """Hope: on >= 2/3 of the datasets, >= 2/3 of the models reach binary recall_at_10 >=
    ``e5_hope_recall`` at 256/512 bits, and binary reaches >= ``e5_hope_ratio_vs_pq`` of PQ at
    matched memory on >= 1 dataset. Negative: F1 or F2 fired (the plan's own)."""
    best = _best_per_pair(_rows(results, "binary", list(t.e5_hope_bits)))
    if best.height == 0:
        return _not_judged("E5", f"no binary row at {'/'.join(map(str, t.e5_hope_bits))} bits")
    fired = [s.name for s in switches if s.name in ("F1", "F2") and s.fired]
    ratios = decisions.binary_vs_pq(results)
    best_ratio = float(ratios["ratio"].max()) if ratios.height else math.nan
    good, datasets = _datasets_meeting(best, t.e5_hope_recall, t.e5_hope_model_share)
    numbers = {
        "datasets_meeting_recall": f"{good}/{datasets}",
        "best_binary_recall_at_10": float(best["r"].max()),
        "median_binary_recall_at_10": float(best["r"].median()),
        "best_ratio_vs_pq": best_ratio,
    }
    if fired:
        return Band("E5", NEGATIVE, f"kill-switch {', '.join(fired)} fired", numbers)
    ratio_ok = not math.isnan(best_ratio) and best_ratio >= t.e5_hope_ratio_vs_pq - _EPS
    reading = (
        f"binary-{'/'.join(map(str, t.e5_hope_bits))} recall_at_10 >= {t.e5_hope_recall:g} for "
        f">= {t.e5_hope_model_share:.0%} of the models on {good} of {datasets} datasets; best "
        f"ratio to PQ at matched memory {_f(best_ratio, 2)}"
    )
    if _share(good, datasets) >= t.e5_hope_dataset_share - 1e-9 and ratio_ok:
        return Band("E5", HOPE, reading, numbers)
    need = f"Hope needs {t.e5_hope_dataset_share:.0%} of datasets and a ratio >= "
    return Band("E5", USEFUL, f"{reading} ({need}{t.e5_hope_ratio_vs_pq:g})", numbers)


# ---- E7: geometry ------------------------------------------------------------------------------

GEOMETRY_FEATURES = (
    "anisotropy_centred",
    "outlier_fraction",
    "intrinsic_dim_90",
    "mean_pairwise_cosine",
    "angular_spread_deg",
)


def e7(geometry: pl.DataFrame, results: pl.DataFrame, t: Any) -> Band:
    """Plan: Hope "diagnostics confirm known pathologies (high anisotropy, non-trivial outlier
    fraction), and correlate qualitatively with observed binary failures". Reading: some pair
    has anisotropy_centred >= ``e7_high_anisotropy`` or outlier_fraction >=
    ``e7_outlier_fraction``, and across pairs the Spearman rho of anisotropy with binary
    recall_at_10 at 256 bits is <= -``e7_alignment_rho`` (more anisotropic, worse codes).
    Negative ("numerically unstable or no usable variation"): a non-finite diagnostic, or no
    diagnostic varying by >= ``e7_min_variation`` (range over mean) across pairs."""
    if geometry.height == 0 or "anisotropy_centred" not in geometry.columns:
        return _not_judged("E7", "no geometry rows yet")
    features = [f for f in GEOMETRY_FEATURES if f in geometry.columns]
    per_pair = geometry.group_by("dataset", "model").agg(pl.col(features).first())
    if per_pair.height < 2:
        return _not_judged("E7", f"{per_pair.height} pair: variation needs at least 2")
    values = {f: per_pair[f].cast(pl.Float64).to_numpy() for f in features}
    unstable = [f for f, v in values.items() if not np.all(np.isfinite(v))]
    variation = {
        f: float(np.ptp(v) / abs(v.mean())) if abs(v.mean()) > 0 else 0.0
        for f, v in values.items()
        if f not in unstable
    }
    aniso = values["anisotropy_centred"]
    outliers = values.get("outlier_fraction", np.zeros(1))
    numbers = {
        "pairs": per_pair.height,
        "max_anisotropy_centred": float(np.nanmax(aniso)),
        "max_outlier_fraction": float(np.nanmax(outliers)),
        "most_varying": max(variation, key=variation.get) if variation else None,
        "max_variation": max(variation.values()) if variation else math.nan,
    }
    if unstable:
        return Band("E7", NEGATIVE, f"non-finite diagnostics: {', '.join(unstable)}", numbers)
    if numbers["max_variation"] < t.e7_min_variation - _EPS:
        return Band(
            "E7",
            NEGATIVE,
            f"no diagnostic varies by >= {t.e7_min_variation:g} (range / mean) across pairs",
            numbers,
        )
    rho = _anisotropy_vs_recall(per_pair, results)
    numbers["rho_anisotropy_vs_recall_256"] = rho
    pathology = (
        numbers["max_anisotropy_centred"] >= t.e7_high_anisotropy - _EPS
        or numbers["max_outlier_fraction"] >= t.e7_outlier_fraction - _EPS
    )
    aligned = not math.isnan(rho) and rho <= -t.e7_alignment_rho + _EPS
    reading = (
        f"max anisotropy {_f(numbers['max_anisotropy_centred'], 1)} (pathology at >= "
        f"{t.e7_high_anisotropy:g}), max outlier fraction "
        f"{_f(numbers['max_outlier_fraction'])} (at >= {t.e7_outlier_fraction:g}); Spearman "
        f"rho of anisotropy with binary recall_at_10@256 {_f(rho, 2)} (aligned at <= "
        f"-{t.e7_alignment_rho:g})"
    )
    return Band("E7", HOPE if pathology and aligned else USEFUL, reading, numbers)


def _anisotropy_vs_recall(per_pair: pl.DataFrame, results: pl.DataFrame) -> float:
    recall = _rows(results, "binary", [256]).select("dataset", "model", "r")
    both = per_pair.join(recall, on=["dataset", "model"], how="inner")
    a, r = both["anisotropy_centred"].to_numpy(), both["r"].to_numpy()
    if len(a) < 3:
        return math.nan
    return predictors.spearman(a, r)[0]  # NaN when either side is constant


# ---- E8 and X2: regressions -------------------------------------------------------------------


def _fit(regression: pl.DataFrame, targets: tuple[str, ...]) -> dict | None:
    """The best fitted row (by LOOCV R²) among ``targets``, with its intervals."""
    if regression.height == 0 or "target" not in regression.columns:
        return None
    rows = regression.filter(
        pl.col("target").is_in(targets) & pl.col("status").str.starts_with("fitted")
    )
    if rows.height == 0:
        return None
    rows = rows.with_columns(pl.col("loocv_r2").fill_nan(None)).sort(
        "loocv_r2", descending=True, nulls_last=True
    )
    best = rows.row(0, named=True)
    rho = max(
        (v for v in rows["spearman_rho"].fill_nan(None).to_list() if v is not None), default=0.0
    )
    best["best_rho"] = max(rho, 0.0)
    return best


def _regression_band(
    experiment: str, regression: pl.DataFrame, targets, t: Any, f3: tuple[float, float]
) -> Band:
    """``f3``: F3's (rho below, R2 below), the kill-switch thresholds, which are E8's Negative."""
    rho_below, r2_below = f3
    fit = _fit(regression, targets)
    if fit is None:
        status = "no regression fitted yet"
        if regression.height and "target" in regression.columns:
            rows = regression.filter(pl.col("target").is_in(targets))
            if rows.height:
                status = f"{rows['n_points'].max()} points: {rows['status'][0]}"
        return _not_judged(experiment, status)
    r2 = fit["loocv_r2"] if fit["loocv_r2"] is not None else -math.inf
    rho = fit["best_rho"]
    numbers = {
        "target": fit["target"],
        "model": fit["model"],
        "n_points": fit["n_points"],
        "loocv_r2": r2,
        "r2_interval": [fit.get("r2_ci_low"), fit.get("r2_ci_high")],
        "spearman_rho": rho,
        "rho_interval": [fit.get("rho_ci_low"), fit.get("rho_ci_high")],
    }
    reading = (
        f"best LOOCV R2 {_f(r2)} [{_f(fit.get('r2_ci_low'))}, {_f(fit.get('r2_ci_high'))}] and "
        f"rho {_f(rho)} ({fit['model']} on {fit['target']}, {fit['n_points']} points)"
    )
    if rho < rho_below and r2 < r2_below:
        return Band(
            experiment,
            NEGATIVE,
            f"{reading}: rho < {rho_below:g} and R2 < {r2_below:g} (F3's rule)",
            numbers,
        )
    if r2 > t.e8_hope_r2 and rho > t.e8_hope_rho:
        return Band(
            experiment,
            HOPE,
            f"{reading}: R2 > {t.e8_hope_r2:g} and rho > {t.e8_hope_rho:g}",
            numbers,
        )
    return Band(experiment, USEFUL, reading, numbers)


def e8(regression: pl.DataFrame, t: Any, f3: tuple[float, float]) -> Band:
    """Hope: LOOCV R² > ``e8_hope_r2`` and ρ > ``e8_hope_rho``; Negative: F3's rule (|ρ| and
    R² below its thresholds). Read on the geometry-only target F3 reads."""
    return _regression_band("E8", regression, (decisions.GEOMETRY_TARGET,), t, f3)


def x2(regression: pl.DataFrame, t: Any, f3: tuple[float, float]) -> Band:
    """E8's bands over X2's targets: binary quality (within its bit length) and the BFI."""
    return _regression_band("X2", regression, (decisions.GEOMETRY_TARGET, "bfi"), t, f3)


# ---- X1: BFI ---------------------------------------------------------------------------------


def x1(bfi: pl.DataFrame, t: Any) -> Band:
    """Hope: spread >= ``x1_hope_spread`` and ranking "almost identical" to recall_at_10@256
    (Spearman >= ``x1_hope_rank_rho``). Negative: spread < ``x1_negative_spread`` or a ranking
    that contradicts recall (rho < 0)."""
    if bfi.height < 2:
        return _not_judged("X1", f"{bfi.height} BFI value(s): a spread needs at least 2 pairs")
    s = bfi_lib.bfi_summary(bfi)
    numbers = {
        "pairs": s["n_pairs"],
        "spread": s["spread"],
        "spearman_vs_recall_256": s["spearman_vs_recall_256"],
        "monotonic_with_recall_256": s["monotonic_with_recall_256"],
    }
    rho = s["spearman_vs_recall_256"]
    reading = (
        f"BFI spread {_f(s['spread'])} over {s['n_pairs']} pairs, Spearman rho vs "
        f"recall_at_10@256 {_f(rho, 2)}"
    )
    if s["spread"] < t.x1_negative_spread - _EPS or (not math.isnan(rho) and rho < 0):
        return Band(
            "X1",
            NEGATIVE,
            reading + f" (Negative: spread < {t.x1_negative_spread:g} or rho < 0)",
            numbers,
        )
    if (
        s["spread"] >= t.x1_hope_spread - _EPS
        and not math.isnan(rho)
        and rho >= t.x1_hope_rank_rho - _EPS
    ):
        return Band("X1", HOPE, reading, numbers)
    return Band(
        "X1",
        USEFUL,
        reading + f" (Hope: spread >= {t.x1_hope_spread:g}, rho >= {t.x1_hope_rank_rho:g})",
        numbers,
    )


# ---- X3: adapter --------------------------------------------------------------------------


def x3(adapter: pl.DataFrame | None, t: Any) -> Band:
    """Hope: on some pair the adapted binary-256 gains >= ``x3_hope_gain_pp`` points and closes
    >= ``x3_hope_gap_closed`` of the binary-PQ gap. Negative: every configuration gains
    < ``x3_negative_gain_pp`` and closes < ``x3_negative_gap_closed``."""
    if adapter is None or adapter.height == 0:
        return _not_judged("X3", "the adapter has not run")
    rows = adapter.filter(pl.col("bits") == 256)
    # NaN (no PQ row to measure a gap against) is larger than any number to polars: as null,
    # it meets no bar.
    rows = (rows if rows.height else adapter).with_columns(
        pl.col("points_gained", "gap_closed").cast(pl.Float64).fill_nan(None)
    )
    gains, gaps = rows["points_gained"], rows["gap_closed"]
    best_gain = float(gains.max()) if gains.drop_nulls().len() else math.nan
    best_gap = float(gaps.max()) if gaps.drop_nulls().len() else math.nan
    both = rows.filter(
        (pl.col("points_gained") >= t.x3_hope_gain_pp - _EPS)
        & (pl.col("gap_closed") >= t.x3_hope_gap_closed - _EPS)
    )
    numbers = {
        "configs": rows["adapter"].n_unique() if "adapter" in rows.columns else rows.height,
        "bits": int(rows["bits"].max()),
        "best_points_gained": best_gain,
        "best_gap_closed": best_gap,
    }
    reading = (
        f"best gain {_f(best_gain, 1)} pp, best gap closed {_f(best_gap, 2)} at "
        f"{numbers['bits']} bits"
    )
    if both.height:
        return Band("X3", HOPE, reading, numbers)
    gain_low = math.isnan(best_gain) or best_gain < t.x3_negative_gain_pp - _EPS
    gap_low = math.isnan(best_gap) or best_gap < t.x3_negative_gap_closed - _EPS
    if gain_low and gap_low:
        return Band(
            "X3",
            NEGATIVE,
            f"{reading}: < {t.x3_negative_gain_pp:g} pp and < {t.x3_negative_gap_closed:.0%}",
            numbers,
        )
    return Band("X3", USEFUL, reading, numbers)


# ---- X4: design memo -----------------------------------------------------------------------


def x4(
    bfi_threshold: float | None, adapter: pl.DataFrame | None, x1_band: Band, e8_band: Band
) -> Band:
    """Plan: Hope "clear thresholds (e.g. BFI >= 0.65) and adapter baselines"; Still useful "mostly
    summarises negative results, but states them explicitly"; Negative "vague, without concrete
    metrics or baselines". Reading, from the tables the memo is written from: Hope when the memo
    can state a BFI threshold (a pair meets the GREEN bar and X1 is not Negative) and adapter
    baselines (X3 rows); Negative when it has neither a threshold nor an adapter number nor a
    judged negative result (X1 or E8 Negative) to state; Still useful otherwise."""
    has_adapter = adapter is not None and adapter.height > 0
    if not has_adapter and not x1_band.judged and not e8_band.judged:
        return _not_judged("X4", "X1-X3 have nothing for the memo to state yet")
    has_threshold = bfi_threshold is not None and x1_band.band in (HOPE, USEFUL)
    negatives = [b.experiment for b in (x1_band, e8_band) if b.band == NEGATIVE]
    numbers = {
        "bfi_threshold": bfi_threshold,
        "adapter_baselines": int(adapter.height) if has_adapter else 0,
        "negative_results_stated": negatives,
    }
    if has_threshold and has_adapter:
        return Band(
            "X4",
            HOPE,
            f"the memo states a BFI threshold ({_f(bfi_threshold)}) and "
            f"{numbers['adapter_baselines']} adapter baseline row(s)",
            numbers,
        )
    if not has_threshold and not has_adapter and not negatives:
        return Band(
            "X4",
            NEGATIVE,
            "no BFI threshold, adapter baseline or judged negative result to state",
            numbers,
        )
    parts = [
        f"BFI threshold {_f(bfi_threshold)}" if has_threshold else "no BFI threshold",
        f"{numbers['adapter_baselines']} adapter baselines" if has_adapter else "no adapter run",
    ]
    if negatives:
        parts.append(f"negative results stated: {', '.join(negatives)}")
    return Band("X4", USEFUL, "; ".join(parts), numbers)


# ---- all of them ------------------------------------------------------------------------------


def evaluate(
    *,
    results: pl.DataFrame,
    regression: pl.DataFrame,
    bfi: pl.DataFrame,
    geometry: pl.DataFrame,
    adapter: pl.DataFrame | None,
    ledger: pl.DataFrame | None,
    code_checks: pl.DataFrame,
    truth_checks: pl.DataFrame,
    truth_cpu_hours: float | None,
    switches: list[decisions.Switch],
    planned_pairs: dict[str, set[tuple[str, str]]],
    bfi_threshold: float | None,
    thresholds: Any,
    f3: tuple[float, float],
) -> list[Band]:
    """Every experiment's band, in the plan's order, each labelled with the corpus sizes it was
    judged on (``thresholds.full_scale_passages``: below it, "only"). ``thresholds``: the
    study's ``bands`` section; ``f3``: F3's (rho below, R2 below), E8's and X2's Negative."""
    t = thresholds
    x1_band, e8_band = x1(bfi, t), e8(regression, t, f3)
    found = [
        e1(results, ledger, planned_pairs, t),
        e2(results, code_checks),
        e3(results, t),
        e4(results, truth_checks, truth_cpu_hours, t),
        e5(results, switches, t),
        e6(results, t),
        e7(geometry, results, t),
        e8_band,
        x1_band,
        x2(regression, t, f3),
        x3(adapter, t),
        x4(bfi_threshold, adapter, x1_band, e8_band),
    ]
    docs = scale.corpus_range(results)
    small = scale.is_small(docs, t.full_scale_passages)
    return [
        Band(
            **{
                **asdict(b),
                "corpus_docs": docs if b.judged else None,
                "small_scale": small and b.judged,
            }
        )
        for b in found
    ]


TABLE_COLUMNS = ("experiment", "question", "band", "the numbers that placed it", "judged on")


def table(bands: list[dict]) -> pl.DataFrame:
    """One row per experiment, from the bands as stored (``Band.to_dict``): what the report,
    the memo and the UI print."""
    return pl.DataFrame(
        [
            dict(
                zip(
                    TABLE_COLUMNS,
                    (
                        b["experiment"],
                        b["question"],
                        b["band"],
                        b["reading"] or b["why_not"],
                        b["scale"],
                    ),
                    strict=True,
                )
            )
            for b in bands
        ],
        schema={c: pl.String for c in TABLE_COLUMNS},
    )
