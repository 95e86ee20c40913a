"""Geometry -> quality regressions: a planted relation must be found, noise must not be, and a
handful of points must be refused rather than fitted."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from phase2_assets.compute.analysis import predictors


def _planted(n: int, seed: int = 0) -> pl.DataFrame:
    """y = 0.5 - 0.2 * x1 + N(0, 0.01); x2 is unrelated to y."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    return pl.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "y": 0.5 - 0.2 * x1 + rng.normal(0, 0.01, n),
            "noise": rng.normal(size=n),
        }
    )


def _row(table: pl.DataFrame, model: str) -> dict:
    return table.filter(pl.col("model") == model).row(0, named=True)


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    return predictors.fit_predictors(_planted(30), ["x1", "x2"], "y", seed=0, n_bootstrap=200)


# ---- design_table --------------------------------------------------------------------------------


def _results() -> pl.DataFrame:
    rows = [
        ("scifact", "m1", "binary", 64, 0.30),
        ("scifact", "m1", "binary", 256, 0.55),
        ("scifact", "m1", "pq", 256, 0.70),  # not binary: excluded
        ("scifact", "m1", "float32", 12288, 1.00),  # excluded
        ("nfcorpus", "m1", "binary", 128, 0.40),
        ("nfcorpus", "m2", "binary", 512, 0.80),  # m2 has a null feature: dropped
        ("fiqa", "m1", "binary", 256, 0.50),  # no geometry row: dropped
    ]
    return pl.DataFrame(
        rows, schema=["dataset", "model", "method", "bits", "recall_at_10"], orient="row"
    )


def _geometry() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset": ["scifact", "nfcorpus", "nfcorpus"],
            "model": ["m1", "m1", "m2"],
            "anisotropy_centred": [3.0, 7.0, None],
            "outlier_fraction": [0.01, 0.02, 0.03],
        }
    )


def test_design_table_joins_binary_rows_with_their_geometry():
    feats = ["anisotropy_centred", "outlier_fraction"]
    table = predictors.design_table(_results(), _geometry(), feats)
    assert table.columns == ["dataset", "model", "bits", "log2_bits", *feats, "recall_at_10"]
    assert table.select("dataset", "model", "bits").rows() == [
        ("nfcorpus", "m1", 128),
        ("scifact", "m1", 64),
        ("scifact", "m1", 256),
    ]
    row = table.filter((pl.col("dataset") == "scifact") & (pl.col("bits") == 256)).row(
        0, named=True
    )
    assert row == {
        "dataset": "scifact",
        "model": "m1",
        "bits": 256,
        "log2_bits": 8.0,
        "anisotropy_centred": 3.0,
        "outlier_fraction": 0.01,
        "recall_at_10": 0.55,  # the binary row's recall, not PQ's 0.70
    }
    assert table["log2_bits"].to_list() == [7.0, 6.0, 8.0]


def test_design_table_drops_nan_features_like_nulls():
    geo = _geometry().with_columns(
        outlier_fraction=pl.when(pl.col("dataset") == "nfcorpus")
        .then(float("nan"))
        .otherwise(pl.col("outlier_fraction"))
    )
    table = predictors.design_table(_results(), geo, ["outlier_fraction"])
    assert table["dataset"].unique().to_list() == ["scifact"]


def test_design_table_joins_bfi_per_pair():
    bfi = pl.DataFrame({"dataset": ["scifact"], "model": ["m1"], "bfi": [0.42]})
    table = predictors.design_table(_results(), _geometry(), ["outlier_fraction"], bfi=bfi)
    by_pair = dict(zip(table["dataset"], table["bfi"], strict=True))
    assert table.filter(pl.col("dataset") == "scifact")["bfi"].to_list() == [0.42, 0.42]
    assert by_pair["nfcorpus"] is None  # no BFI for that pair: null, the row stays


