"""Where the study's files live: the local data folder, or an object store named by a URL.

A study's code location may name its own store (``storage_url``: ``build_definitions``, the
study component, ``study_location``), so that one deployment holds several studies; without
one, ``$PHASE2_STORAGE_URL`` (any fsspec URL: ``s3://bucket/prefix``, ``gs://...``,
``memory://`` in tests) names it; with neither, the files stay under the local data folder. The
store holds every asset file, the gate file, the study-wide tables, the figures and the study
stamp. Scratch space (encoding journals, downloads, the cache of fetched files) is always local.
"""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
from fsspec.registry import known_implementations
from upath import UPath

from phase2_assets.compute.data.storage import atomic_path
from phase2_assets.config import StudyConfigError

STORAGE_ENV = "PHASE2_STORAGE_URL"
LOCAL_PROTOCOLS = ("", "file", "local")
# File systems that keep what is written after the process exits. fsspec knows others (memory,
# http, zip, github, caches) that are read-only or vanish at exit: a study written there
# "succeeds" and is lost.
PERSISTENT_PROTOCOLS = frozenset(
    {
        *LOCAL_PROTOCOLS,
        "s3",
        "s3a",
        "gs",
        "gcs",
        "az",
        "abfs",
        "adl",
        "hdfs",
        "arrow_hdfs",
        "webhdfs",
        "sftp",
        "ssh",
        "smb",
        "ftp",
        "oss",
        "oci",
        "ocilake",
        "dbfs",
        "lakefs",
        "webdav",
        "tos",
        "tosfs",
    }
)
# Tests that run in one process may keep the study in fsspec's memory file system.
ALLOW_MEMORY_ENV = "PHASE2_STORAGE_ALLOW_MEMORY"
VIRTUAL_ROOTS = ("/proc", "/sys", "/dev")


# A study's storage root as the functions that resolve files under it take it: what
# ``StudyRuntime.storage_root`` gives (or a local folder's path).
Root = str | os.PathLike | UPath
# What names an explicit store in error messages: the code location's own setting.
STORAGE_SETTING = "storage_url"


class StorageURLError(StudyConfigError):
    """A storage URL ($PHASE2_STORAGE_URL or a location's ``storage_url``) names no place a
    study can be kept; the message says why, naming which. A setting of the study's run, so
    ``phase2`` prints it as it prints a config error: one line."""


def study_storage_url(storage_url: str | None = None) -> str | None:
    """The store a study's files live in: its own ``storage_url`` if given, else
    ``$PHASE2_STORAGE_URL``; checked (a persistent, writable file system whose fsspec package is
    installed) and normalised. None: the local data folder."""
    if storage_url:
        return str(checked_storage_url(storage_url, STORAGE_SETTING))
    url = os.environ.get(STORAGE_ENV)
    return str(checked_storage_url(url)) if url else None


def storage_root(data_dir: str | os.PathLike, storage_url: str | None = None) -> UPath:
    """The folder every file of the study lives under: ``study_storage_url(storage_url)``, else
    the local data folder."""
    url = study_storage_url(storage_url)
    return UPath(url) if url else UPath(data_dir)


def checked_storage_url(url: str, source: str = STORAGE_ENV) -> UPath:
    """``url`` as a UPath, or StorageURLError naming ``source`` (the variable or the setting it
    came from) and ``url``."""
    where = f"{source}={url!r}"
    url = _local_file_url(url, where)
    try:
        path = UPath(url)
    except Exception as exc:  # noqa: BLE001 - an unknown protocol, a missing fsspec package
        raise StorageURLError(f"{where}: {type(exc).__name__}: {exc}") from None
    protocol = path.protocol
    if protocol == "memory" and os.environ.get(ALLOW_MEMORY_ENV) != "1":
        raise StorageURLError(
            f"{where}: fsspec's memory file system lives inside one process and is gone when it "
            "exits (each Dagster step runs in its own process), so nothing would be kept; use a "
            "local folder or an object store (s3://, gs://, az://)"
        )
    if protocol not in PERSISTENT_PROTOCOLS | {"memory"}:
        raise StorageURLError(
            f"{where}: {protocol!r} is not a file system a study can be kept in (read-only or "
            f"not persistent); use one of {', '.join(sorted(PERSISTENT_PROTOCOLS - {''}))}"
        )
    if not is_local(path):
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            raise StorageURLError(f"{where}: {_missing_package(protocol, exc, source)}") from None
    else:
        local = os.path.realpath(local_path(path))
        if any(local == root or local.startswith(root + "/") for root in VIRTUAL_ROOTS):
            raise StorageURLError(f"{where}: {local} is a virtual file system, not storage")
    return path


def _local_file_url(url: str, where: str) -> str:
    """``file://localhost/abs`` is ``/abs`` (RFC 8089), which fsspec would read as the relative
    folder ``./localhost/abs``: written as ``file:///abs``. Another host is refused, since its
    files are not reachable from here as a path."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("file", "local"):
        return url
    host, _, path = rest.partition("/")
    if not host:
        return url
    if host.lower() != "localhost":
        raise StorageURLError(
            f"{where}: {host!r} is the host of this {scheme}:// URL, and files on another host are "
            f"not reachable here as a path; write {scheme}:///<absolute path> (or "
            f"{scheme}://localhost/<absolute path>), or mount that host's folder here"
        )
    if not path.strip("/"):
        raise StorageURLError(f"{where}: names no folder; write {scheme}:///<absolute path>")
    return f"{scheme}:///{path}"


def _missing_package(protocol: str, exc: ImportError, source: str) -> str:
    """Which package the protocol's fsspec file system lives in, and what to do."""
    missing = getattr(exc.__cause__, "name", None) or exc.name  # the module not found
    known = known_implementations.get(protocol, {}).get("class", "")
    package = (missing or known).partition(".")[0]
    if not package:
        return str(exc)
    return (
        f"{protocol}:// needs the Python package {package}, which is not installed ({exc}); "
        f"pip install {package}, or "
        + (
            f"unset {STORAGE_ENV} to keep the files in the data folder"
            if source == STORAGE_ENV
            else f"name another store in {source}"
        )
    )


def check_storage_env() -> None:
    """Refuse a bad ``$PHASE2_STORAGE_URL`` now, before the code location is loaded (Dagster
    would wrap the one line in a DagsterUserCodeLoadError traceback)."""
    url = os.environ.get(STORAGE_ENV)
    if url:
        checked_storage_url(url)


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
