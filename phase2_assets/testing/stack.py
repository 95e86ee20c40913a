"""Reading a running stack from a test: its instance, its bucket, its runs and its workers."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import dagster as dg

from phase2_assets.config import plan
from phase2_assets.defs.graph.requests import done_in_instance

# The tiny study cut to what the stack is tested on: the plan's own methods (float32, int8, the
# instrument, PQ) at two bit lengths. The stack's cost is per step (a Celery task, a pool
# claim), and the product's every method is tested in process; here the steps cross processes.
STACK_TIER = {"datasets": ["tiny"], "models": ["tiny-bert"], "bits": [8, 64], "pq_bytes": [1, 8]}
STACK_STUDY = {
    "tiers": {"tier1": STACK_TIER},
    "methods": {"extra": []},
    "bfi": {"recall_bits": [64]},
}


def require_stack() -> None:
    """Skip a stack test on a machine without the servers (PostgreSQL, Redis, Celery, the
    daemon); fail instead under ``PHASE2_REQUIRE_STACK_TEST=1`` (CI)."""
    import pytest

    from phase2_assets.stack import servers

    for program in ("postgres", "redis-server", "celery", "dagster-daemon"):
        try:
            servers.tool(program)
        except servers.ServerError as exc:
            if os.environ.get("PHASE2_REQUIRE_STACK_TEST") == "1":
                pytest.fail(f"PHASE2_REQUIRE_STACK_TEST=1 but {exc}")
            pytest.skip(str(exc))


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` in this process's environment (the stack's instance and store), then restored."""
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wait_for(condition: Callable[[], object], timeout_s: float, what: Callable[[], str] | str):
    """Poll ``condition`` until it is truthy (returned) or fail after ``timeout_s``, saying what
    was awaited and, when ``what`` is callable, what the stack was doing."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"waited {timeout_s:.0f} s for: {said}")
        time.sleep(1.0)


def study_done(instance: dg.DagsterInstance, study: str) -> bool:
    """The study's last run, the study-wide tables, succeeded."""
    from phase2_assets.config import load_study

    return done_in_instance(instance, load_study(study))(plan.Request("results"))


def runs_summary(instance: dg.DagsterInstance, limit: int = 40) -> str:
    runs = instance.get_runs(limit=limit)
    return "; ".join(
        f"{r.job_name}[{r.tags.get('dagster/partition', '')}] {r.status.value}" for r in runs
    )


def bucket_files(url: str) -> dict[str, bytes]:
    """Every object under ``url`` (relative key -> bytes), through s3fs like the product."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    root = root.rstrip("/")
    return {
        path[len(root) + 1 :]: fs.cat_file(path)
        for path in fs.find(root)
        if path.startswith(root + "/") and not path.endswith("/")
    }


def local_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def worker_of_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker that executed it (from the run's engine events)."""
    out = {}
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for record in records:
        event = record.dagster_event
        meta = event.engine_event_data.metadata if event.engine_event_data else {}
        worker = meta.get("Celery worker")
        if worker is not None and event.step_key:
            out[event.step_key] = worker.value
    return out


def graphql(stack):
    """The webserver's GraphQL API: what the UI's Launch and Re-execute buttons call."""
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=stack.ports["webserver"])


# The webserver holds one open connection to PostgreSQL (dagster-postgres's webserver pool):
# after the database restarts, the first request on it fails with this, and the pool resets.
STALE_CONNECTION = "server closed the connection unexpectedly"


def _once_more_after_a_stale_connection(call: Callable[[], str], tries: int = 5) -> str:
    """``call``, asked again (as a user clicks again) while the webserver's pooled
    connections still find the database gone, a second apart."""
    for attempt in range(tries):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - DagsterGraphQLClientError or AssertionError
            if STALE_CONNECTION not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def launch(
    stack, job: str, partition: str | None = None, location: str = "phase2_assets", **tags: str
) -> str:
    """Queue a run of ``job`` (one partition) through the webserver, as the UI does; its id."""
    if partition is not None:
        tags["dagster/partition"] = partition
    client = graphql(stack)
    return _once_more_after_a_stale_connection(
        lambda: client.submit_job_execution(job, location, "__repository__", tags=tags)
    )


REEXECUTE = """
mutation($parent: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parent, strategy: FROM_FAILURE}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
  }
}
"""


def reexecute_from_failure(stack, run_id: str) -> str:
    """The UI's "Re-execute from failure" on ``run_id``; the new run's id."""

    def call() -> str:
        answer = graphql(stack)._execute(REEXECUTE, {"parent": run_id})["launchRunReexecution"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        return answer["run"]["runId"]

    return _once_more_after_a_stale_connection(call)


def finished(instance: dg.DagsterInstance, run_id: str, timeout_s: float = 600) -> dg.DagsterRun:
    """The run once it has ended (success, failure or canceled)."""
    return wait_for(
        lambda: (r := instance.get_run_by_id(run_id)) is not None and r.is_finished and r,
        timeout_s,
        lambda: f"run {run_id} to end; runs: {runs_summary(instance)}",
    )


def step_failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The error messages of a run's failed steps."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return [r.dagster_event.step_failure_data.error.to_string() for r in records]


def step_intervals(instance: dg.DagsterInstance, steps: set[str]) -> list[tuple[float, float, str]]:
    """(start, end, run:step) of every execution of ``steps`` in every run of the instance."""
    out = []
    for run in instance.get_runs():
        starts: dict[str, float] = {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None or event.step_key not in steps:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[event.step_key] = record.timestamp
            elif (
                event.event_type
                in (
                    dg.DagsterEventType.STEP_SUCCESS,
                    dg.DagsterEventType.STEP_FAILURE,
                )
                and event.step_key in starts
            ):
                out.append(
                    (starts.pop(event.step_key), record.timestamp, f"{run.run_id}:{event.step_key}")
                )
    return sorted(out)


def overlapping(intervals: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of executions that ran at the same time (a pool of limit 1 allows none)."""
    return [
        (a[2], b[2]) for i, a in enumerate(intervals) for b in intervals[i + 1 :] if b[0] < a[1]
    ]