def test_design_table_accepts_log2_bits_among_the_features():
    # the study config lists log2_bits with the geometry features; it is not a geometry column
    table = predictors.design_table(_results(), _geometry(), ["outlier_fraction", "log2_bits"])
    assert table.columns.count("log2_bits") == 1
    assert table.height == 4  # nfcorpus/m2 is back: its only null is in an unrequested feature


def test_design_table_rejects_unknown_feature():
    with pytest.raises(ValueError, match="no column"):
        predictors.design_table(_results(), _geometry(), ["intrinsic_dim_90"])


# ---- fit_predictors ------------------------------------------------------------------------------


def test_planted_linear_relation_is_found(planted):
    assert planted["model"].to_list() == ["ridge", "lasso", "mlp"]
    assert planted["status"].unique().to_list() == ["fitted"]
    assert planted["n_points"].to_list() == [30, 30, 30]
    ridge = _row(planted, "ridge")
    assert ridge["loocv_r2"] > 0.9
    assert ridge["spearman_rho"] > 0.9
    assert ridge["spearman_p"] < 1e-6
    # residual noise is 0.01, so the out-of-fold RMSE must be close to it
    assert 0.005 < ridge["loocv_rmse"] < 0.02
    coefs = json.loads(ridge["coefficients"])
    assert coefs["x1"] < 0
    assert abs(coefs["x1"]) > 10 * abs(coefs["x2"])
    # standardised: -0.2 per unit of x1 ~ U(0, 1) is about -0.2 * 0.29 per SD
    assert coefs["x1"] == pytest.approx(-0.2 * np.std(_planted(30)["x1"].to_numpy()), rel=0.1)


def test_planted_lasso_and_mlp_rank_the_real_feature_first(planted):
    lasso = json.loads(_row(planted, "lasso")["coefficients"])
    assert lasso["x1"] < 0 and lasso["x2"] == 0.0  # x2's effect is far below alpha = 0.01
    mlp = _row(planted, "mlp")
    assert mlp["loocv_r2"] > 0.8  # the target scaling lets the network actually train
    importance = json.loads(mlp["coefficients"])
    assert importance["x1"] > 10 * abs(importance["x2"])


def test_bootstrap_intervals_bracket_the_point_estimates(planted):
    for row in planted.iter_rows(named=True):
        assert row["r2_ci_low"] <= row["loocv_r2"] <= row["r2_ci_high"]
        assert row["rho_ci_low"] <= row["spearman_rho"] <= row["rho_ci_high"]
        assert row["r2_ci_high"] - row["r2_ci_low"] > 0  # an actual interval, not a copy


def test_bootstrap_intervals_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    # Perfect predictions: every resample with a non-constant y scores R² = rho = 1.
    assert predictors.bootstrap_intervals(y, y.copy(), 50, 0) == (1.0, 1.0, 1.0, 1.0)
    # Reversed predictions: rho = -1 in every usable resample.
    _, _, rho_low, rho_high = predictors.bootstrap_intervals(y, y[::-1].copy(), 50, 0)
    assert rho_low == rho_high == -1.0
    assert all(math.isnan(v) for v in predictors.bootstrap_intervals(y, y, 0, 0))


def test_spearman_of_constant_predictions_is_nan_not_an_error():
    rho, p = predictors.spearman(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5]))
    assert math.isnan(rho) and math.isnan(p)
    rho, _ = predictors.spearman(np.array([0.1, 0.2, 0.3]), np.array([3.0, 1.0, 2.0]))
    assert rho == pytest.approx(-0.5)


def test_pure_noise_target_is_not_predicted():
    out = predictors.fit_predictors(
        _planted(30), ["x1", "x2"], "noise", seed=0, n_bootstrap=50, models=("ridge", "lasso")
    )
    assert out["model"].to_list() == ["ridge", "lasso"]
    assert (out["loocv_r2"] < 0.2).all()


