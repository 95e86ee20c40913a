"""Storage of assets as plain, inspectable files, one per asset partition.

The default Dagster IO manager pickles whole objects; this study's assets are large arrays and
tables that other tools should read. So arrays are ``.npy`` (memory-mapped on load, never
pickled), bundles of small arrays ``.npz``, tables Parquet and faiss indexes faiss's own format.
Every write is atomic (temporary file + rename) and its SHA-256 is recorded as metadata.
Paths: ``<base>/<asset>/<pair or dataset>[/<bits>].<ext>``.
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

from phase2_assets.compute import storage


@dataclass(frozen=True)
class StagedArray:
    """An ``.npy`` already written (chunk by chunk) to a temporary file on the same filesystem;
    the IO manager moves it into place atomically instead of copying gigabytes."""

    path: Path


def staging_path(base_dir: str | os.PathLike, name: str) -> Path:
    folder = Path(base_dir) / ".staging"
    folder.mkdir(parents=True, exist_ok=True)
    # A stable name, so that a rerun after a crash finds (and resumes) the partial array.
    return folder / f"{name}.npy"


class _FileStore(dg.UPathIOManager):
    """Shared logic: partition paths (pair first, then bits), atomic writes, checksums."""

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self._checksums: dict[str, str] = {}

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        parts = partition.split("/")
        if len(parts) == 2:  # multi-partition: dimensions come sorted ("bits", "pair")
            bits, pair = parts
            return base_path / pair / bits
        return base_path / partition  # keys are validated names: no '/' or '..'

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        self._write(obj, Path(str(path)))
        self._checksums[str(path)] = storage.sha256_file(str(path))

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict:
        paths = (
            list(self._get_paths_for_partitions(context).values())
            if context.has_asset_partitions
            else [self._get_path(context)]
        )
        digest = self._checksums.get(str(paths[0]))
        size = Path(str(paths[0])).stat().st_size
        return {"sha256": digest, "file_bytes": size} if digest else {}

    def _write(self, obj: Any, path: Path) -> None:
        raise NotImplementedError


class NpyStore(_FileStore):
    extension = ".npy"

    def _write(self, obj, path):
        if isinstance(obj, StagedArray):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(obj.path, path)
        else:
            storage.save_npy(path, obj)

    def load_from_path(self, context, path):
        return storage.load_npy(str(path))


class NpzStore(_FileStore):
    extension = ".npz"

    def _write(self, obj, path):
        storage.save_npz(path, obj)

    def load_from_path(self, context, path):
        return storage.load_npz(str(path))


class ParquetStore(_FileStore):
    extension = ".parquet"

    def _write(self, obj: pl.DataFrame, path):
        with storage.atomic_path(path, suffix=".parquet") as tmp:
            obj.write_parquet(tmp)

    def load_from_path(self, context, path):
        return pl.read_parquet(str(path))


class FaissStore(_FileStore):
    extension = ".faiss"

    def _write(self, obj: faiss.Index, path):
        with storage.atomic_path(path, suffix=".faiss") as tmp:
            faiss.write_index(obj, str(tmp))

    def load_from_path(self, context, path):
        return faiss.read_index(str(path))


class JsonStore(_FileStore):
    extension = ".json"

    def _write(self, obj, path):
        with storage.atomic_path(path, suffix=".json") as tmp:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))

    def load_from_path(self, context, path):
        return json.loads(Path(str(path)).read_text())


class HtmlStore(_FileStore):
    extension = ".html"

    def _write(self, obj: str, path):
        with storage.atomic_path(path, suffix=".html") as tmp:
            tmp.write_text(obj, encoding="utf-8")

    def load_from_path(self, context, path):
        return Path(str(path)).read_text(encoding="utf-8")


_STORES = {
    "npy": NpyStore,
    "npz": NpzStore,
    "parquet": ParquetStore,
    "faiss": FaissStore,
    "json": JsonStore,
    "html": HtmlStore,
}


class StudyStorage(dg.ConfigurableIOManagerFactory):
    """Files under ``base_dir`` (local path or any fsspec URL) in one of the study's formats."""

    base_dir: str
    format: str

    def create_io_manager(self, context) -> dg.UPathIOManager:
        if self.format not in _STORES:
            raise ValueError(f"unknown storage format {self.format!r}; one of {sorted(_STORES)}")
        return _STORES[self.format](UPath(self.base_dir))


def io_manager_resources(base_dir: str) -> dict[str, StudyStorage]:
    return {f"{fmt}_io_manager": StudyStorage(base_dir=base_dir, format=fmt) for fmt in _STORES}
