"""Jobs, one per partition level (a Dagster job runs assets that share one partitioning).

No asset is listed here: each job runs the assets whose partitions are its level's, so a new
asset is in the right job by being defined with the right partitions.

Run layout (see ``execution``): ``pair_job`` and ``adapter_job`` run each step in its own
process or pod with the configured executor (a GPU pod on Kubernetes); the other jobs run all
their steps in the run's own process.
"""

from __future__ import annotations

import dagster as dg

from phase2_assets.defs.execution import executors
from phase2_assets.defs.graph.partitions import StudyPartitions

STUDY_TAG = "phase2/study"  # the run tag naming the study (requests.done_in_instance reads it)

DATASET_JOB = "dataset_job"
PAIR_JOB = "pair_job"
BITS_JOB = "bits_job"
RESULTS_JOB = "results_job"
ADAPTER_JOB = "adapter_job"

# One job per partition level; which assets a job runs follows from their partitions.
LEVEL_JOBS: dict[str, tuple[str, str]] = {
    "dataset": (DATASET_JOB, "E1 input: read and sample BEIR collections (partition: dataset)."),
    "pair": (
        PAIR_JOB,
        "E1, E3 (int8), E4, E7: embeddings, exact ground truth, int8, the reference rows and the "
        "embedding geometry (partition: dataset__model).",
    ),
    "bits": (
        BITS_JOB,
        "E2, E3, E5, E6 and code diagnostics at one bit budget (partition: dataset__model x bits).",
    ),
    "adapter": (
        ADAPTER_JOB,
        "X3: the light adapter on one adapter pair (partition: dataset__model of "
        "exploratory.adapter_pairs); paused by K1, stopped by K2.",
    ),
    "results": (
        RESULTS_JOB,
        "The study-wide tables under data/results/ (metrics, geometry, BFI, regression, "
        "kill-switches, verdict) and the HTML report, from whatever partitions are materialised.",
    ),
}

STEP_ISOLATED_JOBS = (PAIR_JOB, ADAPTER_JOB)  # the GPU steps: a process (or pod) each


def _executor(job: str) -> dg.ExecutorDefinition | None:
    """None: the code location's executor ($PHASE2_EXECUTOR); else every step in the run,
    unless steps run on other machines (Celery workers), where every job sends them."""
    if job in STEP_ISOLATED_JOBS or executors.steps_run_remotely():
        return None
    return dg.in_process_executor


def level_of(asset: dg.AssetsDefinition, parts: StudyPartitions) -> str:
    """The partition level of an asset: which of the study's partitionings it uses."""
    if asset.partitions_def is None:
        return "results"
    for level, partitions in (
        ("dataset", parts.dataset),
        ("pair", parts.pair),
        ("bits", parts.pair_bits),
        ("adapter", parts.adapter_pair),
    ):
        if asset.partitions_def is partitions:
            return level
    raise ValueError(f"{asset.key.to_user_string()}: its partitions are not the study's")


def level_assets(
    assets: list[dg.AssetsDefinition], parts: StudyPartitions
) -> dict[str, list[dg.AssetKey]]:
    out: dict[str, list[dg.AssetKey]] = {level: [] for level in LEVEL_JOBS}
    for asset in assets:
        if asset.is_executable:
            out[level_of(asset, parts)] += sorted(asset.keys)
    return out


def build_jobs(
    assets: list[dg.AssetsDefinition], parts: StudyPartitions, study: str
) -> list[dg.UnresolvedAssetJobDefinition]:
    """The level jobs; each run of them carries the study's name (``phase2/study``), so the
    plan counts only this study's runs and the run queue can limit runs per study."""
    by_level = level_assets(assets, parts)
    return [
        dg.define_asset_job(
            name,
            tags={STUDY_TAG: study},
            executor_def=_executor(name),
            selection=dg.AssetSelection.assets(*by_level[level]),
            description=description,
        )
        for level, (name, description) in LEVEL_JOBS.items()
    ]
