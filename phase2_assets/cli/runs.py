"""The ``phase2`` runner: a plan request executed as a run of the code location, in this process."""

from __future__ import annotations

import dagster as dg

from phase2_assets.config import plan
from phase2_assets.defs.graph.requests import job_of, selection_of


def execute_in_process(
    defs: dg.Definitions, request: plan.Request, instance: dg.DagsterInstance | None, **kwargs
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job_of(request)).execute_in_process(
        partition_key=request.key,
        asset_selection=selection_of(request),
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )


LOCATION = "phase2_assets"  # workspace.yaml's location name: the UI matches runs to it
DEFINITIONS_MODULE = "phase2_assets.definitions"


class LocationRuns:
    """Runs of the code location made as ``dagster job launch`` makes them: from the location's
    own job snapshot, with its origin, so they appear on the job pages, the Overview timeline
    and the run charts of ``dagster dev``, and re-execute from there. Executed in this process,
    one after another (no daemon, and no run worker to start for each).

    The location is loaded from ``phase2_assets.definitions`` with the environment the caller set
    (``PHASE2_STUDY``, ``PHASE2_DATA_DIR``), fresh: a study loaded earlier in this process is not
    reused."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance

    def __enter__(self) -> LocationRuns:
        import os
        import sys

        from dagster._core.definitions.reconstruct import ReconstructableJob
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

        from phase2_assets.defs.storage.locations import check_storage_env

        check_storage_env()  # a bad PHASE2_STORAGE_URL: one line, not Dagster's load traceback
        sys.modules.pop(DEFINITIONS_MODULE, None)
        # Dagster keeps the last job it reconstructed (an lru_cache keyed by module and job
        # name): a study loaded earlier in this process would run instead of this one when its
        # last job has the same name (a failed dataset_job, then another study's).
        ReconstructableJob.get_definition.cache_clear()
        ReconstructableJob.get_repository_definition.cache_clear()
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()),
            location_name=LOCATION,
        )
        self._location = origin.create_location(self.instance)
        self._repository = self._location.get_repository("__repository__")
        return self

    def __exit__(self, *exc) -> None:
        self._location.__exit__(*exc)

    def execute(
        self, request: plan.Request, *, run_config: dict, tags: dict[str, str]
    ) -> dg.DagsterRun:
        """Create the request's run in the instance, execute it here, return it finished."""
        from dagster._core.definitions.selector import JobSubsetSelector
        from dagster._core.execution.api import execute_run
        from dagster._utils.hosted_user_process import recon_job_from_origin

        selection = selection_of(request)
        remote_job = self._location.get_job(
            JobSubsetSelector(
                location_name=self._location.name,
                repository_name=self._repository.name,
                job_name=job_of(request),
                op_selection=None,
                asset_selection=selection,
            )
        )
        partition = {"dagster/partition": request.key} if request.key is not None else {}
        snapshot = self._location.get_execution_plan(
            remote_job,
            run_config,
            step_keys_to_execute=None,
            known_state=None,
            instance=self.instance,
        ).execution_plan_snapshot
        run = self.instance.create_run(
            job_name=remote_job.name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=remote_job.resolved_op_selection,
            step_keys_to_execute=snapshot.step_keys_to_execute,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**remote_job.tags, **tags, **partition},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(selection) if selection else None,
            asset_check_selection=None,
            asset_graph=self._repository.asset_graph,
        )
        execute_run(recon_job_from_origin(remote_job.get_python_origin()), run, self.instance)
        return self.instance.get_run_by_id(run.run_id)
