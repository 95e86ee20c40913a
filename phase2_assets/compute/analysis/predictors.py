"""Does embedding geometry predict binary quality? (E8 / X2)

The study has few points (one per dataset x model x bits), so the question is answered with
leave-one-out out-of-fold predictions and honest uncertainty, not with in-sample fits:

- ``loocv_r2`` = sklearn ``r2_score(y, pred)`` over all out-of-fold predictions at once;
  ``loocv_rmse`` = sqrt(mean((y - pred)²)); ``spearman_rho``/``spearman_p`` = scipy ``spearmanr``.
- ``r2_ci_*`` / ``rho_ci_*``: 2.5 / 97.5 percentiles over ``n_bootstrap`` resamples (with
  replacement, ``np.random.default_rng(seed)``) of the (y, out-of-fold prediction) pairs. They are
  intervals of the LOOCV scores, *not* of refitted models: the models are not refitted per
  resample. Every model sees the same resamples, so their intervals are comparable; resamples
  where a score is undefined (constant y or constant predictions) are skipped.

Models, each after a ``StandardScaler`` (so coefficients are per standard deviation of a feature):

- ``ridge``: ``RidgeCV(alphas=logspace(-3, 3, 13))``; alpha is re-chosen inside every fold by
  RidgeCV's efficient leave-one-out, so selecting it does not leak the held-out point.
- ``lasso``: ``Lasso(alpha=0.01, max_iter=10000)`` with a *fixed* alpha. Choosing alpha by an
  inner CV inside each leave-one-out fold would be a nested CV on a few dozen points: slow and
  itself noisy. On standardised features the penalty shrinks each coefficient by about 0.01
  target units per standard deviation and roughly zeroes features whose effect is smaller (for
  recall in [0, 1]: under one point of recall per SD), so it reads as "which features matter".
- ``mlp``: ``MLPRegressor(hidden_layer_sizes=(8,), max_iter=5000, random_state=seed)`` whose
  target is standardised too (``TransformedTargetRegressor``): with recall@10 spread over ~0.1,
  adam's stopping rule (loss improving by less than ``tol`` = 1e-4 per epoch) fires while the
  fit is still worse than predicting the mean, and an untrained network would be reported as
  "no signal". Its ``coefficients`` are permutation importances (mean drop in R², 5 repeats,
  ``random_state=seed``) of the model fitted on all points, measured on those same points.

Below ``min_points`` points, or with a constant target, nothing is fitted: the three rows carry NaN
scores and a status saying why, so a downstream reader can never mistake "not evaluable" for
"no signal".
"""

from __future__ import annotations

import json
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:  # scikit-learn and scipy.stats are imported where they run: this module is
    from sklearn.pipeline import Pipeline  # loaded with the code location, where they cost ~1.5 s

MODELS = ("ridge", "lasso", "mlp")
RIDGE_ALPHAS = np.logspace(-3, 3, 13)
LASSO_ALPHA = 0.01
SMALL_N = 12  # below this a fit is reported as "fitted_small_n"
PERMUTATION_REPEATS = 5
KEYS = ["dataset", "model"]

SCHEMA = {
    "model": pl.String,
    "target": pl.String,
    "n_points": pl.Int64,
    "n_features": pl.Int64,
    "loocv_r2": pl.Float64,
    "loocv_rmse": pl.Float64,
    "spearman_rho": pl.Float64,
    "spearman_p": pl.Float64,
    "r2_ci_low": pl.Float64,
    "r2_ci_high": pl.Float64,
    "rho_ci_low": pl.Float64,
    "rho_ci_high": pl.Float64,
    "coefficients": pl.String,
    "status": pl.String,
    "note": pl.String,
}
_SCORES = [c for c, t in SCHEMA.items() if t == pl.Float64]


# ---- the design table ----------------------------------------------------------------------------


