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
    """Free the pool slots that no live step holds; one line per run freed.

    A step frees its slot when it ends, but a run process killed outright (the kernel's OOM
    killer, SIGKILL) keeps it, and with a pool limit of 1 every later step of that pool would wait
    forever. Freed here: slots of finished runs, and of ``phase2`` runs on this host whose process
    is gone (those runs are marked failed). Runs launched by a daemon are left to its run
    monitoring (``free_slots_after_run_end_seconds`` in dagster.yaml).
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            reason = "finished"
        elif _orphaned_cli_run(run):
            instance.report_run_failed(run, "its phase2 process ended without finishing the run")
            reason = f"process {run.tags[PID_TAG]} is gone; marked failed"
        else:
            continue
        storage.free_concurrency_slots_for_run(run_id)
        freed.append(f"freed the pool slots held by run {run_id} ({reason})")
    return freed


def _orphaned_cli_run(run: dg.DagsterRun) -> bool:
    pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
    if not (pid or "").isdigit() or host != socket.gethostname() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
