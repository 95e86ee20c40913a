"""The kill-switches of the study as it stands, and how complete its tiers are.

Pure: the result tables, the thresholds (the config's ``kill_switches:`` section, read by
attribute) and the rows the core tier plans go in; the six ``decisions.Switch`` states come out.
The Dagster layer records them, writes the gate file and turns them into asset checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl

from phase2_assets.compute.analysis import decisions, scale

# A fired binding switch stops work through the gate file (an error in the UI); the others are
# warnings that weaken claims (F3) or skip the MLP (K3).
BINDING = ("F1", "F2", "K1", "K2")


def completion(planned: set[tuple[str, str, str, int]], results: pl.DataFrame) -> float | None:
    """The fraction of the planned (dataset, model, method, bits) rows the table holds."""
    if not planned:
        return None
    have = set()
    if results.height:
        have = {
            (d, m, meth, int(b))
            for d, m, meth, b in results.select("dataset", "model", "method", "bits").iter_rows()
        }
    return len(planned & have) / len(planned)


def first_adapter_gain(adapter: pl.DataFrame | None, dataset: str, model: str) -> float | None:
    """Points gained at 256 bits by the first configuration on the first adapter pair (K2)."""
    if adapter is None or adapter.height == 0:
        return None
    rows = adapter.filter(
        (pl.col("dataset") == dataset) & (pl.col("model") == model) & (pl.col("config_index") == 0)
    )
    gains = dict(zip(rows["bits"].to_list(), rows["points_gained"].to_list(), strict=True))
    return decisions.k2_gain(gains)


def best_adapter_gain(adapter: pl.DataFrame | None) -> float | None:
    """The verdict's X3 number: the best points gained at 256 bits (or any bits) anywhere."""
    if adapter is None or adapter.height == 0:
        return None
    at_256 = adapter.filter(pl.col("bits") == 256)
    return float((at_256 if at_256.height else adapter)["points_gained"].max())


def evaluate(
    results: pl.DataFrame,
    regression: pl.DataFrame,
    adapter: pl.DataFrame | None,
    *,
    thresholds: Any,
    core_rows: set[tuple[str, str, str, int]],
    start_date: dt.date | None,
    today: dt.date,
    adapter_pair: tuple[str, str],
    adapter_pair_key: str,
    skipped: pl.DataFrame | None = None,
    full_scale_passages: int | None = None,
) -> list[decisions.Switch]:
    """F1, F2, F3, K1, K2 and K3, in the plan's order. ``skipped``: the planned rows that could
    not be built, with why (``evaluation.skipped_table``); F2 names the PQ ones when it cannot
    be judged for want of PQ rows. Each switch that was evaluated names the corpus sizes it was
    judged on (``judged_on``), with "only" below ``full_scale_passages``."""
    t = thresholds
    states = [
        decisions.f1_binary_collapse(results, t.f1_recall_at_10_512_below),
        decisions.f2_pq_dominance(results, t.f2_binary_over_pq_below, skipped),
        decisions.f3_geometry_non_signal(regression, t.f3_abs_rho_below, t.f3_r2_below),
        decisions.k1_core_behind_schedule(
            completion(core_rows, results),
            start_date,
            today,
            week=t.k1_week,
            min_completion=t.k1_min_tier1_completion,
        ),
        decisions.k2_adapter_no_signal(
            first_adapter_gain(adapter, *adapter_pair), t.k2_min_gain_pp, adapter_pair_key
        ),
        decisions.k3_predictor_failure(regression, t.k3_r2_below, t.k3_abs_rho_below),
    ]
    docs = scale.corpus_range(results)
    if docs is None or full_scale_passages is None:
        return states
    judged_on = scale.note(docs, scale.is_small(docs, full_scale_passages))
    return [
        dataclasses.replace(s, numbers={**s.numbers, "judged_on": judged_on})
        if s.evaluated and s.name != "K1"  # K1 reads the schedule, not the collections
        else s
        for s in states
    ]