def test_three_points_are_refused_not_fitted():
    out = predictors.fit_predictors(_planted(3), ["x1", "x2"], "y", seed=0, n_bootstrap=50)
    assert out.height == 3
    assert out["status"].unique().to_list() == ["too_few_points"]
    assert "N = 3" in out["note"][0] and "at least 5" in out["note"][0]
    for col in ("loocv_r2", "loocv_rmse", "spearman_rho", "r2_ci_low", "rho_ci_high"):
        assert out[col].is_nan().all(), col
    assert out["coefficients"].to_list() == ["{}"] * 3


def test_constant_target_is_refused():
    points = _planted(20).with_columns(y=pl.lit(0.61))
    out = predictors.fit_predictors(points, ["x1", "x2"], "y", seed=0, n_bootstrap=50)
    assert out["status"].unique().to_list() == ["constant_target"]
    assert out["loocv_r2"].is_nan().all()


def test_small_n_is_fitted_but_flagged():
    out = predictors.fit_predictors(
        _planted(8), ["x1", "x2"], "y", seed=0, n_bootstrap=50, models=("ridge",)
    )
    row = out.row(0, named=True)
    assert row["status"] == "fitted_small_n"
    assert "N = 8" in row["note"] and "uncertain" in row["note"]
    assert not math.isnan(row["loocv_r2"])


def test_missing_target_rows_are_dropped_and_counted():
    points = _planted(20).with_columns(
        y=pl.when(pl.int_range(pl.len()) < 2).then(None).otherwise(pl.col("y"))
    )
    out = predictors.fit_predictors(points, ["x1"], "y", seed=0, n_bootstrap=20, models=("ridge",))
    assert out["n_points"][0] == 18
    assert "2 point(s)" in out["note"][0]


def test_same_inputs_and_seed_give_the_same_table():
    points = _planted(10, seed=3)
    first = predictors.fit_predictors(points, ["x1", "x2"], "y", seed=7, n_bootstrap=50)
    again = predictors.fit_predictors(points, ["x1", "x2"], "y", seed=7, n_bootstrap=50)
    assert first.equals(again)
    other = predictors.fit_predictors(
        points, ["x1", "x2"], "y", seed=8, n_bootstrap=50, models=("ridge",)
    )
    # the seed drives the bootstrap: a different seed moves the interval, not the fit
    assert other["loocv_r2"][0] == first["loocv_r2"][0]
    assert other["r2_ci_low"][0] != first["r2_ci_low"][0]


def test_bad_arguments_raise():
    points = _planted(10)
    with pytest.raises(ValueError, match="also a feature"):
        predictors.fit_predictors(points, ["x1", "y"], "y", seed=0)
    with pytest.raises(ValueError, match="unknown model"):
        predictors.fit_predictors(points, ["x1"], "y", seed=0, models=("forest",))


def test_leaving_out_whole_groups_removes_the_pair_identity_leak():
    """Points of one (dataset, model) share their features; a per-point LOOCV recognises the pair
    and recalls its level from its other points, a leave-one-group-out CV cannot."""
    rng = np.random.default_rng(1)
    rows = []
    for g in range(8):
        feats = rng.uniform(0, 1, 3)  # unrelated to the level below
        level = rng.uniform(0.2, 0.8)
        for b in range(4):
            rows.append(
                {
                    "dataset": f"d{g}",
                    "model": "m",
                    "bits": 64 << b,
                    "f0": feats[0],
                    "f1": feats[1],
                    "f2": feats[2],
                    "y": level + rng.normal(0, 0.005),
                }
            )
    points = pl.DataFrame(rows)
    features = ["f0", "f1", "f2"]
    per_point = predictors.fit_predictors(
        points, features, "y", seed=0, n_bootstrap=20, models=("ridge",)
    )
    grouped = predictors.fit_predictors(
        points,
        features,
        "y",
        seed=0,
        n_bootstrap=20,
        models=("ridge",),
        group_by=["dataset", "model"],
    )
    assert per_point["loocv_r2"][0] > grouped["loocv_r2"][0] + 0.2
    assert grouped["loocv_r2"][0] < 0.3
    assert grouped["status"][0] == "fitted_small_n" and "N = 8 groups" in grouped["note"][0]
