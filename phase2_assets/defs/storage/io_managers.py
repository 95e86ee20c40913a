"""Storage of assets as plain, inspectable files, one per asset partition.

The default Dagster IO manager pickles whole objects; this study's assets are large arrays and
tables that other tools should read. So arrays are ``.npy`` (memory-mapped on load, never
pickled), bundles of small arrays ``.npz``, tables Parquet and faiss indexes faiss's own format.
Paths: ``<base>/<asset>/<pair or dataset>[/<bits>].<ext>``; the SHA-256 and size of every file
written are recorded as metadata.

The base is a local folder or any fsspec URL (see ``locations``). Locally every write is atomic
(temporary file + rename) and arrays load memory-mapped in place. On an object store a file is
first written locally, then uploaded in one PUT (an object appears whole or not at all); a load
downloads it into the local cache (``<data>/.cache/<protocol>/<path>``), checks its size against
the store's, and memory-maps the copy. A cached copy is reused while the object's fingerprint
(fsspec ``ukey``: ETag, generation or timestamp) and size are unchanged, so a re-materialised
partition is fetched again even when its size is the same.

An upload the store refuses or that breaks off (``_upload``) fails the step with ``UploadFailed``,
which names the object. A PUT is all or nothing, so the store holds no part of it: a refused PUT
leaves the object as it was, and its previous version, if any, stays the recorded one. The local
copy written for the upload is deleted, so no later load takes it for the stored object; the
next load downloads what the store holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import faiss
import polars as pl
from upath import UPath

from phase2_assets.compute.data import storage
from phase2_assets.defs.execution import slots
from phase2_assets.defs.storage.locations import is_local, local_path


@dataclass(frozen=True)
class StagedArray:
    """An ``.npy`` already written (chunk by chunk) to a local temporary file; the IO manager
    moves it into place atomically instead of copying gigabytes (or uploads it, then moves it
    into the local cache)."""

    path: Path


def staging_path(base_dir: str | os.PathLike, name: str) -> Path:
    folder = Path(base_dir) / ".staging"
    folder.mkdir(parents=True, exist_ok=True)
    # A stable name, so that a rerun after a crash finds (and resumes) the partial array.
    return folder / f"{name}.npy"


class _FileStore(dg.UPathIOManager):
    """Shared logic: partition paths (pair first, then bits), atomic writes, checksums, and the
    upload / cached download when the base is an object store."""

    def __init__(self, base_path: UPath, cache_dir: str | os.PathLike | None = None):
        super().__init__(base_path=base_path)
        self._remote = not is_local(base_path)
        if self._remote and cache_dir is None:
            raise ValueError(f"storage at {base_path} needs a local cache_dir to download into")
        self._cache = Path(cache_dir) if cache_dir is not None else None
        self._written: dict[str, tuple[str, int]] = {}

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        # A multi-partition arrives as "bits/pair" (dimensions sorted by name), or as the key's
        # string form "bits|pair" when a run was launched with only a dagster/partition tag.
        parts = partition.replace("|", "/").split("/")
        if len(parts) == 2:
            bits, pair = parts
            return base_path / pair / bits
        return base_path / partition  # keys are validated names: no '/' or '..'

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if not self._remote:
            target = local_path(path)
            self._write(obj, target)
        else:
            target = self.cached_path(path)
            _forget(target)  # the cached copy is no longer known to match the store
            self._write(obj, target)
            _upload(target, path)
            _write_version(target, _store_version(path))  # the upload is the cached copy
        self._written[str(path)] = (storage.sha256_file(target), target.stat().st_size)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        local = self._fetch(path) if self._remote else local_path(path)
        _verify(context, local)
        return self._read(local)

    def load_input(self, context: dg.InputContext) -> Any:
        """With ``allow_missing`` (``results_io.optional_table``), an unpartitioned upstream that
        was never materialised loads as None: a table that may not exist yet (X3's, before X3)."""
        optional = bool((context.definition_metadata or {}).get("allow_missing"))
        if not optional or context.has_asset_partitions:
            return super().load_input(context)
        try:
            return super().load_input(context)
        except FileNotFoundError:
            context.log.info(f"{context.asset_key.to_user_string()}: not materialised yet")
            return None

    def load_partitions(self, context: dg.InputContext):
        """Every partition of an upstream; with ``allow_missing_partitions`` (the study-wide
        tables), those not materialised are skipped and summed up in one run-log line, not a
        warning each: a tier that has not run, or a bit length the plan does not ask for, is
        expected, and asks nothing of the researcher."""
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions"))
        paths = self._get_paths_for_partitions(context)
        loaded, missing = {}, []
        for key in context.asset_partition_keys:
            try:
                loaded[key] = self.load_from_path(context=context, path=paths[key])
            except FileNotFoundError:
                if not allow_missing:
                    raise
                missing.append(key)
        if missing:
            context.log.info(
                f"{context.asset_key.to_user_string()}: {len(loaded)} of "
                f"{len(context.asset_partition_keys)} partitions materialised; skipped "
                f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
            )
        if len(context.asset_partition_keys) == 1:
            return next(iter(loaded.values()), None)
        return loaded

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict:
        path = (
            next(iter(self._get_paths_for_partitions(context).values()))
            if context.has_asset_partitions
            else self._get_path(context)
        )
        written = self._written.get(str(path))
        return {"sha256": written[0], "file_bytes": written[1]} if written else {}

    def cached_path(self, path: UPath) -> Path:
        """Where a remote file is kept locally: ``<cache>/<protocol>/<bucket and key>``."""
        assert self._cache is not None
        return self._cache / path.protocol / path.path.lstrip("/")

    def _fetch(self, path: UPath) -> Path:
        """A local copy of a remote file, downloaded unless the cached one is current."""
        version = _store_version(path)  # FileNotFoundError when absent (missing partitions)
        cached = self.cached_path(path)
        if _cached_version(cached) == version and _has_size(cached, version["size"]):
            return cached
        _forget(cached)
        with storage.atomic_path(cached, suffix=cached.suffix) as tmp:
            path.fs.get_file(path.path, str(tmp))
            if not _has_size(tmp, version["size"]):
                raise OSError(
                    f"download of {path} has {tmp.stat().st_size} bytes; "
                    f"the store reports {version['size']}"
                )
        _write_version(cached, version)
        return cached

    def _write(self, obj: Any, path: Path) -> None:
        raise NotImplementedError

    def _read(self, path: Path) -> Any:
        raise NotImplementedError


def _row_count(path: UPath) -> int | None:
    """Rows of the Parquet file at ``path`` from its footer, None if there is none (or it is not
    readable as Parquet: it is about to be replaced anyway)."""
    import pyarrow.parquet as pq

    try:
        with path.open("rb") as fh:
            return pq.ParquetFile(fh).metadata.num_rows
    except (OSError, ValueError):
        return None


class CorruptedAssetError(ValueError):
    """A stored file no longer matches the checksum recorded when it was materialised."""


def _recorded(context: dg.InputContext | None) -> tuple[dict, float] | None:
    """(metadata, timestamp) of the latest materialisation of the one partition being loaded."""
    if context is None or not context.has_asset_key:
        return None  # loaded outside an asset (direct calls, ops): nothing recorded to check
    partitions = None
    if context.has_asset_partitions:
        keys = list(context.asset_partition_keys)
        if len(keys) != 1:
            return None  # a multi-partition load: which file is which partition is not known here
        partitions = keys
    try:
        instance = context.instance
    except Exception:  # noqa: BLE001 - contexts built outside a run have no instance
        return None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=partitions), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    meta = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    return meta, records[0].timestamp


