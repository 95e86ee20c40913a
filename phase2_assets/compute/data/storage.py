"""Atomic, checksummed files: a result is either the old complete file or the new complete file.

Every writer goes to a temporary file in the destination folder, fsyncs it, then renames it over
the target (an atomic replace on POSIX). A crash mid-write leaves a stray ``.tmp-*`` file, never a
truncated result; earlier results are never deleted before the new one is complete. Temporaries
carry their writer's host and process id, so the next write of the same file removes those whose
writer is gone (a kill -9 leaves no litter for long) and never one that is still being written.
A write that fails (disk full, permission denied, read-only file system) raises ``WriteFailed``
naming the file and the cause, after removing its temporary; the previous file is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import mmap
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_CAUSES = {
    errno.ENOSPC: ("the disk is full", "free space (or point PHASE2_DATA_DIR elsewhere) and rerun"),
    errno.EDQUOT: ("the disk quota is exhausted", "free space or raise the quota and rerun"),
    errno.EFBIG: ("the file is larger than this system allows", "raise the file-size limit"),
    errno.EACCES: ("permission denied", "make the folder writable for this user and rerun"),
    errno.EPERM: ("operation not permitted", "make the folder writable for this user and rerun"),
    errno.EROFS: ("the file system is read-only", "point PHASE2_DATA_DIR at a writable folder"),
}


class WriteFailed(OSError):
    """A result could not be written; nothing was replaced and no partial file was left."""


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _temporary_prefix(name: str) -> str:
    return f".tmp-{_host_tag()}.{os.getpid()}-{name}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove temporaries of ``target`` left by writers on this host that no longer run."""
    target = Path(target)
    pattern = re.compile(rf"^\.tmp-{_host_tag()}\.(\d+)-{re.escape(target.name)}-")
    removed = []
    try:
        siblings = list(target.parent.iterdir())
    except FileNotFoundError:
        return removed
    for path in siblings:
        match = pattern.match(path.name)
        if match and not _process_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _errno_of(exc: OSError, folder: Path) -> int | None:
    """The failure's errno; numpy's ``tofile`` reports a short write on a full disk without one."""
    if exc.errno is None:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(folder).free < (1 << 20):
                return errno.ENOSPC
    return exc.errno


def _write_failed(target: Path, exc: OSError, code: int) -> WriteFailed:
    cause, fix = _CAUSES[code]
    return WriteFailed(
        code,
        f"could not write {target}: {cause} ({exc}). Nothing was replaced: the previous "
        f"file, if any, is unchanged and no partial file is left. Fix: {fix}.",
    )


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success."""
    target = Path(target)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(target)
        prefix = _temporary_prefix(target.name)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except WriteFailed:
        raise
    except OSError as exc:
        code = _errno_of(exc, target.parent)
        if code in _CAUSES:
            raise _write_failed(target, exc, code) from exc
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
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


def row_blocks(array: np.ndarray, chunk: int, dtype=None) -> Iterator[tuple[int, np.ndarray]]:
    """(start, rows) of ``array`` block by block, the only way the methods stream a corpus:
    each block is read into memory (as ``dtype`` if given) and a memory-mapped array's pages are
    dropped after it, so a pass over a 500K x 768 matrix holds one block, not the matrix."""
    for start in range(0, len(array), chunk):
        block = np.asarray(array[start : start + chunk], dtype=dtype)
        yield start, block
        release_pages(array)


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


def _json_safe(value):
    """NaN and ±Infinity become null (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def json_text(obj, **kwargs) -> str:
    """Strict JSON (``python -m json.tool`` and ``JSON.parse`` accept it): a number that could not
    be computed is null, never NaN; what it means is said beside it (a switch's ``state``)."""
    return json.dumps(_json_safe(obj), allow_nan=False, default=str, **kwargs)
