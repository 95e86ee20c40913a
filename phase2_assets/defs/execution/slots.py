"""Pool slots held by runs that died: found and freed, so no step waits forever on them.

A step frees its pool slot when it ends, but a run process killed outright (the kernel's OOM
killer, SIGKILL) keeps it, and with a pool limit of 1 every later step of that pool waits
forever. ``phase2`` sweeps before each run; the ``release_dead_runs_slots`` sensor sweeps on the
daemon; and a run launched any other way (``dagster asset materialize``, ``dagster job
execute``) sweeps once when its IO managers start, before its steps claim slots.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

PID_TAG = "phase2/cli_pid"
HOST_TAG = "phase2/cli_host"


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


def sweep(instance: dg.DagsterInstance) -> list[str]:
    """Free what dead local runs hold, saying what was done on stderr (the console of
    ``dagster asset materialize`` and of the daemon)."""
    import sys

    lines = release_orphaned_slots(instance)
    for line in lines:
        print(f"phase2: {line}", file=sys.stderr, flush=True)
    return lines


_SWEPT: set[str] = set()


def sweep_once(instance: dg.DagsterInstance | None, run_id: str | None) -> None:
    """``sweep`` at most once per run and process, and only on a local instance."""
    if instance is None or run_id is None or run_id in _SWEPT:
        return
    _SWEPT.add(run_id)
    if is_local_instance(instance):
        sweep(instance)


def dead_runs_sensor() -> dg.SensorDefinition:
    """On the daemon (``dagster dev``, a deployment): every 30 s, dead local runs are marked
    failed and their pool slots freed, so a queued run never waits on a killed process."""

    @dg.sensor(
        name="release_dead_runs_slots",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Marks local runs whose processes died (SIGKILL, the OOM killer) failed and frees "
            "the pool slots they held, so no queued step waits forever. Launches nothing."
        ),
    )
    def release_dead_runs_slots(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        lines = sweep(context.instance)
        return dg.SkipReason("; ".join(lines) if lines else "no dead run holds a slot")

    return release_dead_runs_slots