def _verify(context: dg.InputContext | None, local: Path) -> None:
    """Refuse a file that changed after its materialisation recorded its size and SHA-256.

    Both are checked on every load. The checksum is recomputed each time, not only when the
    mtime is later: ``cp -p``, rsync and backup restores keep the mtime, and a bit flipped by the
    disk changes no timestamp at all. It costs one SHA-256 pass (0.94 GB/s here: 1.6 s for a
    500K x 768 float32 array; docs/guarantees.md); the memory map then finds the pages cached.
    Files with no recorded materialisation in this instance (written by another instance, or by
    hand) are not checked.
    """
    found = _recorded(context)
    if found is None or "sha256" not in found[0]:
        return
    meta, _ = found
    stat = local.stat()
    what = context.asset_key.to_user_string()
    if context.has_asset_partitions:
        what += f" [{context.asset_partition_key}]"
    fix = (
        f"Re-materialise {what} to rebuild it (or restore the file); nothing downstream was "
        "computed from it."
    )
    if "file_bytes" in meta and stat.st_size != meta["file_bytes"]:
        raise CorruptedAssetError(
            f"{local}: {stat.st_size} bytes, but {meta['file_bytes']} were recorded when {what} "
            f"was materialised. {fix}"
        )
    if storage.sha256_file(local) != meta["sha256"]:
        raise CorruptedAssetError(
            f"{local}: its SHA-256 no longer matches the one recorded when {what} was "
            f"materialised ({meta['sha256'][:16]}...). {fix}"
        )


