"""The plan's requests as Dagster runs: which job, which assets, and whether one already ran."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from phase2_assets.config import Study, plan
from phase2_assets.defs import jobs


def job_of(request: plan.Request) -> str:
    return jobs.LEVEL_JOBS[request.level][0]


def selection_of(request: plan.Request) -> list[dg.AssetKey] | None:
    return [dg.AssetKey(["results", t]) for t in request.tables] if request.tables else None


def label_of(request: plan.Request) -> str:
    label = f"{job_of(request)}[{request.key}]" if request.key is not None else job_of(request)
    return label + (" (kill-switches)" if request.tables else "")


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


def done_in_instance(instance: dg.DagsterInstance) -> Callable[[plan.Request], bool]:
    """Whether a successful run of the request's job covers it, in this instance."""

    def done(request: plan.Request) -> bool:
        tags = {"dagster/partition": request.key} if request.key is not None else None
        runs = instance.get_runs(
            dg.RunsFilter(
                job_name=job_of(request), statuses=[dg.DagsterRunStatus.SUCCESS], tags=tags
            ),
            limit=20,
        )
        wanted = set(selection_of(request) or ())
        return any(
            not r.asset_selection or (wanted and wanted <= set(r.asset_selection)) for r in runs
        )

    return done


def run_requests(study: Study, nxt: plan.Next) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            job_name=job_of(r),
            partition_key=r.key,
            asset_selection=selection_of(r),
            run_key=f"{nxt.tier}:{label_of(r)}:{study.config_hash()}",
            tags={"phase2/tier": nxt.tier},
        )
        for r in nxt.requests
    ]
