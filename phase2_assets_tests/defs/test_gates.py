"""Kill-switches fire on planted results, and their gates stop the work they name in later runs."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import polars as pl
import pytest

from phase2_assets.cli import main
from phase2_assets.defs.storage import gates
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study


def two_tier_study(path, beir, model):
    """tier1: tiny x tiny-bert; tier2 (expansion): tiny x tiny-bert-2 (same weights)."""
    models = {
        "tiny-bert": {"name": "tests/tiny-bert", "path": str(model), "dim": 32},
        "tiny-bert-2": {"name": "tests/tiny-bert-2", "path": str(model), "dim": 32},
    }
    tier = {"datasets": ["tiny"], "bits": [8, 16, 32, 64], "pq_bytes": [1, 2, 4, 8]}
    return write_tiny_study(
        path,
        beir,
        model,
        models=models,
        tiers={
            "tier1": {**tier, "models": ["tiny-bert"]},
            "tier2": {**tier, "models": ["tiny-bert-2"]},
        },
    )


def planted_results(recall_512: float, binary_over_pq: float) -> pl.DataFrame:
    rows = []
    for dataset in ("a", "b"):
        for bits in (256, 512):
            binary = recall_512 if bits == 512 else recall_512 - 0.1
            for method, recall in (("binary", binary), ("pq", binary / binary_over_pq)):
                rows.append(
                    {
                        "dataset": dataset,
                        "model": "m",
                        "method": method,
                        "bits": bits,
                        "recall_at_10": recall,
                    }
                )
    return pl.DataFrame(rows)


def _write(data, name, table):
    path = data / "results" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.write_parquet(path)


@pytest.mark.parametrize(
    ("recall_512", "ratio", "fired"),
    [(0.50, 0.9, {"F1"}), (0.80, 0.4, {"F2"}), (0.50, 0.4, {"F1", "F2"}), (0.80, 0.9, set())],
)
def test_core_switches_fire_on_planted_results(
    tmp_path, tiny_beir, tiny_model, recall_512, ratio, fired
):
    study, defs = gh.build(write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model), tmp_path)
    _write(tmp_path, "retrieval_metrics", planted_results(recall_512, ratio))
    _write(tmp_path, "regression", pl.DataFrame())
    result = gh.materialize(defs, "kill_switches")
    assert result.success
    checks = gh.check_evaluations(result)
    assert {n for n in ("F1", "F2") if not checks[f"results/kill_switches:{n}"].passed} == fired
    states = json.loads(gates.gate_path(tmp_path).read_text())["switches"]
    assert {s["name"] for s in states if s["fired"]} == fired
    assert {s["name"]: s["state"] for s in states}["F3"] == "not evaluated"


def test_fired_switch_blocks_expansion_in_a_later_run(tmp_path, tiny_beir, tiny_model):
    study, defs = gh.build(two_tier_study(tmp_path / "s.yaml", tiny_beir, tiny_model), tmp_path)
    _write(tmp_path, "retrieval_metrics", planted_results(0.5, 0.9))
    _write(tmp_path, "regression", pl.DataFrame())
    assert gh.materialize(defs, "kill_switches").success  # F1 fires and closes the gate
    assert gh.materialize(defs, "dataset", "tiny").success

    blocked = gh.materialize(defs, "pair", "tiny__tiny-bert-2")
    assert not blocked.success
    failure = "\n".join(
        e.event_specific_data.error.message for e in blocked.all_events if e.is_step_failure
    )
    assert "Blocked by kill-switch F1" in failure
    assert not (tmp_path / "corpus_embeddings" / "tiny__tiny-bert-2.npy").exists()

    # The core tier is not what F1 stops.
    assert gh.materialize(defs, "pair", "tiny__tiny-bert").success
    # Reopening the gate (results changed) lets the expansion run.
    _write(tmp_path, "retrieval_metrics", planted_results(0.8, 0.9))
    assert gh.materialize(defs, "kill_switches").success
    assert gh.materialize(defs, "pair", "tiny__tiny-bert-2").success


@pytest.mark.slow  # `phase2 run` of a two-tier study
def test_cli_stops_expansion_when_a_core_switch_fires(
    tmp_path, tiny_beir, tiny_model, monkeypatch, capsys
):
    study = two_tier_study(tmp_path / "s.yaml", tiny_beir, tiny_model)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["run", str(study), "--data-dir", str(tmp_path / "data")]) == 0
    # On the tiny random model binary codes trail PQ by more than 2x at every size: F2 fires.
    states = {s["name"]: s for s in gates.read_gates(tmp_path / "data").values()}
    assert states["F2"]["fired"] and states["F2"]["numbers"]["best_ratio"] < 0.5
    out = capsys.readouterr().out
    assert "Blocked by kill-switch F2: tier2 is stopped. F2: " in out
    assert not (tmp_path / "data" / "corpus_embeddings" / "tiny__tiny-bert-2.npy").exists()
    assert (tmp_path / "data" / "results" / "report.html").exists()


def _planted_points(rng, n_pairs, signal: bool):
    geometry = pl.DataFrame(
        {
            "dataset": [f"d{i}" for i in range(n_pairs)],
            "model": ["m"] * n_pairs,
            "anisotropy_centred": rng.uniform(1, 20, n_pairs),
            "outlier_fraction": rng.uniform(0, 0.05, n_pairs),
            "intrinsic_dim_90": rng.integers(50, 300, n_pairs).astype(float),
            "mean_pairwise_cosine": rng.uniform(0, 0.5, n_pairs),
            "angular_spread_deg": rng.uniform(5, 20, n_pairs),
        }
    )
    rows = []
    for i, g in enumerate(geometry.iter_rows(named=True)):
        for bits in (256, 512):
            noise = rng.uniform(0.2, 0.9)
            recall = 0.9 - 0.03 * g["anisotropy_centred"] + 0.05 * (bits == 512)
            value = recall if signal else noise
            rows.append(
                {
                    "dataset": f"d{i}",
                    "model": "m",
                    "method": "binary",
                    "bits": bits,
                    "recall_at_10": value,
                }
            )
            rows.append(
                {
                    "dataset": f"d{i}",
                    "model": "m",
                    "method": "pq",
                    "bits": bits,
                    "recall_at_10": 0.9,
                }
            )
    return pl.DataFrame(rows), geometry


@pytest.mark.parametrize("signal", [False, True])
def test_k3_stops_the_mlp_only_when_it_fires(tmp_path, tiny_beir, tiny_model, signal):
    study, defs = gh.build(write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model), tmp_path)
    results, geometry = _planted_points(np.random.default_rng(0), 10, signal)
    _write(tmp_path, "retrieval_metrics", results)
    _write(tmp_path, "geometry", geometry)
    assert gh.materialize(defs, "bfi_regression").success
    table = pl.read_parquet(tmp_path / "results" / "regression.parquet")
    recall = table.filter(pl.col("target") == "recall_at_10_within_bits")
    linear = recall.filter(pl.col("model").is_in(["ridge", "lasso"]))
    mlp = recall.filter(pl.col("model") == "mlp").row(0, named=True)
    if signal:
        assert linear["loocv_r2"].max() > 0.5
        assert mlp["status"].startswith("fitted")
    else:
        # Pure noise: LOOCV predictions do not track the truth (rho <= 0, R2 < 0).
        assert linear["loocv_r2"].max() < 0.05 and linear["spearman_rho"].max() < 0.2
        assert mlp["status"] == "blocked_by_K3" and "K3 fired" in mlp["note"]


def test_a_switch_that_cannot_be_judged_is_skipped_not_passed(tmp_path, tiny_beir, tiny_model):
    """F3/K3 (no regression), K1 (no start date) and K2 (no adapter run) yield no check result:
    Dagster records them as planned and never executed, so the UI shows them skipped, not a
    green Passed; the asset says how many are in each state, and why."""
    study, defs = gh.build(write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model), tmp_path)
    _write(tmp_path, "retrieval_metrics", planted_results(0.50, 0.9))
    _write(tmp_path, "regression", pl.DataFrame())
    instance = dg.DagsterInstance.ephemeral()
    result = gh.materialize(defs, "kill_switches", instance=instance)
    assert result.success
    judged = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert judged == {"F1": False, "F2": True}
    key = dg.AssetKey(["results", "kill_switches"])
    for name in ("F3", "K1", "K2", "K3"):
        (record,) = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, name), limit=1
        )
        assert record.status.value == "PLANNED"  # planned, never evaluated
    (materialization,) = result.asset_materializations_for_node("kill_switches")
    meta = materialization.metadata
    assert meta["summary"].value == "1 fired, 1 clear, 4 not evaluated"
    assert "| F3 | not evaluated | no regression fitted yet |" in meta["states"].value
