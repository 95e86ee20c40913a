"""The Exploratory track through dagster.materialize: X3 with K2, K1 pausing it, the ledger, X4.

Two (dataset, model) pairs over the same tiny collection so that K2, judged on the first adapter
pair, can be seen stopping the second.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import polars as pl
import pytest

from phase2_assets.compute.analysis import adapter as adapter_lib
from phase2_assets.config import plan
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study

PAIRS = ("tiny__tiny-bert", "tiny2__tiny-bert")
RESULT_TABLES = ["retrieval_metrics", "corpus_ladder", "geometry", "bfi", "regression", "adapter"]
RESULT_TABLES += ["budget_ledger", "kill_switches", "target_bands", "verdict", "design_memo"]


def _study(tmp_path, tiny_beir, tiny_model, *, adapters, **overrides):
    return write_tiny_study(
        tmp_path / "tiny.yaml",
        tiny_beir,
        tiny_model,
        datasets={
            "tiny": {"path": str(tiny_beir), "split": "test"},
            "tiny2": {"path": str(tiny_beir), "split": "test"},
        },
        tiers={
            "tier1": {
                "datasets": ["tiny", "tiny2"],
                "models": ["tiny-bert"],
                "bits": [16, 32],
                "pq_bytes": [2, 4],
            }
        },
        methods={"extra": ["itq"]},
        exploratory={"adapter_pairs": list(PAIRS), "adapter_bits": [32], "adapters": adapters},
        **overrides,
    )


def _materialize(defs, keys, partition_key=None, instance=None):
    return dg.materialize(
        assets=list(defs.assets),
        selection=keys,
        partition_key=partition_key,
        resources=dict(defs.resources),
        instance=instance,
        raise_on_error=False,
    )


def _core(study, defs, instance):
    for dataset in study.dataset_names():
        assert gh.materialize(defs, "dataset", dataset, instance).success
    for pair in study.pairs():
        assert gh.materialize(defs, "pair", pair, instance).success
    for key in plan.partition_keys(study, "bits"):
        assert gh.materialize(defs, "bits", key, instance).success


def _results(defs, instance):
    keys = [dg.AssetKey(["results", name]) for name in RESULT_TABLES]
    assert _materialize(defs, keys, instance=instance).success


QUICK = {"epochs": 3, "train_size": 256, "anchors": 64, "neighbours": 10, "negatives": 10}


@pytest.fixture(scope="module")
def k2_fired(tmp_path_factory, tiny_beir, tiny_model):
    """First config cannot learn (lr = 0: gain exactly 0 points), so K2 fires."""
    root = tmp_path_factory.mktemp("k2")
    adapters = [
        {"name": "frozen", "kind": "linear", "lr": 0.0, **QUICK},
        {"name": "second", **QUICK},
    ]
    path = _study(root, tiny_beir, tiny_model, adapters=adapters)
    study, defs = gh.build(path, root / "data")
    instance = dg.DagsterInstance.ephemeral()
    _core(study, defs, instance)
    seen = []
    real = adapter_lib.train_adapter

    def spy(corpus, train_queries, bits, config, **kwargs):
        seen.append((corpus.shape, train_queries, config.name))
        return real(corpus, train_queries, bits, config, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(adapter_lib, "train_adapter", spy)
    first = _materialize(defs, [dg.AssetKey("adapter_metrics")], PAIRS[0], instance)
    second = _materialize(defs, [dg.AssetKey("adapter_metrics")], PAIRS[1], instance)
    mp.undo()
    _results(defs, instance)
    return root / "data", first, second, seen


def test_k2_stops_the_second_configuration_and_the_other_pairs(k2_fired):
    data, first, second, seen = k2_fired
    assert first.success
    table = pl.read_parquet(data / "adapter_metrics" / f"{PAIRS[0]}.parquet")
    assert table["adapter"].to_list() == ["frozen"]  # "second" never ran
    assert table["points_gained"].to_list() == [0.0]
    assert [name for _, _, name in seen] == ["frozen"]
    gate = {
        s["name"]: s
        for s in json.loads((data / "results" / "kill_switches.json").read_text())["switches"]
    }
    assert gate["K2"]["fired"] and gate["K2"]["numbers"]["first_gain_pp"] == 0.0
    assert not second.success  # the second adapter pair is stopped before any training
    failure = second.failure_data_for_node("adapter_metrics").user_failure_data
    assert "Blocked by kill-switch K2" in failure.description


def test_evaluation_queries_never_reach_the_adapter(k2_fired):
    _, _, _, seen = k2_fired
    for corpus_shape, train_queries, _ in seen:
        assert corpus_shape == (300, 32)  # the corpus, and only the corpus
        assert train_queries is None  # no query vectors at all: pseudo-queries from the corpus


def test_adapter_table_has_pq_and_itq_at_the_same_bits_and_the_gap(k2_fired):
    data = k2_fired[0]
    table = pl.read_parquet(data / "results" / "adapter.parquet")
    row = table.row(0, named=True)
    results = pl.read_parquet(data / "results" / "retrieval_metrics.parquet")
    pq = results.filter(
        (pl.col("dataset") == "tiny") & (pl.col("method") == "pq") & (pl.col("bits") == 32)
    )
    assert row["pq_recall_at_10"] == pq["recall_at_10"][0]
    assert row["itq_recall_at_10"] is not None
    expected = adapter_lib.gap_closed(
        row["baseline_recall_at_10"], row["adapted_recall_at_10"], row["pq_recall_at_10"]
    )
    assert row["gap_closed"] == pytest.approx(expected, nan_ok=True)


def test_ledger_sums_the_instance_records_and_the_memo_is_written(k2_fired):
    data = k2_fired[0]
    ledger = {
        r["experiment"]: r
        for r in pl.read_parquet(data / "results" / "budget_ledger.parquet").iter_rows(named=True)
    }
    assert ledger["E1"]["materialisations"] == 4  # corpus + queries for two pairs
    assert ledger["X3"]["materialisations"] == 1
    assert ledger["E1"]["gpu_hours"] == 0.0 and ledger["E1"]["cpu_hours"] > 0
    memo = (data / "results" / "design_memo.md").read_text()
    for heading in (
        "Kill-switches",
        "Binary Friendliness Index",
        "Adapter baselines",
        "Ranked Phase-3",
    ):
        assert heading in memo
    assert "| K2 | FIRED |" in memo
    verdict = json.loads((data / "results" / "verdict.json").read_text())
    assert verdict["numbers"]["adapter_gain_pp"] == 0.0


def test_k2_clear_lets_every_configuration_run(tmp_path, tiny_beir, tiny_model):
    adapters = [{"name": "first", **QUICK}, {"name": "second", **QUICK, "kind": "linear"}]
    path = _study(
        tmp_path, tiny_beir, tiny_model, adapters=adapters, kill_switches={"k2_min_gain_pp": -100.0}
    )
    study, defs = gh.build(path, tmp_path / "data")
    _core(study, defs, None)
    assert _materialize(defs, [dg.AssetKey("adapter_metrics")], PAIRS[0]).success
    table = pl.read_parquet(tmp_path / "data" / "adapter_metrics" / f"{PAIRS[0]}.parquet")
    assert table["adapter"].to_list() == ["first", "second"]


def test_k1_pauses_the_adapter_when_core_is_behind_schedule(tmp_path, tiny_beir, tiny_model):
    start = dt.date.today() - dt.timedelta(weeks=11)
    path = _study(
        tmp_path,
        tiny_beir,
        tiny_model,
        adapters=[{"name": "a", **QUICK}],
        start_date=start.isoformat(),
    )
    study, defs = gh.build(path, tmp_path / "data")
    for dataset in study.dataset_names():
        assert gh.materialize(defs, "dataset", dataset).success
    assert gh.materialize(defs, "pair", PAIRS[0]).success  # Core barely started: 0 result rows
    upstream = ["retrieval_metrics", "geometry", "bfi", "regression", "kill_switches"]
    switches = _materialize(defs, [dg.AssetKey(["results", name]) for name in upstream])
    assert switches.success
    k1 = gh.check_evaluations(switches)["results/kill_switches:K1"]
    assert not k1.passed
    blocked = _materialize(defs, [dg.AssetKey("adapter_metrics")], PAIRS[0])
    assert not blocked.success
    failure = blocked.failure_data_for_node("adapter_metrics").user_failure_data
    assert "Blocked by kill-switch K1" in failure.description


def test_a_bad_adapter_config_names_the_adapter_and_the_key(tmp_path, tiny_beir, tiny_model):
    path = _study(tmp_path, tiny_beir, tiny_model, adapters=[{"name": "a", "lossy": 1}])
    with pytest.raises(ValueError, match=r"exploratory\.adapters\[0\].*lossy"):
        gh.build(path, tmp_path / "data")
