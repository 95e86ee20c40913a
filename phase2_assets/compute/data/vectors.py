"""Precomputed vectors: a model that is a folder of embeddings someone already holds.

Teams that embed with a hosted API or an in-house encoder cannot load it through
sentence-transformers, but they have the vectors. A model entry with ``vectors: <folder>`` reads
``<folder>/<dataset key>/`` instead of encoding: ``corpus.npy`` + ``corpus_ids.txt`` and
``queries.npy`` + ``query_ids.txt`` (float32 or float16, memory-mapped; one id per line, in row
order), or ``corpus.parquet`` / ``queries.parquet`` with an ``id`` column and a list column
``vector`` (a list, large list or fixed-size list of float16/32/64: pyarrow's, polars'
``List`` and ``Array``). The rows are matched to the collection's ids (any order; ids the
collection does not hold are ignored and counted) and written, streamed in chunks, in the
collection's row order, so every asset downstream reads them exactly as it reads encoded ones.

Each way a file can be wrong stops the import with the file and the id (or line): a missing id
(and, when the id is there but for a byte-order mark or whitespace around it, that), a duplicate
id, an ids file that is not UTF-8, an empty or unreadable file, a ``.npz`` under a ``.npy`` name,
the wrong dimension, a NaN/Inf row, a row that is not unit-norm (unless the model says
``normalize: true``, which L2-normalises in float32 and is recorded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phase2_assets.compute.data.storage import release_pages

ROLES = {"corpus": ("corpus", "corpus_ids.txt"), "queries": ("queries", "query_ids.txt")}


class VectorFileError(ValueError):
    """A precomputed vector file that cannot be imported as it is."""


@dataclass(frozen=True)
class VectorSource:
    """One role's file(s): ``vectors`` (``.npy`` or ``.parquet``) and, for ``.npy``, the ids."""

    vectors: Path
    ids: Path | None = None

    @property
    def files(self) -> list[Path]:
        return [self.vectors] + ([self.ids] if self.ids else [])


@dataclass(frozen=True)
class ImportReport:
    rows: int  # the collection's rows, all filled
    source_rows: int
    extra_ids: int  # ids in the file that the collection does not hold (ignored)
    dtype: str
    normalized_rows: int  # rows whose norm ``normalize`` changed beyond the tolerance


def find_source(folder: str | Path, dataset: str, role: str) -> VectorSource:
    """The files of ``role`` ("corpus" or "queries") for ``dataset`` under ``folder``."""
    stem, ids_name = ROLES[role]
    where = Path(folder).expanduser() / dataset
    npy, parquet = where / f"{stem}.npy", where / f"{stem}.parquet"
    if npy.is_file() and parquet.is_file():
        raise VectorFileError(f"{where}: both {npy.name} and {parquet.name}; keep one")
    if npy.is_file():
        ids = where / ids_name
        if not ids.is_file():
            raise VectorFileError(f"{npy}: its ids file {ids} is missing (one id per line)")
        return VectorSource(npy, ids)
    if parquet.is_file():
        return VectorSource(parquet)
    raise VectorFileError(
        f"{where}: no {stem}.npy (+ {ids_name}) or {stem}.parquet for dataset {dataset!r}"
    )


def _read_ids(source: VectorSource) -> list[str]:
    if source.ids is not None:
        try:
            with open(source.ids, encoding="utf-8") as fh:
                return [line.rstrip("\r\n") for line in fh]
        except UnicodeDecodeError:
            raise _not_utf8(source.ids) from None
    handle = _parquet_file(source.vectors)
    if "id" not in handle.schema_arrow.names:
        raise VectorFileError(f"{source.vectors}: no 'id' column (one id per row)")
    column = handle.read(columns=["id"]).column("id")
    return [str(x) for x in column.to_pylist()]


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise VectorFileError(f"{path}: not a readable Parquet file ({exc})") from exc


