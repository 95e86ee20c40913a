"""The study's one plan, walked on paper: level order, the gates, X3's order, stopping."""

from __future__ import annotations

import pytest

from phase2_assets.config import load_study, plan
from phase2_assets.config.plan import Request
from phase2_assets.testing.tiny import write_tiny_study

PAIR, PAIR2 = "tiny__a", "tiny__b"
GATE = Request("results", None, plan.GATE_TABLES)


@pytest.fixture
def study(tmp_path):
    (tmp_path / "m").mkdir()
    path = write_tiny_study(
        tmp_path / "s.yaml",
        tmp_path,
        tmp_path / "m",
        models={m: {"name": f"tests/{m}", "path": str(tmp_path / "m"), "dim": 32} for m in "ab"},
        tiers={
            "tier1": {"datasets": ["tiny"], "models": ["a"], "bits": [8, 16], "pq_bytes": [1]},
            "tier2": {"datasets": ["tiny"], "models": ["b"], "bits": [32], "pq_bytes": [4]},
        },
        exploratory={"adapter_pairs": [PAIR, PAIR2]},
    )
    return load_study(str(path))


def switch(name, fired=False, evaluated=True):
    return {"name": name, "rule": "r", "numbers": {"x": 1}, "evaluated": evaluated, "fired": fired}


def test_a_tier_runs_level_by_level_then_its_kill_switch_tables(study):
    done: set[Request] = set()
    seen = []
    while (nxt := plan.next_runs(study, "tier1", done.__contains__, {})).requests:
        seen.append(nxt.requests)
        done.update(nxt.requests)
    assert seen == [
        (Request("dataset", "tiny"),),
        (Request("pair", PAIR),),
        (Request("bits", f"8|{PAIR}"), Request("bits", f"16|{PAIR}")),
        (GATE,),
    ]
    assert (nxt.state, nxt.reason) == ("complete", "tier1 is complete")


def test_an_expansion_tier_waits_for_the_gate_pass_and_stops_when_a_switch_fired(study):
    never = set().__contains__
    waiting = plan.next_runs(study, "tier2", never, {})
    assert waiting.state == "wait" and "kill-switch tables" in waiting.reason
    # Judged and clear (F1 could not be evaluated: no 512-bit rows): the tier runs.
    clear = {"F1": switch("F1", evaluated=False), "F2": switch("F2")}
    assert plan.next_runs(study, "tier2", never, clear).requests == (Request("dataset", "tiny"),)
    stopped = plan.next_runs(study, "tier2", never, {**clear, "F2": switch("F2", fired=True)})
    assert stopped.state == "stopped" and not stopped.requests
    assert stopped.reason == "Blocked by kill-switch F2: tier2 is stopped. F2: r ({'x': 1})"


def tiers_done(study) -> set[Request]:
    """Every request of the core and expansion tiers: what X3's study-wide tables wait for."""
    done = {GATE}
    for level in ("dataset", "pair", "bits"):
        done |= {Request(level, k) for k in plan.partition_keys(study, level)}
    return done


CLEAR = {"F1": switch("F1"), "F2": switch("F2")}


def test_x3_runs_the_first_pair_first_and_k2_stops_the_rest(study):
    embedded = tiers_done(study)
    first = plan.next_runs(study, "tier3", embedded.__contains__, CLEAR)
    assert first.requests == (Request("adapter", PAIR),)
    done = embedded | {Request("adapter", PAIR)}
    assert plan.next_runs(study, "tier3", done.__contains__, CLEAR).requests == (
        Request("adapter", PAIR2),
    )
    k2_fired = {**CLEAR, "K2": switch("K2", fired=True)}
    k2 = plan.next_runs(study, "tier3", done.__contains__, k2_fired)
    assert k2.requests == (Request("results"),)
    assert k2.reason.startswith("Blocked by kill-switch K2: X3 is stopped.")
    finished = done | {Request("adapter", PAIR2), Request("results")}
    assert plan.next_runs(study, "tier3", finished.__contains__, CLEAR).state == "complete"


