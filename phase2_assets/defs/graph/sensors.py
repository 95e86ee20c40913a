"""A sensor per tier: switch one on in the UI (Automation) and the daemon runs that tier.

A Dagster job cannot carry a subset of its assets' partitions, so a tier is a partition set of
the level jobs. What a tier runs next, and why it waits, is the study's one plan
(``config/plan.py``), the same that ``phase2`` follows; the sensor only reads the instance and the
gate file, and turns the plan's requests into run requests.

- A request is done when a run of its level's job succeeded for its partition (``phase2``'s runs
  and runs launched by hand count; a materialisation of some of a level's assets does not).
  The study-wide tables are done when a ``results_job`` run covering them succeeded.
- Run keys carry the config hash, so a partition is requested once per config: a failed run is
  not retried in a loop; re-execute it from the Runs page and the sensor moves on.
- Every skip says why in the sensor's tick history.
"""

from __future__ import annotations

import dagster as dg

from phase2_assets.config import Study, plan
from phase2_assets.defs.graph.requests import done_in_instance, run_requests
from phase2_assets.defs.steps.runtime import whole_number_env
from phase2_assets.defs.storage import gates
from phase2_assets.defs.storage.locations import Root

SENSOR_INTERVAL_SECONDS = 30
# How often the daemon looks (a machine setting: a test stack looks every few seconds).
SENSOR_INTERVAL_ENV = "PHASE2_SENSOR_INTERVAL_SECONDS"


def sensor_interval_seconds() -> int:
    seconds = whole_number_env(SENSOR_INTERVAL_ENV, "whole seconds")
    return SENSOR_INTERVAL_SECONDS if seconds is None else seconds


def tier_plan(study: Study, instance: dg.DagsterInstance, root: Root, tier: str):
    """The run requests due now for ``tier``, or a SkipReason saying what it waits for (the
    gates read under ``root``, the study's storage root)."""
    nxt = plan.next_runs(study, tier, done_in_instance(instance, study), gates.read_gates(root))
    return run_requests(study, nxt) if nxt.requests else dg.SkipReason(nxt.reason)


def _describe(study: Study, tier: str) -> str:
    if tier == plan.exploratory_tier(study):
        return (
            "Tier 3 (X3): the adapter on each pair of exploratory.adapter_pairs, the first pair "
            "first (K2 is judged there), then every study-wide table (verdict, memo, report). "
            "Skips the adapter while K1 or K2 has fired."
        )
    counts = {
        level: len(plan.partition_keys(study, level, tier)) for level in ("dataset", "pair", "bits")
    }
    return (
        f"Runs tier {tier!r} of study {study.name!r} level by level: {counts['dataset']} datasets, "
        f"{counts['pair']} (dataset, model) pairs, {counts['bits']} bit partitions, then the "
        "kill-switch tables. Each partition is requested once per config; re-execute a failed "
        "run from the Runs page."
    )


def _tier_sensor(study: Study, root: Root, tier: str, targets: list) -> dg.SensorDefinition:
    @dg.sensor(
        name=tier.replace("-", "_"),
        jobs=targets,
        minimum_interval_seconds=sensor_interval_seconds(),
        description=_describe(study, tier),
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        return tier_plan(study, context.instance, root, tier)

    return _sensor


def build_tier_sensors(study: Study, root: Root, level_jobs: list) -> list[dg.SensorDefinition]:
    """One sensor per tier of the study, named after it, plus ``tier3`` for X3; all start
    stopped, so nothing runs until a researcher switches one on."""
    return [_tier_sensor(study, root, tier, level_jobs) for tier in plan.tier_order(study)]
