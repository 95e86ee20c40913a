"""Run the study graph level by level in process, as the CLI does, on any study."""

from __future__ import annotations

import dagster as dg

from phase2_assets.cli import runs
from phase2_assets.config import load_study, plan
from phase2_assets.defs.build import build_definitions
from phase2_assets.defs.graph import jobs
from phase2_assets.defs.storage.gates import read_gates

# The level jobs, and a few narrower selections of the results job for the gate tests.
SELECTIONS = {
    "kill_switches": [dg.AssetKey(["results", "kill_switches"])],
    "bfi_regression": [dg.AssetKey(["results", "bfi"]), dg.AssetKey(["results", "regression"])],
}


def build(study_path, data_dir, storage_url: str | None = None):
    """The study and its definitions; ``storage_url``: its own store (else
    ``$PHASE2_STORAGE_URL``, else ``data_dir``)."""
    study = load_study(str(study_path))
    return study, build_definitions(study, str(data_dir), storage_url)


def materialize(defs, level: str, partition_key=None, instance=None):
    """One partition of a level, through that level's job, as ``phase2`` runs it."""
    job = jobs.LEVEL_JOBS.get(level, (jobs.RESULTS_JOB,))[0]
    return defs.resolve_job_def(job).execute_in_process(
        partition_key=partition_key,
        instance=instance,
        asset_selection=SELECTIONS.get(level),
        raise_on_error=False,
    )


def materialize_study(study, defs, instance=None) -> list[dg.ExecuteInProcessResult]:
    """Every run the study's plan asks for, tier by tier, as ``phase2`` runs them."""
    instance = instance or dg.DagsterInstance.ephemeral()
    root = defs.resources["runtime"].storage_root  # where this study's gates are
    results = []

    def execute(request) -> bool:
        results.append(runs.execute_in_process(defs, request, instance))
        return True  # keep going: the tests look at every run

    plan.follow(study, lambda: read_gates(root), execute)
    return results


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }
