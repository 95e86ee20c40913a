"""The Dagster instance on one machine: the dagster.yaml that ``phase2`` writes, and its upkeep."""

from __future__ import annotations

import os
import socket
from importlib import resources
from pathlib import Path

from phase2_assets.defs.execution.slots import HOST_TAG, PID_TAG

LOCAL_CONFIG = "dagster_local.yaml"  # in phase2_assets/config


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
