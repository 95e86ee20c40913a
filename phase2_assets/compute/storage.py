"""Atomic, checksummed files: a result is either the old complete file or the new complete file.

Every writer goes to a temporary file in the destination folder, fsyncs it, then renames it over
the target (an atomic replace on POSIX). A crash mid-write leaves a stray ``.tmp-*`` file, never a
truncated result; earlier results are never deleted before the new one is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def save_npy(target: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(target, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)


def load_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Memory-mapped read-only load; refuses object arrays (no pickle, ever)."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def save_npz(target: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(target, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as bundle:
        return {k: bundle[k] for k in bundle.files}


def sha256_array(array: np.ndarray, chunk_rows: int = 65536) -> str:
    """Checksum of an array's bytes (row chunks, so memmaps stream), plus its dtype and shape."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    for start in range(0, max(len(array), 1), chunk_rows):
        digest.update(np.ascontiguousarray(array[start : start + chunk_rows]).tobytes())
        release_pages(array)
    return digest.hexdigest()


def release_pages(array: np.ndarray) -> None:
    """Drop a read-only memmap's pages from this process's resident set.

    Streaming a 3 GB memory-mapped matrix block by block leaves every page it touched mapped,
    so the process's RSS grows by the whole matrix although it only ever needs one block. For a
    read-only shared file mapping, ``MADV_DONTNEED`` only unmaps: the pages stay in the OS page
    cache and a later read faults them back in unchanged. Anything else (in-memory arrays,
    writable maps) is left alone.
    """
    base = array
    while base is not None and getattr(base, "_mmap", None) is None:
        base = getattr(base, "base", None)
    handle = getattr(base, "_mmap", None)
    if handle is None or getattr(base, "mode", None) != "r" or not hasattr(mmap, "MADV_DONTNEED"):
        return
    handle.madvise(mmap.MADV_DONTNEED)