class UploadFailed(storage.WriteFailed):
    """An upload to the object store failed; no materialisation is recorded for it."""


def _upload(local: Path, path: UPath) -> None:
    """Upload ``local`` as the object at ``path``: the one place the IO managers write to an
    object store (every format, staged arrays included). A failure, whatever raised it (a
    refused PUT, a dropped connection, a missing bucket), deletes ``local`` (with its version
    record) and raises ``UploadFailed`` naming the object."""
    try:
        path.fs.put_file(str(local), path.path)
    except BaseException as exc:
        # Not the stored object: a later load must download the store's, never read this.
        _forget(local)
        local.unlink(missing_ok=True)
        if not isinstance(exc, Exception):
            raise  # interrupted (KeyboardInterrupt, run termination): still nothing to read back
        raise UploadFailed(_upload_failure(path, local, exc)) from exc


def _upload_failure(path: UPath, local: Path, exc: Exception) -> str:
    said = f"upload of {path} failed: {type(exc).__name__}: {exc}."
    kept = f"The local copy written for the upload ({local}) was deleted, so nothing reads it back."
    if _store_answered(exc):
        return (
            f"{said} The store refused it: the object in the store was not replaced (a PUT is "
            f"all or nothing), so its previous version, if any, is still the recorded one. {kept} "
            "Fix the store's access (credentials, permissions, bucket) and re-materialise."
        )
    return (
        f"{said} A PUT is all or nothing: the object in the store is its previous version, if "
        "any (or, had the store taken the PUT before the reply was lost, this one, whole), and "
        "the previous version is still the recorded one, which every load checks the object "
        f"against. {kept} Fix the connection to the store and re-materialise."
    )


def _store_answered(exc: BaseException) -> bool:
    """Whether the store itself answered with an error (botocore's ``ClientError``, which s3fs
    raises as the cause of its OSError), rather than the connection failing."""
    seen: BaseException | None = exc
    for _ in range(20):  # a chain of causes, never followed round a cycle
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _store_version(path: UPath) -> dict:
    """The object's fingerprint and size as the store reports them (no download)."""
    return {"ukey": str(path.fs.ukey(path.path)), "size": int(path.fs.size(path.path))}


def _has_size(local: Path, size: int) -> bool:
    return local.exists() and local.stat().st_size == size


def _version_file(cached: Path) -> Path:
    return cached.parent / f".{cached.name}.version.json"


