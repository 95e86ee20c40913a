"""The GPU budget ledger sums planted records exactly and flags an overrun."""

from __future__ import annotations

import pytest

from phase2_assets.compute.report.ledger import PHASE, DeviceRecord, ledger, over_budget

BUDGETS = {"E1": 25.0, "X3": 5.0}


def _rows(table):
    return {r["experiment"]: r for r in table.iter_rows(named=True)}


def test_planted_records_sum_per_experiment_and_for_the_phase():
    records = [
        DeviceRecord("E1", "corpus_embeddings", "msmarco__minilm", "cuda:0", 3600.0, 100.0),
        DeviceRecord("E1", "query_embeddings", "msmarco__minilm", "cuda:0", 1800.0, 50.0),
        DeviceRecord("E1", "corpus_embeddings", "scifact__minilm", "cpu", 7200.0, 14400.0),
        DeviceRecord("X3", "adapter", "msmarco__minilm", "cuda", 900.0, 30.0),
    ]
    rows = _rows(ledger(records, BUDGETS, phase_cap=65.0))
    assert rows["E1"]["gpu_hours"] == pytest.approx(1.5)  # CPU wall time is not GPU time
    assert rows["E1"]["cpu_hours"] == pytest.approx((100 + 50 + 14400) / 3600)
    assert rows["E1"]["materialisations"] == 3
    assert rows["E1"]["budget_used"] == pytest.approx(1.5 / 25)
    assert rows["X3"]["gpu_hours"] == pytest.approx(0.25)
    assert rows[PHASE]["gpu_hours"] == pytest.approx(1.75)
    assert rows[PHASE]["budget_gpu_hours"] == 65.0
    assert all(r["within_budget"] for r in rows.values())
    assert over_budget(ledger(records, BUDGETS, 65.0)) == []


def test_an_overrun_is_flagged_for_the_experiment_and_the_phase():
    records = [DeviceRecord("X3", "adapter", "p", "cuda:0", 6 * 3600.0)]
    table = ledger(records, BUDGETS, phase_cap=5.5)
    assert over_budget(table) == ["X3", PHASE]
    assert _rows(table)["E1"]["materialisations"] == 0  # budgeted, nothing spent yet


def test_unbudgeted_experiments_are_listed_without_a_verdict():
    table = ledger([DeviceRecord("E9", "x", None, "cuda", 60.0)], BUDGETS, 65.0)
    row = _rows(table)["E9"]
    assert row["budget_gpu_hours"] is None and row["within_budget"] is None


def test_negative_seconds_are_refused_naming_the_record():
    with pytest.raises(ValueError, match=r"adapter \[p\]"):
        ledger([DeviceRecord("X3", "adapter", "p", "cpu", -1.0)], BUDGETS, 65.0)


def test_a_rematerialised_partition_counts_once_at_its_latest_cost():
    """Running the same study again must not change the ledger's count or charge twice: the
    newest materialisation of each (asset, partition) is what the results cost."""
    records = [
        DeviceRecord("X3", "adapter", "p", "cuda:0", 3600.0, 10.0, order=5),
        DeviceRecord("X3", "adapter", "p", "cuda:0", 1800.0, 20.0, order=9),  # the rerun
        DeviceRecord("X3", "adapter", "q", "cuda:0", 900.0, 0.0, order=7),
    ]
    row = _rows(ledger(records, BUDGETS, 65.0))["X3"]
    assert row["materialisations"] == 2
    assert row["gpu_hours"] == pytest.approx(0.75)  # 1800 s (the newer of p) + 900 s (q)
    assert row["cpu_hours"] == pytest.approx(20 / 3600)
    assert row["spent_gpu_hours"] == pytest.approx(1.75)  # every materialisation
    assert row["budget_used"] == pytest.approx(0.75 / 5)
