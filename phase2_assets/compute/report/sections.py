"""What the study report shows, in order: each section a title, a caption and a figure or table,
all drawn from the result tables."""

from __future__ import annotations

import polars as pl

from phase2_assets.compute.analysis import bfi as bfi_lib
from phase2_assets.compute.analysis import decisions
from phase2_assets.compute.report import figures

REGRESSION_COLUMNS = (
    "target",
    "model",
    "n_points",
    "loocv_r2",
    "loocv_rmse",
    "spearman_rho",
    "r2_ci_low",
    "r2_ci_high",
    "status",
    "note",
)


def report_sections(
    results: pl.DataFrame,
    regression: pl.DataFrame,
    geometry: pl.DataFrame,
    bfi: pl.DataFrame,
    features: list[str],
) -> list[tuple[str, str, object]]:
    sections = [
        (
            "Quality–memory frontier",
            "recall_at_10 against the exact float top-10; x axis is code bytes per vector (fixed "
            "overheads are in the results table).",
            figures.frontier(results),
        ),
        ("Task quality (nDCG@10 against qrels)", "", figures.frontier(results, "ndcg_at_10")),
        (
            "Binary vs PQ at matched memory",
            "ratio = binary / PQ recall_at_10 (F2 reads it)",
            decisions.binary_vs_pq(results),
        ),
        (
            "Results table",
            "data/results/retrieval_metrics.parquet",
            results.drop([c for c in ("n_docs",) if c in results.columns]),
        ),
    ]
    if geometry.height:
        sections += [
            ("Geometry of the embeddings (E7)", "", figures.geometry_panels(geometry, features)),
            ("Hamming distance histograms", "", figures.hamming_histograms(geometry)),
        ]
    if regression.height:
        sections.append(
            (
                "Geometry → quality predictors (E8/X2)",
                "Leave-one-out CV; intervals are seeded bootstrap 95% CIs.",
                regression.select([c for c in REGRESSION_COLUMNS if c in regression.columns]),
            )
        )
    if bfi.height:
        summary = bfi_lib.bfi_summary(bfi)
        sections += [
            (
                "Binary Friendliness Index (X1)",
                f"spread {summary.get('spread', float('nan')):.3f} ({summary.get('band')}); "
                f"Spearman vs recall_at_10@256: {summary.get('spearman_vs_recall_256')}",
                figures.bfi_ranking(bfi),
            ),
            ("BFI table", "", bfi),
        ]
    return sections