def _cached_version(cached: Path) -> dict | None:
    try:
        return json.loads(_version_file(cached).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_version(cached: Path, version: dict) -> None:
    with storage.atomic_path(_version_file(cached), suffix=".json") as tmp:
        tmp.write_text(json.dumps(version))


def _forget(cached: Path) -> None:
    _version_file(cached).unlink(missing_ok=True)


class NpyStore(_FileStore):
    extension = ".npy"

    def _write(self, obj, path):
        if isinstance(obj, StagedArray):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(obj.path, path)
        else:
            storage.save_npy(path, obj)

    def _read(self, path):
        return storage.load_npy(path)


class NpzStore(_FileStore):
    extension = ".npz"

    def _write(self, obj, path):
        storage.save_npz(path, obj)

    def _read(self, path):
        return storage.load_npz(path)


class ParquetStore(_FileStore):
    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        """Write the table; a table that replaces one with more rows says so (a warning in the
        run log, ``rows_before`` and ``rows_dropped`` on the materialisation), since a rebuild
        that loses rows (another study's config, a tier not run) is otherwise silent."""
        before = _row_count(path)
        super().dump_to_path(context, obj, path)
        if before is not None and obj.height < before:
            context.log.warning(
                f"{context.asset_key.to_user_string()}: the new table has {obj.height} rows, "
                f"the one it replaced at {path} had {before}"
            )
            context.add_output_metadata(
                {"rows_before": before, "rows_dropped": before - obj.height}
            )

    def _write(self, obj: pl.DataFrame, path):
        with storage.atomic_path(path, suffix=".parquet") as tmp:
            obj.write_parquet(tmp)

    def _read(self, path):
        return pl.read_parquet(path)


class FaissStore(_FileStore):
    extension = ".faiss"

    def _write(self, obj: faiss.Index, path):
        with storage.atomic_path(path, suffix=".faiss") as tmp:
            faiss.write_index(obj, str(tmp))

    def _read(self, path):
        return faiss.read_index(str(path))


class JsonStore(_FileStore):
    extension = ".json"

    def _write(self, obj, path):
        with storage.atomic_path(path, suffix=".json") as tmp:
            tmp.write_text(storage.json_text(obj, indent=2, sort_keys=True))

    def _read(self, path):
        return json.loads(path.read_text())


class HtmlStore(_FileStore):
    extension = ".html"

    def _write(self, obj: str, path):
        with storage.atomic_path(path, suffix=".html") as tmp:
            tmp.write_text(obj, encoding="utf-8")

    def _read(self, path):
        return path.read_text(encoding="utf-8")


class MarkdownStore(HtmlStore):
    extension = ".md"


_STORES = {
    "npy": NpyStore,
    "npz": NpzStore,
    "parquet": ParquetStore,
    "faiss": FaissStore,
    "json": JsonStore,
    "html": HtmlStore,
    "md": MarkdownStore,
}


class StudyStorage(dg.ConfigurableIOManagerFactory):
    """Files under ``base_dir`` (a local folder or any fsspec URL) in one of the study's formats.
    ``cache_dir`` is the local folder that files from a remote ``base_dir`` are downloaded into."""

    base_dir: str
    format: str
    cache_dir: str | None = None

    def create_io_manager(self, context) -> dg.UPathIOManager:
        # Every step initialises its IO managers before an in-process run claims a pool slot,
        # so a run launched outside the daemon and ``phase2`` (``dagster asset materialize``)
        # frees the slots of dead local runs here first instead of waiting on them forever.
        slots.sweep_once(context.instance, context.run.run_id if context.run else None)
        if self.format not in _STORES:
            raise ValueError(f"unknown storage format {self.format!r}; one of {sorted(_STORES)}")
        return _STORES[self.format](UPath(self.base_dir), self.cache_dir)


def io_manager_resources(base_dir: str, cache_dir: str | None = None) -> dict[str, StudyStorage]:
    return {
        f"{fmt}_io_manager": StudyStorage(base_dir=base_dir, format=fmt, cache_dir=cache_dir)
        for fmt in _STORES
    }
