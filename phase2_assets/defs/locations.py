"""Where the study's files live: the local data folder, or an object store named by a URL.

``$PHASE2_STORAGE_URL`` (any fsspec URL: ``s3://bucket/prefix``, ``gs://...``, ``memory://`` in
tests) moves every asset file, the gate file and the figures there; unset, they stay under the
local data folder. Scratch space (encoding journals, downloads, the cache of fetched files) is
always local.
"""

from __future__ import annotations

import os
from pathlib import Path

from upath import UPath

from phase2_assets.compute.data.storage import atomic_path

STORAGE_ENV = "PHASE2_STORAGE_URL"
LOCAL_PROTOCOLS = ("", "file", "local")


def storage_root(data_dir: str | os.PathLike) -> UPath:
    """``$PHASE2_STORAGE_URL`` if set, else the local data folder."""
    return UPath(os.environ.get(STORAGE_ENV) or data_dir)


def cache_dir(data_dir: str | os.PathLike) -> Path:
    """The local folder that files fetched from an object store are kept in."""
    return Path(data_dir) / ".cache"


def is_local(path: UPath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def local_path(path: UPath) -> Path:
    """The plain filesystem path of a local UPath (``file://`` URLs included)."""
    return Path(path.path) if path.protocol else Path(path)


def write_text(path: UPath, text: str) -> None:
    """Locally: temporary file + rename. On an object store: one PUT, which is atomic there."""
    if is_local(path):
        with atomic_path(local_path(path), suffix=path.suffix) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_bytes(path: UPath, data: bytes) -> None:
    """As ``write_text``, for bytes."""
    if is_local(path):
        with atomic_path(local_path(path), suffix=path.suffix) as tmp:
            tmp.write_bytes(data)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
