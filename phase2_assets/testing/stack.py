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


def study_done(instance: dg.DagsterInstance) -> bool:
    """The study's last run, the study-wide tables, succeeded."""
    return done_in_instance(instance)(plan.Request("results"))


def runs_summary(instance: dg.DagsterInstance, limit: int = 40) -> str:
    runs = instance.get_runs(limit=limit)
    return "; ".join(
        f"{r.job_name}[{r.tags.get('dagster/partition', '')}] {r.status.value}" for r in runs
    )


def bucket_files(url: str) -> dict[str, bytes]:
    """Every object under ``url`` (relative key -> bytes), through s3fs like the product."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    return {
        path[len(root) :].lstrip("/"): fs.cat_file(path)
        for path in fs.find(root)
        if not path.endswith("/")
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
