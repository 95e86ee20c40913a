"""X4: the Phase-3/4 design memo, written from the result tables alone.

The plan asks for concrete, numeric guidance rather than "more experiments": the BFI definition
and a threshold, geometry rules only when F3 did not fire, the adapter baselines, every
kill-switch state, and a ranked Phase-3 experiment list whose success criteria are numbers taken
from this study. Every number below is formatted from an argument; none is typed here.
"""

from __future__ import annotations

import polars as pl

from phase2_assets.compute.analysis import bands as bands_lib
from phase2_assets.compute.analysis import bfi as bfi_lib
from phase2_assets.compute.analysis import corpus_ladder, decisions
from phase2_assets.compute.report import ledger as ledger_lib
from phase2_assets.compute.report import page, sections
from phase2_assets.compute.report.numbers import fmt


def _numbers(numbers: dict) -> str:
    """A switch's numbers for a reader: "n_points 4, best_r2 n/a", not a Python dict."""
    return ", ".join(f"{k} {_f(v)}" for k, v in numbers.items()) or "no numbers"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _f(x) -> str:
    return fmt(x)


def _table(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    if not any(c in frame.columns for c in columns) or frame.height == 0:
        return ["(no rows)"]
    return page.markdown_table(frame, columns).splitlines()


def bfi_threshold(
    bfi: pl.DataFrame, results: pl.DataFrame, bits: list[int], recall: float, ratio: float
):
    """Lowest BFI of a pair meeting the GREEN bar, and highest BFI of a pair missing it."""
    if bfi.height == 0:
        return None, None
    good = decisions.best_regimes(results, bits, recall, ratio).select("dataset", "model").unique()
    marked = bfi.join(good.with_columns(meets=pl.lit(True)), on=["dataset", "model"], how="left")
    meets = marked.filter(pl.col("meets").fill_null(False))["bfi"]
    misses = marked.filter(~pl.col("meets").fill_null(False))["bfi"]
    return (meets.min() if len(meets) else None), (misses.max() if len(misses) else None)


def phase3_experiments(
    adapter: pl.DataFrame, results: pl.DataFrame, switches: dict
) -> list[tuple[float, str, str]]:
    """(points, what the points are, experiment with its success criterion), largest first.
    Each number is either the headroom still left (a gap) or the gain already shown; the memo
    says which, so a gap is never read as a promised gain."""
    ideas: list[tuple[float, str, str]] = []
    gaps = decisions.binary_vs_pq(results)
    at256 = gaps.filter(pl.col("bits") == 256)
    if at256.height:
        gap = float((at256["pq_recall_at_10"] - at256["binary_recall_at_10"]).mean()) * 100
        ideas.append(
            (
                gap,
                "headroom",
                "Close the binary → PQ gap at 32 bytes per vector (a 256-bit binary code and a "
                f"PQ code of 32 one-byte sub-quantisers): PQ leads by {gap:.1f} recall_at_10 "
                f"points on average over {_count(at256.height, 'benchmark')}. Success: binary "
                "within 5 points of PQ at 32 bytes per vector on every Tier-1 benchmark.",
            )
        )
    if adapter.height and not switches.get("K2", {}).get("fired"):
        best = adapter.sort("points_gained", descending=True).row(0, named=True)
        itq = best.get("itq_recall_at_10")
        target = max(best["adapted_recall_at_10"], itq if itq is not None else 0.0)
        closed = best["gap_closed"]
        share = f", closing {closed:.0%} of the instrument → PQ gap" if closed == closed else ""
        ideas.append(
            (
                best["points_gained"],
                "gain shown",
                f"Scale the X3 adapter to every Tier-1 pair: {best['adapter']} gained "
                f"{best['points_gained']:.1f} recall_at_10 points over the instrument at "
                f"{best['bits']} bits on {best['dataset']} × {best['model']}{share}. Success: "
                f"recall_at_10 ≥ {target + 0.02:.3f} at {best['bits']} bits, 2 points above "
                "the better of the adapter and ITQ.",
            )
        )
    itq = results.filter(pl.col("method") == "itq") if "method" in results.columns else results
    binary = (
        results.filter(pl.col("method") == "binary") if "method" in results.columns else results
    )
    if itq.height and binary.height:
        joined = itq.join(binary, on=["dataset", "model", "bits"], suffix="_binary")
        gain = float((joined["recall_at_10"] - joined["recall_at_10_binary"]).mean()) * 100
        ideas.append(
            (
                gain,
                "gain shown",
                f"Adopt learned rotations as the Phase-3 binary baseline: ITQ beat the "
                f"instrument by {gain:.1f} recall_at_10 points at equal bits, on average over "
                f"{_count(joined.height, 'benchmark × bit length')}. Success: any new method "
                "beats ITQ at equal bits on at least 80% of benchmarks.",
            )
        )
    rerank = (
        results.filter(pl.col("method") == "binary_rerank")
        if "method" in results.columns
        else results
    )
    if rerank.height:
        row = rerank.sort("ndcg_at_10_vs_float", descending=True).row(0, named=True)
        loss = (1 - row["ndcg_at_10_vs_float"]) * 100
        ideas.append(
            (
                loss,
                "headroom",
                "Binary shortlist + float re-ranking: at best it keeps "
                f"{row['ndcg_at_10_vs_float']:.1%} of the float nDCG@10 ({row['bits']}-bit "
                "codes, floats on disk). Success: at least 99% of it at 256 bits or fewer.",
            )
        )
    return sorted(ideas, key=lambda t: -t[0])


def design_memo(
    *,
    study_name: str,
    config_hash: str,
    verdict: dict,
    switches: list[dict],
    bfi: pl.DataFrame,
    bfi_formula: str,
    regression: pl.DataFrame,
    adapter: pl.DataFrame,
    results: pl.DataFrame,
    ledger: pl.DataFrame,
    green_bits: list[int],
    green_recall: float,
    green_ratio: float,
    bands: list[dict] | None = None,
    ladder: pl.DataFrame | None = None,
) -> str:
    """``bands``: the target bands as stored (``compute.analysis.bands.Band.to_dict``);
    ``ladder``: the corpus-size ladder (``results/corpus_ladder``)."""
    by_name = {s["name"]: s for s in switches}
    lines = [
        f"# Phase-3/4 design memo — study '{study_name}'",
        "",
        f"Config hash `{config_hash}`. Generated from the result tables; rerun "
        "`phase2 report` to regenerate.",
        "",
        f"**Verdict: {verdict.get('colour', 'n/a')}**"
        + ("" if verdict.get("final") else " (provisional)"),
        "",
    ]
    lines += [f"- {r}" for r in verdict.get("reasons", [])]
    if bands:
        lines += ["", "## What the study found", ""]
        lines += _table(bands_lib.table(bands), list(bands_lib.TABLE_COLUMNS))
    lines += ["", "## Kill-switches", ""]
    lines += ["| switch | state | rule | numbers |", "|---|---|---|---|"]
    lines += [
        f"| {s['name']} | {s['state']} | {s['rule']} | {_numbers(s['numbers'])} |" for s in switches
    ]
    low, high = bfi_threshold(bfi, results, green_bits, green_recall, green_ratio)
    lines += ["", "## Binary Friendliness Index (X1)", "", f"Definition: {bfi_formula}", ""]
    if low is not None:
        lines.append(
            f"Recommended threshold: **BFI >= {low:.3f}** — the lowest BFI of a pair where "
            f"binary reaches recall_at_10 >= {green_recall} and >= {green_ratio}x PQ at "
            f"{'/'.join(map(str, green_bits))} bits"
            + (
                f"; the highest BFI of a pair that does not is {high:.3f}."
                if high is not None
                else "."
            )
        )
    elif bfi.height:
        lines.append(
            f"No pair meets the GREEN bar, so no threshold separates them; the highest BFI "
            f"is {_f(high)}. Phase 3 should treat BFI as descriptive only."
        )
    if {"bfi", "recall_at_10_256"} <= set(bfi.columns) and bfi.height:
        summary = bfi_lib.bfi_summary(bfi)
        lines += [
            "",
            f"Spread over {_count(summary['n_pairs'], 'pair')}: {_f(summary['spread'])} "
            f"({summary['band']}); Spearman rho with recall_at_10 at 256 bits "
            f"{_f(summary['spearman_vs_recall_256'])}. Ranked:",
        ]
    lines += [""] + _table(
        bfi.sort("bfi", descending=True) if "bfi" in bfi.columns else bfi,
        ["dataset", "model", "bfi", "recall_at_10_256"],
    )
    lines += ["", "## Geometry rules (E7/E8, X2)", ""]
    if by_name.get("F3", {}).get("fired"):
        lines.append(
            f"F3 fired ({_numbers(by_name['F3']['numbers'])}): geometry does not predict binary "
            "quality here. No geometry rule is stated; geometry ideas are weak hypotheses."
        )
    elif regression.height:
        fitted = regression.filter(pl.col("status").str.starts_with("fitted"))
        if fitted.height:
            best = fitted.sort("loocv_r2", descending=True, nulls_last=True).row(0, named=True)
            lines.append(
                f"Best predictor: {best['model']} on `{best['target']}`, leave-one-pair-out "
                f"R2 {_f(best['loocv_r2'])} "
                f"(95% CI {_f(best['r2_ci_low'])}..{_f(best['r2_ci_high'])}), "
                f"Spearman rho {_f(best['spearman_rho'])}; coefficients: {best['coefficients']}."
            )
            lines.append(
                "Use these coefficients as a prior for which geometry to change, not as a law: "
                f"n = {best['n_points']} points."
            )
            lines += ["", "Every fitted predictor (leave-one-pair-out; 95% bootstrap CI of R2):"]
            lines += [""] + _table(fitted, list(sections.REGRESSION_COLUMNS))
        else:
            statuses = ", ".join(sorted(set(regression["status"].to_list())))
            lines.append(
                f"No predictor was fitted ({statuses}; at most "
                f"{regression['n_points'].max()} points), so no geometry rule is stated."
            )
    else:
        lines.append("Not evaluated: no regression table yet.")
    lines += ["", "## Adapter baselines (X3)", ""]
    if adapter.height:
        lines += _table(adapter, list(sections.ADAPTER_COLUMNS))
    else:
        lines.append("X3 has not run (or K1 paused it).")
    k2 = by_name.get("K2")
    if k2:
        lines += ["", f"K2: {k2['state']} ({_numbers(k2['numbers'])})."]
    lines += ["", "## Recall against corpus size", ""]
    trend = corpus_ladder.trend(ladder) if ladder is not None else None
    if trend is not None and trend.height:
        lines.append(
            "The same methods at fixed bits on nested subsets of each corpus (every judged "
            "passage kept); `recall_change_per_tenfold` is the least-squares change of "
            "recall_at_10 per tenfold passages, measured between the sizes below only."
        )
        lines += [""] + _table(trend, list(trend.columns))
    else:
        lines.append("No corpus had more than one rung: no trend with corpus size measured.")
    if ladder is not None and (alone := corpus_ladder.single_rung(ladder)):
        lines += ["", alone]
    lines += ["", "## Ranked Phase-3 experiments", ""]
    small = sorted({b["scale"] for b in bands or [] if b.get("small_scale")})
    if small:
        lines += [
            f"These criteria were measured {'; '.join(small)}: below the plan's ~500K-passage "
            "scale, where recall at fixed bits is lower. Confirm each on a full-size corpus "
            "before it becomes a Phase-3 target.",
            "",
        ]
    ideas = phase3_experiments(adapter, results, by_name)
    lines += [
        f"{i}. {text} ({kind}: {points:.1f} points)"
        for i, (points, kind, text) in enumerate(ideas, 1)
    ] or ["(no results yet)"]
    lines += ["", "## GPU and CPU budget", ""]
    lines += _table(ledger, ledger_lib.SHOWN)
    lines += ["", ledger_lib.HOURS_NOTE]
    return "\n".join(lines) + "\n"