def test_the_study_wide_tables_wait_for_every_tier_when_the_sensors_run_at_once(study):
    """With every tier's sensor on, X3's last run (the study-wide tables, run once per config)
    must not come before tier2's bit partitions, or the report would lack them for good."""
    adapters = {Request("adapter", PAIR), Request("adapter", PAIR2)}
    partial = (tiers_done(study) | adapters) - {Request("bits", f"32|{PAIR2}")}
    waiting = plan.next_runs(study, "tier3", partial.__contains__, CLEAR)
    assert (waiting.state, waiting.requests) == ("wait", ())
    assert waiting.reason == "the study-wide tables wait for tier2 to complete"
    everything = partial | {Request("bits", f"32|{PAIR2}")}
    assert plan.next_runs(study, "tier3", everything.__contains__, CLEAR).requests == (
        Request("results"),
    )


def test_x3_waits_for_embeddings_and_skips_pairs_a_fired_gate_keeps_out(study):
    only_core = {Request("pair", PAIR)}
    wait = plan.next_runs(study, "tier3", only_core.__contains__, {})
    assert wait.state == "wait" and wait.reason == f"X3 waits for the embeddings of {PAIR2}"
    fired = {"F1": switch("F1", fired=True), "F2": switch("F2")}
    assert plan.next_runs(study, "tier3", only_core.__contains__, fired).requests == (
        Request("adapter", PAIR),
    )
    k1 = {**CLEAR, "K1": switch("K1", fired=True)}
    assert plan.next_runs(study, "tier3", tiers_done(study).__contains__, k1).requests == (
        Request("results"),
    )


def test_follow_walks_every_tier_in_order_and_stops_at_the_first_failure(study):
    ran, said = [], []

    def execute(request):
        ran.append(request)
        return True

    gates = {"F1": switch("F1"), "F2": switch("F2")}
    assert plan.follow(study, lambda: gates, execute, said.append) == []
    assert ran[:4] == [
        Request("dataset", "tiny"),
        Request("pair", PAIR),
        Request("bits", f"8|{PAIR}"),
        Request("bits", f"16|{PAIR}"),
    ]
    assert ran[4] == GATE and ran[-1] == Request("results")
    assert Request("pair", PAIR2) in ran and Request("adapter", PAIR2) in ran
    assert said[0] == "tier1: 1 dataset partitions"

    ran.clear()
    failing = Request("pair", PAIR)
    assert plan.follow(study, lambda: gates, lambda r: ran.append(r) or r != failing) == [failing]
    assert ran == [Request("dataset", "tiny"), failing]  # nothing after the failed level


def test_planned_rows_come_from_the_registry(study):
    rows = plan.planned_result_rows(study, ["tier1"])
    methods = {m for _, _, m, _ in rows}
    from phase2_assets.compute.methods import METHODS

    # Every registered method applies somewhere on tier1, but those that keep whole float32
    # dimensions (b/32 of them): tier1's code lengths are 8 and 16 bits.
    assert methods == set(METHODS) - {"truncate", "pca_float"}
    tier2 = {m for _, _, m, _ in plan.planned_result_rows(study, ["tier2"])}
    assert {"truncate", "pca_float"} <= tier2  # 32 bits: one float32 dimension
    assert ("tiny", "a", "float32", 32 * 32) in rows and ("tiny", "a", "pq", 8) in rows
    assert ("tiny", "a", "opq", 8) in rows  # OPQ follows the PQ sizes ...
    assert ("tiny", "a", "opq", 16) not in rows  # ... not the code lengths
    assert ("tiny", "a", "sign_centered", 32) in rows  # a reference row: d bits
    core = plan.planned_result_rows(study, ["tier1"], core_only=True)
    assert {m for _, _, m, _ in core} == {"float32", "int8", "binary", "pq"}
    assert len(core) == 2 + 2 + 1