def design_table(
    results: pl.DataFrame,
    geometry: pl.DataFrame,
    features: list[str],
    *,
    bfi: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One point per binary (dataset, model, bits): geometry features, ``log2_bits``, targets.

    Columns: dataset, model, bits, log2_bits, *features, recall_at_10 (and ``bfi`` when given,
    one value per (dataset, model), repeated over that pair's bits). A point whose pair has no
    geometry row, or a null/NaN in any requested feature, is dropped. For the ``bfi`` target keep
    one row per pair (e.g. filter one ``bits``) or the same value is counted once per bit length.
    """
    geo_features = [f for f in features if f != "log2_bits"]
    missing = [f for f in geo_features if f not in geometry.columns]
    if missing:
        raise ValueError(f"geometry table has no column(s) {missing}")
    binary = results.filter(pl.col("method") == "binary").select(
        *KEYS, pl.col("bits").cast(pl.Int64), pl.col("recall_at_10").cast(pl.Float64)
    )
    _require_unique(binary, [*KEYS, "bits"], "binary results")
    geo = geometry.select(*KEYS, *[pl.col(f).cast(pl.Float64).fill_nan(None) for f in geo_features])
    _require_unique(geo, KEYS, "geometry")
    points = (
        binary.join(geo, on=KEYS, how="inner")
        .drop_nulls(subset=geo_features)
        .with_columns(log2_bits=pl.col("bits").cast(pl.Float64).log(2))
        .select(*KEYS, "bits", "log2_bits", *geo_features, "recall_at_10")
    )
    if bfi is not None:
        scores = bfi.select(*KEYS, pl.col("bfi").cast(pl.Float64))
        _require_unique(scores, KEYS, "bfi")
        points = points.join(scores, on=KEYS, how="left")
    return points.sort(*KEYS, "bits")


def _require_unique(table: pl.DataFrame, keys: list[str], what: str) -> None:
    if table.select(keys).is_duplicated().any():
        raise ValueError(f"{what} has more than one row per ({', '.join(keys)})")


# ---- the fits ------------------------------------------------------------------------------------


def _pipeline(name: str, seed: int) -> Pipeline:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Lasso, RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = {
        "ridge": lambda: RidgeCV(alphas=RIDGE_ALPHAS),
        "lasso": lambda: Lasso(alpha=LASSO_ALPHA, max_iter=10000),
        "mlp": lambda: TransformedTargetRegressor(
            regressor=MLPRegressor(hidden_layer_sizes=(8,), max_iter=5000, random_state=seed),
            transformer=StandardScaler(),
        ),
    }[name]()
    return Pipeline([("scale", StandardScaler()), ("fit", estimator)])


def spearman(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(rho, p); NaN for constant input instead of a warning or a crash."""
    from scipy import stats

    if np.ptp(y) == 0 or np.ptp(pred) == 0:
        return math.nan, math.nan
    res = stats.spearmanr(y, pred)
    return float(res.statistic), float(res.pvalue)


def _rowwise_r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss_res = ((y - pred) ** 2).sum(axis=1)
    ss_tot = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    out = np.full(len(y), np.nan)
    ok = ss_tot > 0
    out[ok] = 1.0 - ss_res[ok] / ss_tot[ok]
    return out


def _rowwise_spearman(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Spearman per row: Pearson of average ranks (what ``spearmanr`` computes)."""
    from scipy import stats

    a = stats.rankdata(y, axis=1)
    b = stats.rankdata(pred, axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    out = np.full(len(y), np.nan)
    ok = den > 0
    out[ok] = (a * b).sum(axis=1)[ok] / den[ok]
    return out


def _interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_intervals(
    y: np.ndarray, pred: np.ndarray, n_bootstrap: int, seed: int
) -> tuple[float, float, float, float]:
    """(r2_low, r2_high, rho_low, rho_high) from resampling the (y, pred) pairs."""
    if n_bootstrap <= 0 or len(y) == 0:
        return math.nan, math.nan, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_bootstrap, len(y)))
    yb, pb = y[idx], pred[idx]
    return (*_interval(_rowwise_r2(yb, pb)), *_interval(_rowwise_spearman(yb, pb)))


def _coefficients(
    name: str, fitted: Pipeline, x: np.ndarray, y: np.ndarray, seed: int
) -> list[float]:
    if name == "mlp":
        from sklearn.inspection import permutation_importance

        imp = permutation_importance(
            fitted, x, y, n_repeats=PERMUTATION_REPEATS, random_state=seed
        ).importances_mean
        return imp.tolist()
    return fitted.named_steps["fit"].coef_.tolist()


def _model_note(name: str, fitted: Pipeline, coefs: list[float]) -> str:
    if name == "ridge":
        return f"alpha = {fitted.named_steps['fit'].alpha_:g} (RidgeCV, full fit)"
    if name == "lasso":
        zero = sum(1 for c in coefs if c == 0.0)
        return f"fixed alpha = {LASSO_ALPHA:g}; {zero} of {len(coefs)} coefficients are zero"
    return "coefficients are permutation importances (R² drop) on the training points"


def _fit_one(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    seed: int,
    n_bootstrap: int,
    groups: np.ndarray | None = None,
) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.model_selection import LeaveOneGroupOut, LeaveOneOut, cross_val_predict

    cv = LeaveOneOut() if groups is None else LeaveOneGroupOut()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pred = cross_val_predict(_pipeline(name, seed), x, y, cv=cv, groups=groups)
        fitted = _pipeline(name, seed).fit(x, y)
        coefs = _coefficients(name, fitted, x, y, seed)
    notes = [_model_note(name, fitted, coefs)]
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append("the optimiser did not fully converge in at least one fit")
    rho, p = spearman(y, pred)
    if math.isnan(rho):
        notes.append("out-of-fold predictions are constant: Spearman rho is undefined")
    r2_low, r2_high, rho_low, rho_high = bootstrap_intervals(y, pred, n_bootstrap, seed)
    return {
        "loocv_r2": float(r2_score(y, pred)),
        "loocv_rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
        "spearman_rho": rho,
        "spearman_p": p,
        "r2_ci_low": r2_low,
        "r2_ci_high": r2_high,
        "rho_ci_low": rho_low,
        "rho_ci_high": rho_high,
        "coefficients": json.dumps(dict(zip(features, coefs, strict=True))),
        "note": "; ".join(notes),
        "predictions": pred,
    }


def _not_fitted(n: int, min_points: int, y: np.ndarray) -> tuple[str, str] | None:
    """(status, note) when the points cannot support a fit, else None."""
    if n < min_points:
        return (
            "too_few_points",
            f"N = {n} points: at least {min_points} are needed for a leave-one-out fit to mean "
            "anything",
        )
    if np.ptp(y) == 0:
        return "constant_target", f"the target is the same ({y[0]:g}) at all {n} points"
    return None


def _clean_points(points: pl.DataFrame, features: list[str], target: str) -> pl.DataFrame:
    if not features:
        raise ValueError("no features given")
    if target in features:
        raise ValueError(f"target {target!r} is also a feature")
    missing = [c for c in [*features, target] if c not in points.columns]
    if missing:
        raise ValueError(f"points table has no column(s) {missing}")
    keys = [c for c in ("dataset", "model", "bits") if c in points.columns and c not in features]
    cols = [pl.col(c).cast(pl.Float64).fill_nan(None) for c in [*features, target]]
    return points.select([*keys, *cols]).drop_nulls([*features, target])


def fit_predictors(
    points: pl.DataFrame,
    features: list[str],
    target: str,
    *,
    seed: int,
    n_bootstrap: int = 1000,
    min_points: int = 5,
    models: tuple[str, ...] = MODELS,
    return_predictions: bool = False,
    group_by: list[str] | None = None,
) -> pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame]:
    """One row per model (default ``MODELS``): LOOCV scores, bootstrap intervals, coefficients.

    Points with a null/NaN feature or target are dropped first (``n_points`` counts the rest).
    ``models`` can leave the MLP out, e.g. once K3 has fired and only the linear fits continue.
    With ``return_predictions`` the out-of-fold predictions come too (model, target, label,
    actual, predicted), for the predicted-vs-actual figure.

    ``group_by`` (e.g. ["dataset", "model"]) leaves out one group at a time instead of one point:
    points of the same (dataset, model) share their geometry features, so leaving out a single
    bit length would let a model recognise the pair from its features and recall its level from
    the other bit lengths, an optimistic leak.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {list(MODELS)}")
    clean = _clean_points(points, features, target)
    x = clean.select(features).to_numpy().astype(np.float64)
    y = clean[target].to_numpy().astype(np.float64)
    n = len(y)
    dropped = points.height - n
    base = {"target": target, "n_points": n, "n_features": len(features)}
    groups = None
    if group_by:
        groups = np.array([" × ".join(map(str, r)) for r in clean.select(group_by).iter_rows()])
        if len(set(groups.tolist())) < min_points:
            n_groups = len(set(groups.tolist()))
            refusal = (
                "too_few_points",
                f"N = {n_groups} groups ({', '.join(group_by)}): at least {min_points} are needed "
                "for a leave-one-group-out fit to mean anything",
            )
        else:
            refusal = _not_fitted(n, min_points, y)
    else:
        refusal = _not_fitted(n, min_points, y)
    rows, predictions = [], []
    labels = _labels(clean)
    for name in models:
        if refusal is not None:
            status, note = refusal
            scores = {c: math.nan for c in _SCORES} | {"coefficients": "{}", "note": note}
        else:
            scores = _fit_one(name, x, y, features, seed, n_bootstrap, groups)
            pred = scores.pop("predictions")
            predictions += [
                {"model": name, "target": target, "label": lab, "actual": a, "predicted": p}
                for lab, a, p in zip(labels, y.tolist(), pred.tolist(), strict=True)
            ]
            # Independent units: the groups left out in turn, or the points themselves.
            n_units = n if groups is None else len(set(groups.tolist()))
            unit = "points" if groups is None else f"groups ({', '.join(group_by)})"
            status = "fitted" if n_units >= SMALL_N else "fitted_small_n"
            if status == "fitted_small_n":
                scores["note"] = (
                    f"N = {n_units} {unit}: the estimates are very uncertain, read the "
                    f"bootstrap intervals rather than the point scores; {scores['note']}"
                )
        if dropped:
            scores["note"] += f"; {dropped} point(s) with a missing feature or target dropped"
        rows.append({"model": name, **base, **scores, "status": status})
    table = pl.DataFrame(rows, schema=SCHEMA)
    if not return_predictions:
        return table
    return table, pl.DataFrame(predictions, schema=PREDICTION_SCHEMA)


PREDICTION_SCHEMA = {
    "model": pl.String,
    "target": pl.String,
    "label": pl.String,
    "actual": pl.Float64,
    "predicted": pl.Float64,
}


def _labels(points: pl.DataFrame) -> list[str]:
    keys = [c for c in ("dataset", "model", "bits") if c in points.columns]
    if not keys:
        return [str(i) for i in range(points.height)]
    return [" × ".join(str(v) for v in row) for row in points.select(keys).iter_rows()]


def blocked_row(model: str, target: str, points: pl.DataFrame, reason: str) -> pl.DataFrame:
    """The row of a model that a kill-switch stopped: no scores, and why."""
    row = {c: math.nan for c in _SCORES} | {
        "model": model,
        "target": target,
        "n_points": points.height,
        "n_features": 0,
        "coefficients": "{}",
        "status": "blocked_by_K3",
        "note": f"not fitted: K3 fired ({reason})",
    }
    return pl.DataFrame([row], schema=SCHEMA)
