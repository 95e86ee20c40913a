"""The Dagster instance on one machine: the dagster.yaml that ``phase2`` writes, and its upkeep."""

from __future__ import annotations

import os
import socket
from importlib import resources
from pathlib import Path

import dagster as dg

LOCAL_CONFIG = "dagster_local.yaml"  # in phase2_assets/config
PID_TAG = "phase2/cli_pid"
HOST_TAG = "phase2/cli_host"


def local_config_text() -> str:
    return resources.files("phase2_assets.config").joinpath(LOCAL_CONFIG).read_text()


def write_local_config(home: str | os.PathLike) -> Path:
    """``home/dagster.yaml`` for one machine (SQLite storage, pool limits, run queue), unless
    one with content is there: an edited file is kept, an empty one (as older versions of
    ``phase2`` left) is replaced."""
    path = Path(home) / "dagster.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or not path.read_text().strip():
        path.write_text(local_config_text())
    return path


def cli_run_tags() -> dict[str, str]:
    """Tags of a run that ``phase2`` executes in its own process (see release_orphaned_slots)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def release_orphaned_slots(instance: dg.DagsterInstance) -> list[str]:
    """Mark dead runs failed and free the pool slots no live step holds; one line per run.

    A step frees its slot when it ends, but a run process killed outright (the kernel's OOM
    killer, SIGKILL) keeps it, and with a pool limit of 1 every later step of that pool waits
    forever. On a local instance (SQLite, runs as processes of this machine) a run is dead when
    it has not finished and every process that wrote its events is gone (Dagster records the pid
    of each event), or, for a ``phase2`` run, when its ``phase2`` process is gone: such a run is
    marked failed and its slots freed. Slots of finished runs are freed too. A run that wrote no
    event yet (queued, starting) is left alone, and so is every run of a remote instance (its
    processes are on other hosts: Dagster's run monitoring, ``free_slots_after_run_end_seconds``).
    """
    local = is_local_instance(instance)
    freed = []
    for run in _unfinished_runs(instance) if local else []:
        reason = _dead(instance, run)
        if reason is None:
            continue
        instance.report_run_failed(run, f"{reason} without finishing the run")
        freed.append(f"marked run {run.run_id} failed ({reason})")
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return freed
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(f"freed the pool slots held by run {run_id} (finished)")
    return freed


def is_local_instance(instance: dg.DagsterInstance) -> bool:
    """Runs are processes of this machine: the default run launcher on SQLite storage."""
    return type(instance.run_launcher).__name__ == "DefaultRunLauncher" and (
        "sqlite" in type(instance.run_storage).__module__
    )


def _unfinished_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    statuses = [
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]
    return list(instance.get_runs(dg.RunsFilter(statuses=statuses), limit=200))


def _dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why the run is dead, or None while a process of it may live."""
    if run.tags.get(PID_TAG):
        if _orphaned_cli_run(run):
            return f"its phase2 process {run.tags[PID_TAG]} ended"
        return None
    pids = {
        e.dagster_event.pid
        for e in instance.all_logs(run.run_id)
        if e.dagster_event is not None and e.dagster_event.pid
    }
    if not pids or any(_alive(pid) for pid in pids):
        return None
    return f"its processes {', '.join(map(str, sorted(pids)))} ended"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _orphaned_cli_run(run: dg.DagsterRun) -> bool:
    pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
    if not (pid or "").isdigit() or host != socket.gethostname() or int(pid) == os.getpid():
        return False
    return not _alive(int(pid))


def sweep_on_load() -> None:
    """At every load of the code location (``dagster asset materialize``, ``dagster job
    launch``, each run worker, ``dagster dev``): free what dead local runs hold, so no step of
    a new run waits forever on a slot held by a killed process. Says what it did on stderr."""
    import sys

    if (
        not os.environ.get("DAGSTER_HOME")
        or not (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").exists()
    ):
        return
    try:
        instance = dg.DagsterInstance.get()
    except Exception:  # noqa: BLE001 - no usable instance here: nothing to sweep
        return
    for line in release_orphaned_slots(instance):
        print(f"phase2: {line}", file=sys.stderr, flush=True)
