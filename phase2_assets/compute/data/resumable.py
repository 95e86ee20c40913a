"""Embedding that survives a crash: a killed run resumes from the last complete chunk.

Encoding 500K passages takes hours on a CPU; losing it to a pre-empted node or a kill -9 is not
acceptable. Chunks are written into a memory-mapped ``.npy`` staging file; after each chunk the
file is flushed and a small JSON journal beside it is replaced atomically, naming how many chunks
are complete and *what* they were computed from (texts, model, shape, chunk size). A rerun whose
inputs match the journal continues after the last complete chunk; anything else starts over.
Chunk boundaries do not move between runs, so a resumed array equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from phase2_assets.compute.data.encoders import encode_to
from phase2_assets.compute.data.storage import atomic_path


def texts_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def journal_path(staging: Path) -> Path:
    return staging.with_suffix(".journal.json")


def _read_journal(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_journal(path: Path, journal: dict) -> None:
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(journal, sort_keys=True))


def encode_resumable(
    model,
    texts: Sequence[str],
    staging: str | os.PathLike,
    *,
    dim: int,
    batch_size: int,
    chunk: int,
    model_id: str,
    progress: Callable[[int, int], None] | None = None,
    renormalise: bool = False,
) -> tuple[np.ndarray, int]:
    """Encode into ``staging`` (a ``.npy``), resuming if a matching journal says so.

    Returns the memmap and the number of chunks that were reused from an earlier run.
    """
    staging = Path(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    journal_file = journal_path(staging)
    n = len(texts)
    identity = {
        "texts_sha256": texts_fingerprint(texts),
        "model": model_id,
        "rows": n,
        "dim": dim,
        "chunk": chunk,
    }
    journal = _read_journal(journal_file)
    done = 0
    if journal and journal.get("identity") == identity and staging.exists():
        try:
            out = np.load(staging, mmap_mode="r+", allow_pickle=False)
            if out.shape == (n, dim) and out.dtype == np.float32:
                done = int(journal["chunks_done"])
            else:
                done = 0
        except (ValueError, OSError):
            done = 0
    if done == 0:
        out = np.lib.format.open_memmap(staging, mode="w+", dtype=np.float32, shape=(n, dim))
        _write_journal(journal_file, {"identity": identity, "chunks_done": 0})
    reused = done
    n_chunks = -(-n // chunk) if n else 0
    if progress and done:
        progress(min(done * chunk, n), n)  # where the resumed run starts
    for c in range(done, n_chunks):
        start = c * chunk

        def in_chunk(rows: int, _: int, start=start) -> None:
            if progress:
                progress(start + rows, n)

        encode_to(
            model,
            texts[start : start + chunk],
            out[start : start + chunk],
            batch_size=batch_size,
            chunk=chunk,
            renormalise=renormalise,
            progress=in_chunk,
        )
        out.flush()
        _write_journal(journal_file, {"identity": identity, "chunks_done": c + 1})
    return out, reused


def clear_journal(staging: str | os.PathLike) -> None:
    """After the staged array has been moved into place, its journal has nothing to resume."""
    journal_path(Path(staging)).unlink(missing_ok=True)
