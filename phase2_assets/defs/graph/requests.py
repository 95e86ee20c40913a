"""The plan's requests as Dagster runs: which job, which assets, and whether one already ran."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from phase2_assets.config import Study, plan
from phase2_assets.defs.graph import jobs


def job_of(request: plan.Request) -> str:
    return jobs.LEVEL_JOBS[request.level][0]


def selection_of(request: plan.Request) -> list[dg.AssetKey] | None:
    return [dg.AssetKey(["results", t]) for t in request.tables] if request.tables else None


def label_of(request: plan.Request) -> str:
    label = f"{job_of(request)}[{request.key}]" if request.key is not None else job_of(request)
    return label + (" (kill-switches)" if request.tables else "")


STUDY_TAG = jobs.STUDY_TAG  # on every run of a study's jobs (``jobs.build_jobs``)


def done_in_instance(instance: dg.DagsterInstance, study: Study) -> Callable[[plan.Request], bool]:
    """Whether the request is done in this instance: the newest run of its job, of this study,
    that covers it succeeded. A failure after an earlier success is not done, so the next level
    never starts on what the failed run did not write. Another study's runs never count, though
    its jobs and partition keys may have the same names (two studies on one instance)."""

    def done(request: plan.Request) -> bool:
        tags = {STUDY_TAG: study.name}
        if request.key is not None:
            tags["dagster/partition"] = request.key
        runs = instance.get_runs(dg.RunsFilter(job_name=job_of(request), tags=tags), limit=50)
        wanted = set(selection_of(request) or ())
        covering = [
            r
            for r in runs  # newest first
            if not r.asset_selection or (wanted and wanted <= set(r.asset_selection))
        ]
        return bool(covering) and covering[0].status == dg.DagsterRunStatus.SUCCESS

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
