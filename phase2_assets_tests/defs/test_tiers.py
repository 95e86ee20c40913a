"""Tier sensors: each requests its tier's partition set level by level, and waits on the gates."""

from __future__ import annotations

import dagster as dg

from phase2_assets.defs.graph.sensors import tier_plan
from phase2_assets.defs.storage import gates
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study

PAIR = "tiny__tiny-bert"


def _keys(plan) -> list[tuple[str, str | None]]:
    assert isinstance(plan, list), plan
    return [(r.job_name, r.partition_key) for r in plan]


def _evaluate(defs, name: str, instance):
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    return sensor.evaluate_tick(context)


def test_the_tier_sensor_walks_its_levels_then_stops(tmp_path, tiny_beir, tiny_model):
    study, defs = gh.build(write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model), tmp_path)
    instance, data = dg.DagsterInstance.ephemeral(), str(tmp_path)
    assert {s.name for s in defs.sensors} == {"tier1", "tier3", "release_dead_runs_slots"}
    sweep = _evaluate(defs, "release_dead_runs_slots", instance)  # on by default, launches nothing
    assert not sweep.run_requests and sweep.skip_message == "no dead run holds a slot"

    tick = _evaluate(defs, "tier1", instance)  # through Dagster, as the daemon runs it
    assert [(r.job_name, r.partition_key) for r in tick.run_requests] == [("dataset_job", "tiny")]
    request = tick.run_requests[0]
    assert request.tags["phase2/tier"] == "tier1" and study.config_hash() in request.run_key
    assert "embeddings" in tier_plan(study, instance, data, "tier3").skip_message

    assert gh.materialize(defs, "dataset", "tiny", instance).success
    assert _keys(tier_plan(study, instance, data, "tier1")) == [("pair_job", PAIR)]
    assert gh.materialize(defs, "pair", PAIR, instance).success
    bits = _keys(tier_plan(study, instance, data, "tier1"))
    assert bits == [("bits_job", f"{b}|{PAIR}") for b in (8, 16, 32, 64)]
    assert _keys(tier_plan(study, instance, data, "tier3")) == [("adapter_job", PAIR)]
    for _, key in bits:
        assert gh.materialize(defs, "bits", key, instance).success
    assert _keys(tier_plan(study, instance, data, "tier1")) == [("results_job", None)]
    assert gh.materialize(defs, "results", None, instance).success
    assert tier_plan(study, instance, data, "tier1").skip_message == "tier1 is complete"

    # A later failed collection run (a BOM in corpus.jsonl, say): the level is no longer done,
    # so the sensor asks for it again and nothing downstream starts on the old corpus.
    import uuid

    from dagster._core.storage.dagster_run import DagsterRun

    def failed_collection_run(of_study: str) -> None:
        instance.add_run(
            DagsterRun(
                job_name="dataset_job",
                run_id=str(uuid.uuid4()),
                status=dg.DagsterRunStatus.FAILURE,
                tags={"dagster/partition": "tiny", "phase2/study": of_study},
            )
        )

    failed_collection_run("other")
    # Another study's failure (same job and partition names) does not count here ...
    assert tier_plan(study, instance, data, "tier1").skip_message == "tier1 is complete"
    failed_collection_run(study.name)
    # ... this study's does.
    assert _keys(tier_plan(study, instance, data, "tier1")) == [("dataset_job", "tiny")]


def test_an_expansion_tier_waits_for_f1_f2_and_stops_when_one_fired(
    tmp_path, tiny_beir, tiny_model
):
    tiers = {
        "tier1": {"datasets": ["tiny"], "models": ["tiny-bert"], "bits": [8, 16], "pq_bytes": [1]},
        "tier2": {"datasets": ["tiny"], "models": ["tiny-bert"], "bits": [32], "pq_bytes": [4]},
    }
    path = write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model, tiers=tiers)
    study, defs = gh.build(path, tmp_path)
    instance, data = dg.DagsterInstance.ephemeral(), str(tmp_path)
    assert (
        "waiting for the core tier's kill-switch tables"
        in tier_plan(study, instance, data, "tier2").skip_message
    )

    def switch(name, fired):
        return {"name": name, "rule": "r", "numbers": {}, "evaluated": True, "fired": fired}

    gates.write_gates(data, [switch("F1", False), switch("F2", False)])
    assert _keys(tier_plan(study, instance, data, "tier2")) == [("dataset_job", "tiny")]
    gates.write_gates(data, [switch("F1", True), switch("F2", False)])
    assert tier_plan(study, instance, data, "tier2").skip_message == (
        "Blocked by kill-switch F1: tier2 is stopped. F1: r ({})"
    )
