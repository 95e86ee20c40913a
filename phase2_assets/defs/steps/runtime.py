"""Runtime settings that differ between machines, not between studies (paths, device, network)."""

from __future__ import annotations

import os

import dagster as dg


class StudyRuntime(dg.ConfigurableResource):
    """Where data comes from on this machine, and whether downloads are allowed."""

    data_dir: str
    beir_dir: str | None = None
    model_dir: str | None = None
    allow_download: bool = True
    device: str = "auto"
    trusted_remote_code: list[str] = []

    @property
    def download_dir(self) -> str:
        return os.path.join(self.data_dir, "downloads")


def runtime_from_env(data_dir: str) -> StudyRuntime:
    return StudyRuntime(
        data_dir=data_dir,
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
