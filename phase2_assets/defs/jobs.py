"""Jobs, one per partition level (a Dagster job runs assets that share one partitioning).

Run layout (see ``execution``): ``embedding_job`` and ``adapter_job`` run each step in its own
process or pod with the configured executor (a GPU pod on Kubernetes); the other jobs run all
their steps in the run's own process.
"""

from __future__ import annotations

import dagster as dg

DATASET_JOB = "collection_job"
PAIR_JOB = "embedding_job"
BITS_JOB = "codes_job"
RESULTS_JOB = "results_job"
ADAPTER_JOB = "adapter_job"
ADAPTER_ASSETS = ("adapter_metrics",)
DATASET_ASSETS = ("corpus", "queries", "qrels")
PAIR_ASSETS = (
    "corpus_embeddings",
    "query_embeddings",
    "float_ground_truth",
    "evaluation_qrels",
    "int8_index",
    "reference_metrics",
    "embedding_geometry",
)
BITS_ASSETS = (
    "binary_codes",
    "pq_index",
    "binary_metrics",
    "pq_metrics",
    "method_metrics",
    "code_geometry",
)
RESULT_TABLES = (
    "retrieval_metrics",
    "geometry",
    "bfi",
    "regression",
    "adapter",
    "budget_ledger",
    "kill_switches",
    "verdict",
    "design_memo",
    "report",
)


STEP_ISOLATED_JOBS = (PAIR_JOB, ADAPTER_JOB)  # the GPU steps: a process (or pod) each


def _executor(job: str) -> dg.ExecutorDefinition | None:
    """None: the code location's executor ($PHASE2_EXECUTOR); else every step in the run."""
    return None if job in STEP_ISOLATED_JOBS else dg.in_process_executor


def build_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            DATASET_JOB,
            executor_def=_executor(DATASET_JOB),
            selection=dg.AssetSelection.assets(*DATASET_ASSETS),
            description="E1 input: read and sample BEIR collections (partition: dataset).",
        ),
        dg.define_asset_job(
            PAIR_JOB,
            executor_def=_executor(PAIR_JOB),
            selection=dg.AssetSelection.assets(*PAIR_ASSETS),
            description="E1, E3 (int8), E4, E7: embeddings, exact ground truth, int8, the "
            "reference rows and the embedding geometry (partition: dataset__model).",
        ),
        dg.define_asset_job(
            BITS_JOB,
            executor_def=_executor(BITS_JOB),
            selection=dg.AssetSelection.assets(*BITS_ASSETS),
            description="E2, E3, E5, E6 and code diagnostics at one bit budget "
            "(partition: dataset__model x bits).",
        ),
        dg.define_asset_job(
            ADAPTER_JOB,
            executor_def=_executor(ADAPTER_JOB),
            selection=dg.AssetSelection.assets(*ADAPTER_ASSETS),
            description="X3: the light adapter on one adapter pair (partition: dataset__model "
            "of exploratory.adapter_pairs); paused by K1, stopped by K2.",
        ),
        dg.define_asset_job(
            RESULTS_JOB,
            executor_def=_executor(RESULTS_JOB),
            selection=dg.AssetSelection.assets(*[["results", name] for name in RESULT_TABLES]),
            description="The study-wide tables under data/results/ (metrics, geometry, BFI, "
            "regression, kill-switches, verdict) and the HTML report, from whatever partitions "
            "are materialised.",
        ),
    ]
