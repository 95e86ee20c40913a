"""Runtime settings that differ between machines, not between studies (paths, device, network),
and the one that differs between the studies of a deployment: the store their files live in."""

from __future__ import annotations

import os

import dagster as dg
from upath import UPath

from phase2_assets.defs.storage.locations import study_storage_url


class StudyRuntime(dg.ConfigurableResource):
    """Where data comes from on this machine, whether downloads are allowed, and where the
    study's files live."""

    data_dir: str
    # The study's store, resolved when the definitions were built (the location's own
    # storage_url, else $PHASE2_STORAGE_URL; checked); None: the files live under data_dir.
    storage_url: str | None = None
    beir_dir: str | None = None
    model_dir: str | None = None
    allow_download: bool = True
    device: str = "auto"
    trusted_remote_code: list[str] = []

    @property
    def download_dir(self) -> str:
        return os.path.join(self.data_dir, "downloads")

    @property
    def storage_root(self) -> UPath:
        """The folder the study's files live under (assets, gates, results, figures, stamp):
        the store, else the local data folder. Scratch stays under ``data_dir``."""
        return UPath(self.storage_url) if self.storage_url else UPath(self.data_dir)


def whole_number_env(name: str, unit: str) -> int | None:
    """``$name`` as a whole number >= 1, None when unset; anything else is refused naming the
    variable and what it counts (``unit``: "whole seconds", "a whole number of steps")."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r}: expected {unit}, >= 1")
    return int(raw)


def runtime_from_env(data_dir: str, storage_url: str | None = None) -> StudyRuntime:
    """This machine's settings; ``storage_url`` (a study's own store) wins over
    ``$PHASE2_STORAGE_URL``."""
    return StudyRuntime(
        data_dir=data_dir,
        storage_url=study_storage_url(storage_url),
        beir_dir=os.environ.get("PHASE2_BEIR_DIR") or None,
        model_dir=os.environ.get("PHASE2_MODEL_DIR") or None,
        allow_download=os.environ.get("PHASE2_ALLOW_DOWNLOAD", "1") not in {"0", "false", "no"},
        device=os.environ.get("PHASE2_DEVICE", "auto"),
        trusted_remote_code=[
            key.strip()
            for key in os.environ.get("PHASE2_TRUST_REMOTE_CODE", "").split(",")
            if key.strip()
        ],
    )
