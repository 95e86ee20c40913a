"""A sensor per tier: switch one on in the UI (Automation) and the daemon runs that tier.

A Dagster job cannot carry a subset of its assets' partitions, so a tier is a partition set of
the level jobs (``partitions.partition_keys``). Each tier's sensor requests the runs of its set
level by level, as ``phase2 run`` does: datasets, then (dataset, model) pairs once every dataset
is in, then bit partitions, then the study-wide tables once. The ``tier3`` sensor runs X3 on the
adapter pairs (the first pair first, so K2 is judged before the others start), then the tables.

Rules the sensors keep:
- A partition counts as done when the asset that ends its level is materialised (``qrels``;
  ``reference_metrics``; ``binary_metrics`` / ``pq_metrics`` where the plan asks for them;
  ``adapter_metrics``). Work done by ``phase2 run`` or by hand counts too.
- Run keys carry the config hash, so a partition is requested once per config: a failed run is
  not retried in a loop; re-execute it from the Runs page and the sensor moves on.
- An expansion tier waits until the core results have evaluated F1 and F2, and skips while one
  has fired; ``tier3`` skips while K1 or K2 has fired. Every skip says why in the sensor's
  tick history.
"""

from __future__ import annotations

import dagster as dg

from phase2_assets.config import Study
from phase2_assets.defs import gates, jobs
from phase2_assets.defs.partitions import partition_keys, split_pair_bits

EXPLORATORY_TIER = "tier3"  # the plan's name for X3; "x3" if the study has its own tier3
SENSOR_INTERVAL_SECONDS = 30


def _materialised(instance: dg.DagsterInstance, asset: str | list[str], partition: str | None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition] if partition is not None else None,
        ),
        limit=1,
    ).records
    return bool(records)


def _level_done(study: Study, instance: dg.DagsterInstance, level: str, key: str) -> bool:
    if level == "dataset":
        return _materialised(instance, "qrels", key)
    if level == "pair":
        return _materialised(instance, "reference_metrics", key)
    if level == "adapter":
        return _materialised(instance, "adapter_metrics", key)
    pair, bits = split_pair_bits(key)
    binary, pq_bytes = study.plan(pair)
    ends = (["binary_metrics"] if bits in binary else []) + (
        ["pq_metrics"] if bits // 8 in pq_bytes else []
    )
    return all(_materialised(instance, asset, key) for asset in ends)


def _requests(study: Study, job: str, keys: list[str | None], tier: str) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            job_name=job,
            partition_key=key,
            run_key=f"{tier}:{job}:{key or 'all'}:{study.config_hash()}",
            tags={"phase2/tier": tier},
        )
        for key in keys
    ]


def exploratory_tier(study: Study) -> str:
    return EXPLORATORY_TIER if EXPLORATORY_TIER not in study.tiers else "x3"


def tier_plan(study: Study, instance: dg.DagsterInstance, data_dir: str, tier: str):
    """The run requests due now for ``tier``, or a SkipReason saying what it waits for."""
    if tier == exploratory_tier(study):
        return _exploratory_plan(study, instance, data_dir)
    if tier != study.core_tier:
        states = gates.read_gates(data_dir)
        if not all(states.get(n, {}).get("evaluated") for n in gates.EXPANSION_SWITCHES):
            return dg.SkipReason(
                f"{tier} is an expansion tier: waiting for the core tier's results to "
                f"evaluate F1 and F2 (run the {study.core_tier} sensor or results_job)"
            )
        fired = gates.fired_expansion_switches(data_dir)
        if fired:
            return dg.SkipReason(f"{tier} stopped by kill-switch {fired[0]['name']}")
    for level, job in (
        ("dataset", jobs.DATASET_JOB),
        ("pair", jobs.PAIR_JOB),
        ("bits", jobs.BITS_JOB),
    ):
        missing = [
            k
            for k in partition_keys(study, level, tier)
            if not _level_done(study, instance, level, k)
        ]
        if missing:
            return _requests(study, job, missing, tier)
    if not _materialised(instance, ["results", "retrieval_metrics"], None):
        return _requests(study, jobs.RESULTS_JOB, [None], tier)
    return dg.SkipReason(f"{tier} is complete")


def _exploratory_plan(study: Study, instance: dg.DagsterInstance, data_dir: str):
    stopped = gates.fired(data_dir, ("K1", "K2"))
    pairs = partition_keys(study, "adapter")
    pending = [p for p in pairs if not _level_done(study, instance, "adapter", p)]
    if stopped and pending:
        return dg.SkipReason(f"X3 stopped by kill-switch {stopped[0]['name']}")
    unembedded = [p for p in pairs if not _level_done(study, instance, "pair", p)]
    if unembedded:
        return dg.SkipReason(f"X3 waits for the embeddings of {', '.join(unembedded)}")
    if pairs[0] in pending:  # K2 is judged on the first pair before the others start
        return _requests(study, jobs.ADAPTER_JOB, [pairs[0]], exploratory_tier(study))
    if pending:
        return _requests(study, jobs.ADAPTER_JOB, pending, exploratory_tier(study))
    return _requests(study, jobs.RESULTS_JOB, [None], exploratory_tier(study))


def _describe(study: Study, tier: str) -> str:
    if tier == exploratory_tier(study):
        return (
            "Tier 3 (X3): the adapter on each pair of exploratory.adapter_pairs, the first pair "
            "first (K2 is judged there), then the study-wide tables. Skips while K1 or K2 has "
            "fired."
        )
    counts = {
        level: len(partition_keys(study, level, tier)) for level in ("dataset", "pair", "bits")
    }
    return (
        f"Runs tier {tier!r} of study {study.name!r} level by level: {counts['dataset']} datasets, "
        f"{counts['pair']} (dataset, model) pairs, {counts['bits']} bit partitions, then the "
        "study-wide tables. Each partition is requested once per config; re-execute a failed "
        "run from the Runs page."
    )


def _tier_sensor(study: Study, data_dir: str, tier: str, targets: list) -> dg.SensorDefinition:
    @dg.sensor(
        name=tier.replace("-", "_"),
        jobs=targets,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description=_describe(study, tier),
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        return tier_plan(study, context.instance, data_dir, tier)

    return _sensor


def build_tier_sensors(study: Study, data_dir: str, level_jobs: list) -> list[dg.SensorDefinition]:
    """One sensor per tier of the study, named after it, plus ``tier3`` for X3; all start
    stopped, so nothing runs until a researcher switches one on."""
    return [
        _tier_sensor(study, data_dir, tier, level_jobs)
        for tier in [*study.tiers, exploratory_tier(study)]
    ]
