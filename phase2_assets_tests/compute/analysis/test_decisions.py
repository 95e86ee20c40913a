"""Kill-switches fire exactly on their rules; the verdict has one planted case per colour."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from phase2_assets.compute.analysis import decisions


def results(binary: dict[int, float], pq: dict[int, float], pairs=(("scifact", "minilm"),)):
    rows = []
    for dataset, model in pairs:
        rows += [
            {"dataset": dataset, "model": model, "method": "binary", "bits": b, "recall_at_10": r}
            for b, r in binary.items()
        ]
        rows += [
            {"dataset": dataset, "model": model, "method": "pq", "bits": b, "recall_at_10": r}
            for b, r in pq.items()
        ]
    return pl.DataFrame(rows)


def regression(r2: float, rho: float, status: str = "fitted", n: int = 24):
    return pl.DataFrame(
        [
            {
                "model": m,
                "target": "recall_at_10",
                "n_points": n,
                "loocv_r2": r2,
                "spearman_rho": rho,
                "status": status,
            }
            for m in ("ridge", "lasso")
        ]
    )


def test_f1_fires_only_when_every_512_bit_recall_is_below_threshold():
    low = results({512: 0.50}, {512: 0.8}, pairs=(("a", "m"), ("b", "m")))
    assert decisions.f1_binary_collapse(low, 0.55).fired
    mixed = pl.concat([low, results({512: 0.56}, {512: 0.8}, pairs=(("c", "m"),))])
    f1 = decisions.f1_binary_collapse(mixed, 0.55)
    assert not f1.fired and f1.evaluated and f1.numbers["best_recall_at_10"] == 0.56


def test_f1_on_no_512_bit_rows_is_not_evaluated():
    f1 = decisions.f1_binary_collapse(results({256: 0.1}, {}), 0.55)
    assert not f1.evaluated and not f1.fired and f1.state == "not evaluated"


def test_f2_fires_when_binary_is_below_half_of_pq_everywhere():
    assert decisions.f2_pq_dominance(results({64: 0.2, 512: 0.39}, {64: 0.5, 512: 0.8}), 0.5).fired
    f2 = decisions.f2_pq_dominance(results({64: 0.2, 512: 0.41}, {64: 0.5, 512: 0.8}), 0.5)
    assert not f2.fired
    assert f2.numbers["best_ratio"] == pytest.approx(0.41 / 0.8)


def test_f3_and_k3_use_the_best_fit():
    assert decisions.f3_geometry_non_signal(regression(0.05, 0.25), 0.3, 0.1).fired
    assert not decisions.f3_geometry_non_signal(regression(0.05, 0.35), 0.3, 0.1).fired
    assert not decisions.f3_geometry_non_signal(regression(0.15, 0.1), 0.3, 0.1).fired
    assert decisions.k3_predictor_failure(regression(0.01, 0.1), 0.05, 0.2).fired
    assert not decisions.k3_predictor_failure(regression(0.06, 0.1), 0.05, 0.2).fired


def test_geometry_switches_are_not_evaluated_on_too_few_points():
    k3 = decisions.k3_predictor_failure(
        regression(math.nan, math.nan, "too_few_points", 3), 0.05, 0.2
    )
    assert not k3.evaluated and not k3.fired and k3.numbers["n_points"] == 3


def _verdict(res, switches, **kw):
    args = dict(
        tier1_completion=1.0,
        tier2_completion=1.0,
        exploratory_done=True,
        adapter_gain_pp=6.0,
        green_bits=[256, 512],
        green_recall=0.7,
        green_ratio=0.8,
        green_adapter_gain_pp=5.0,
        tier2_mostly_done=0.5,
    )
    args.update(kw)
    return decisions.verdict(res, switches, **args)


def test_verdict_green_when_every_green_condition_holds():
    res = results({256: 0.72, 512: 0.8}, {256: 0.85, 512: 0.9})
    v = _verdict(res, [])
    assert v.colour == "GREEN" and v.final
    assert v.numbers["green_regimes"] == 2


def test_verdict_yellow_when_binary_is_weak_but_tier1_complete():
    res = results({256: 0.5, 512: 0.6}, {256: 0.85, 512: 0.9})
    v = _verdict(res, [decisions.f1_binary_collapse(res, 0.55)])
    assert v.colour == "YELLOW" and v.final
    assert any("no benchmark with binary recall_at_10 >= 0.7" in r for r in v.reasons)


def test_verdict_yellow_when_adapter_missing_even_if_binary_strong():
    res = results({256: 0.72, 512: 0.8}, {256: 0.85, 512: 0.9})
    v = _verdict(res, [], adapter_gain_pp=None)
    assert v.colour == "YELLOW" and "not GREEN: X3 adapter not run" in v.reasons


def test_verdict_red_when_core_switch_fires_and_results_incomplete():
    res = results({512: 0.4}, {512: 0.9})
    switches = [decisions.f1_binary_collapse(res, 0.55), decisions.f2_pq_dominance(res, 0.5)]
    v = _verdict(res, switches, tier1_completion=0.5)
    assert v.colour == "RED"
    assert any("F1, F2" in r for r in v.reasons)


def test_verdict_quantified_failure_is_yellow_not_red():
    res = results({512: 0.4}, {512: 0.9})
    v = _verdict(res, [decisions.f1_binary_collapse(res, 0.55)], tier1_completion=1.0)
    assert v.colour == "YELLOW" and v.final


def test_incomplete_tier1_without_switches_is_provisional():
    res = results({256: 0.72, 512: 0.8}, {256: 0.85, 512: 0.9})
    v = _verdict(res, [], tier1_completion=0.4)
    assert v.colour == "YELLOW" and not v.final


def test_a_study_without_expansion_tiers_can_still_be_green():
    res = results({256: 0.72, 512: 0.8}, {256: 0.85, 512: 0.9})
    assert _verdict(res, [], tier2_completion=None).colour == "GREEN"
    v = _verdict(res, [], tier2_completion=0.2)
    assert v.colour == "YELLOW" and "not GREEN: Tier-2 core not mostly done (20% done)" in v.reasons


# ---- K1, K2 --------------------------------------------------------------------------------------

START = dt.date(2026, 9, 1)


@pytest.mark.parametrize(
    ("completion", "today", "fired"),
    [
        (0.5, START + dt.timedelta(weeks=10), True),  # due today and behind
        (0.79, START + dt.timedelta(weeks=12), True),
        (0.8, START + dt.timedelta(weeks=12), False),  # exactly on the threshold
        (0.1, START + dt.timedelta(weeks=9, days=6), False),  # behind, but not yet due
    ],
)
def test_k1_fires_only_when_due_and_behind(completion, today, fired):
    switch = decisions.k1_core_behind_schedule(
        completion, START, today, week=10, min_completion=0.8
    )
    assert switch.evaluated and switch.fired is fired
    assert switch.numbers["due_date"] == "2026-11-10"


def test_k1_without_a_start_date_is_not_evaluated():
    switch = decisions.k1_core_behind_schedule(
        0.0, None, dt.date(2030, 1, 1), week=10, min_completion=0.8
    )
    assert not switch.evaluated and not switch.fired and switch.state == "not evaluated"


@pytest.mark.parametrize(("gain", "fired"), [(0.99, True), (1.0, False), (-3.0, True), (7, False)])
def test_k2_fires_below_one_point(gain, fired):
    switch = decisions.k2_adapter_no_signal(gain, 1.0, "msmarco__minilm")
    assert switch.evaluated and switch.fired is fired


def test_k2_before_any_adapter_is_not_evaluated():
    assert not decisions.k2_adapter_no_signal(None, 1.0, "x").evaluated


def test_a_switch_that_cannot_be_judged_says_why_and_the_verdict_names_it():
    k1 = decisions.k1_core_behind_schedule(
        1.0, None, dt.date(2026, 1, 1), week=10, min_completion=0.8
    )
    assert k1.state == "not evaluated" and "no start_date" in k1.why_not
    f3 = decisions.f3_geometry_non_signal(pl.DataFrame(), 0.3, 0.1)
    assert not f3.evaluated and f3.why_not == "no regression fitted yet"
    k2 = decisions.k2_adapter_no_signal(None, 1.0, "scifact__minilm")
    assert k2.why_not == "the adapter has not run on scifact__minilm yet"
    res = results({256: 0.72, 512: 0.8}, {256: 0.85, 512: 0.9})
    v = _verdict(res, [k1, f3])
    named = [r for r in v.reasons if "not evaluated" in r]
    assert len(named) == 2 and named[0].startswith("K1 not evaluated (no start_date")
    assert "until it can be judged it does not stop the Exploratory track" in named[0]
    clear = decisions.f1_binary_collapse(res, 0.55)
    assert clear.evaluated and clear.why_not == ""