def _not_utf8(path: Path) -> VectorFileError:
    """The line and column of the first byte of ``path`` that is not UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return VectorFileError(
            f"{path}: line {line} is not UTF-8 (byte 0x{data[exc.start]:02x} at column "
            f"{column}); save the ids as UTF-8 text, one id per line"
        )
    return VectorFileError(f"{path}: not UTF-8")  # changed while it was read


def _npy_chunks(source: VectorSource, dim: int, chunk: int) -> tuple[str, int, Iterator]:
    if source.vectors.stat().st_size == 0:
        raise VectorFileError(f"{source.vectors}: the file is empty (0 bytes), not a .npy array")
    try:
        array = np.load(source.vectors, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise VectorFileError(f"{source.vectors}: not a readable .npy array ({exc})") from exc
    if not isinstance(array, np.ndarray):  # a .npz (a zip of arrays) under a .npy name
        names = ", ".join(getattr(array, "files", [])[:3])
        getattr(array, "close", lambda: None)()
        raise VectorFileError(
            f"{source.vectors}: a .npz archive (a zip of arrays{f': {names}' if names else ''}),"
            f" not one .npy array; write it with numpy.save, not numpy.savez"
        )
    if array.dtype not in (np.float32, np.float16):
        raise VectorFileError(f"{source.vectors}: dtype {array.dtype}; expected float32/float16")
    if array.ndim != 2 or array.shape[1] != dim:
        raise VectorFileError(
            f"{source.vectors}: shape {array.shape}; the model's dim is {dim}, so (rows, {dim})"
        )
    blocks = ((s, array[s : s + chunk]) for s in range(0, len(array), chunk))
    return str(array.dtype), len(array), blocks


def _parquet_chunks(source: VectorSource, dim: int, chunk: int) -> tuple[str, int, Iterator]:
    import pyarrow as pa
    import pyarrow.compute as pc

    handle = _parquet_file(source.vectors)
    if "vector" not in handle.schema_arrow.names:
        raise VectorFileError(f"{source.vectors}: no 'vector' column (a list of floats per row)")
    kind = handle.schema_arrow.field("vector").type
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if not any(is_list(kind) for is_list in lists):  # polars writes List(Float32) as large_list
        raise VectorFileError(f"{source.vectors}: column 'vector' is {kind}, not a list")
    if pa.types.is_fixed_size_list(kind) and kind.list_size != dim:
        raise VectorFileError(
            f"{source.vectors}: vectors have {kind.list_size} values; the model's dim is {dim}"
        )
    value = kind.value_type
    if not (pa.types.is_float32(value) or pa.types.is_float16(value) or pa.types.is_float64(value)):
        raise VectorFileError(f"{source.vectors}: vector values are {value}, not floats")

    def blocks():
        start = 0
        for batch in handle.iter_batches(batch_size=chunk, columns=["vector"]):
            column = batch.column(0)
            if column.null_count:
                raise VectorFileError(f"{source.vectors}: a null vector in rows {start}+")
            lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
            if (lengths != dim).any():
                row = start + int(np.flatnonzero(lengths != dim)[0])
                raise VectorFileError(
                    f"{source.vectors}: row {row} has {lengths[row - start]} values; the "
                    f"model's dim is {dim}"
                )
            flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
            yield start, flat.reshape(len(column), dim)
            start += len(column)

    return str(value), handle.metadata.num_rows, blocks()


def _positions(source: VectorSource, file_ids: list[str], wanted: Sequence[str]) -> np.ndarray:
    """For each file row, its row in the collection (-1: not in the collection)."""
    where = {doc: i for i, doc in enumerate(wanted)}
    seen: dict[str, int] = {}
    positions = np.full(len(file_ids), -1, dtype=np.int64)
    for row, doc in enumerate(file_ids):
        if doc in seen:
            raise VectorFileError(
                f"{source.ids or source.vectors}: duplicate id {doc!r} (rows {seen[doc]} and {row})"
            )
        seen[doc] = row
        positions[row] = where.get(doc, -1)
    missing = [doc for doc in wanted if doc not in seen]
    if missing:
        _stray_characters(source, file_ids, positions, where, seen)
        raise VectorFileError(
            f"{source.ids or source.vectors}: {len(missing)} id(s) of the collection have no "
            f"vector, e.g. {missing[0]!r}"
            + (f" (and {', '.join(map(repr, missing[1:3]))})" if len(missing) > 1 else "")
        )
    return positions


def _stray_characters(source: VectorSource, file_ids, positions, where, seen) -> None:
    """An id of the file that would be a missing collection id but for a byte-order mark or
    whitespace around it: say so, with its line (the ids file) or row (Parquet)."""
    for row in np.flatnonzero(positions < 0):
        doc = file_ids[row]
        clean = doc.lstrip("\ufeff").strip()
        if clean == doc or clean not in where or clean in seen:
            continue
        what = (
            "begins with a byte-order mark (U+FEFF, a BOM); save the file as UTF-8 without one"
            if doc.startswith("\ufeff")
            else "has whitespace around it; write one id per line, nothing around it"
        )
        at = f"line {row + 1}" if source.ids is not None else f"row {row}"
        raise VectorFileError(
            f"{source.ids or source.vectors}: {at}: id {doc!r} {what} (the collection's id is "
            f"{clean!r})"
        )


def import_vectors(
    source: VectorSource,
    wanted_ids: Sequence[str],
    out: np.ndarray,
    *,
    normalize: bool,
    tolerance: float,
    chunk: int = 65536,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Write ``source``'s vector of every id in ``wanted_ids`` into ``out`` (float32, row i =
    ``wanted_ids[i]``), checking every row; raises ``VectorFileError`` naming file and id."""
    dim = out.shape[1]
    if len(out) != len(wanted_ids):
        raise ValueError(f"output has {len(out)} rows for {len(wanted_ids)} ids")
    file_ids = _read_ids(source)
    reader = _npy_chunks if source.vectors.suffix == ".npy" else _parquet_chunks
    dtype, n_rows, blocks = reader(source, dim, chunk)
    if len(file_ids) != n_rows:
        raise VectorFileError(
            f"{source.ids or source.vectors}: {len(file_ids)} ids for {n_rows} vectors in "
            f"{source.vectors.name}"
        )
    positions = _positions(source, file_ids, wanted_ids)
    changed, done = 0, 0
    for start, block in blocks:
        keep = np.flatnonzero(positions[start : start + len(block)] >= 0)
        if not len(keep):
            continue
        rows = np.asarray(block[keep], dtype=np.float32)
        norms = np.linalg.norm(rows.astype(np.float64), axis=1)
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            row = start + int(keep[np.flatnonzero(bad)[0]])
            raise VectorFileError(
                f"{source.vectors}: id {file_ids[row]!r} (row {row}) has a NaN or Inf value"
            )
        off = np.abs(norms - 1.0) > tolerance
        if normalize:
            if (norms == 0).any():
                row = start + int(keep[np.flatnonzero(norms == 0)[0]])
                raise VectorFileError(
                    f"{source.vectors}: id {file_ids[row]!r} (row {row}) is the zero vector; "
                    f"it has no direction to normalise to"
                )
            rows /= norms[:, None].astype(np.float32)
            changed += int(off.sum())
        elif off.any():
            i = int(np.flatnonzero(off)[0])
            row = start + int(keep[i])
            raise VectorFileError(
                f"{source.vectors}: id {file_ids[row]!r} (row {row}) has L2 norm "
                f"{norms[i]:.6g}, not 1 within {tolerance:g}; the study scores by inner "
                f"product, so vectors must be unit-norm (or set normalize: true on the model)"
            )
        out[positions[start + keep]] = rows
        release_pages(block)
        done += len(keep)
        if progress:
            progress(done, len(wanted_ids))
    return ImportReport(
        rows=len(wanted_ids),
        source_rows=n_rows,
        extra_ids=int((positions < 0).sum()),
        dtype=dtype,
        normalized_rows=changed,
    )
