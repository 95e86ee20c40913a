"""E8/X2's fit plan: which targets are predicted from which features, and K3 between the
linear fits and the MLP (if the linear fits find no geometry signal, no MLP is fitted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from phase2_assets.compute.analysis import decisions, predictors

LINEAR_MODELS = ("ridge", "lasso")
PAIR = ["dataset", "model"]


@dataclass(frozen=True)
class Regressions:
    table: pl.DataFrame  # one row per (target, model)
    predictions: pl.DataFrame | None  # held-out predictions of recall_at_10, for the figure
    n_points: int
    k3: decisions.Switch | None


def per_pair(geometry: pl.DataFrame) -> pl.DataFrame:
    """The embedding-level geometry: one row per (dataset, model)."""
    if geometry.height == 0:
        return geometry
    return geometry.unique(subset=PAIR, keep="first", maintain_order=True)


def fit_regressions(
    results: pl.DataFrame,
    geometry: pl.DataFrame,
    bfi: pl.DataFrame,
    *,
    features: list[str],
    seed: int,
    n_bootstrap: int,
    min_points: int,
    thresholds: Any,
) -> Regressions:
    """Three targets, scored by leave-one-(dataset, model)-out CV:

    - recall_at_10 from geometry + log2(bits): the plan's predictor;
    - recall_at_10_within_bits (recall minus the mean at its bit length) from geometry alone:
      geometry's own signal, which F3 and K3 read (bits alone would make any model look
      predictive);
    - BFI from geometry, one point per pair.

    ``thresholds`` is the config's ``kill_switches:`` section (K3's bounds)."""
    target = decisions.GEOMETRY_TARGET
    points = predictors.design_table(results, per_pair(geometry), list(features), bfi=bfi)
    geometry_only = [f for f in features if f != "log2_bits"]
    if points.height:
        points = points.with_columns(
            (pl.col("recall_at_10") - pl.col("recall_at_10").mean().over("bits")).alias(target)
        )
    pairs = points.unique(subset=PAIR, keep="first", maintain_order=True)
    fits = [
        ("recall_at_10", points, list(features), PAIR),
        (target, points, geometry_only, PAIR),
        ("bfi", pairs, geometry_only, None),
    ]

    def fit(name, pts, feats, group_by, models):
        return predictors.fit_predictors(
            pts,
            feats,
            name,
            seed=seed,
            n_bootstrap=n_bootstrap,
            min_points=min_points,
            models=models,
            return_predictions=True,
            group_by=group_by,
        )

    linear = {t: fit(t, p, f, g, LINEAR_MODELS) for t, p, f, g in fits if t in p.columns}
    k3 = None
    if target in linear:
        k3 = decisions.k3_predictor_failure(
            linear[target][0], thresholds.k3_r2_below, thresholds.k3_abs_rho_below
        )
    tables, preds = [], []
    for name, pts, feats, group_by in fits:
        if name not in linear:
            continue
        table_t, pred_t = linear[name]
        if k3 is not None and k3.fired:
            table_t = pl.concat([table_t, predictors.blocked_row("mlp", name, pts, k3.rule)])
        else:
            mlp, mlp_pred = fit(name, pts, feats, group_by, ("mlp",))
            table_t = pl.concat([table_t, mlp], how="diagonal_relaxed")
            pred_t = pl.concat([pred_t, mlp_pred], how="diagonal_relaxed")
        tables.append(table_t)
        if name == "recall_at_10":
            preds.append(pred_t)
    return Regressions(
        table=pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame(),
        predictions=pl.concat(preds, how="diagonal_relaxed") if preds else None,
        n_points=points.height,
        k3=k3,
    )
