"""Precomputed vectors: matched by id in any order, every bad file named with its id."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phase2_assets.compute.data import vectors


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _write_npy(folder, role: str, ids: list[str], array: np.ndarray):
    stem, ids_name = vectors.ROLES[role]
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{stem}.npy", array, allow_pickle=False)
    (folder / ids_name).write_text("".join(f"{i}\n" for i in ids))


def _write_parquet(folder, role: str, ids: list[str], array: np.ndarray, fixed: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    flat = pa.array(array.reshape(-1))
    column = (
        pa.FixedSizeListArray.from_arrays(flat, array.shape[1])
        if fixed
        else pa.array([row.tolist() for row in array], type=pa.list_(pa.float32()))
    )
    pq.write_table(
        pa.table({"id": ids, "vector": column}), folder / f"{vectors.ROLES[role][0]}.parquet"
    )


def _import(tmp_path, wanted, dim=8, normalize=False, role="corpus"):
    source = vectors.find_source(tmp_path, "ds", role)
    out = np.zeros((len(wanted), dim), dtype=np.float32)
    report = vectors.import_vectors(
        source, wanted, out, normalize=normalize, tolerance=1e-3, chunk=3
    )
    return out, report


@pytest.mark.parametrize("kind", ["npy", "npy16", "parquet", "parquet_list"])
def test_rows_are_matched_by_id_in_any_order_and_extras_are_counted(tmp_path, kind):
    x = _unit(10, 8)
    wanted = [f"d{i}" for i in range(10)]
    order = np.random.default_rng(1).permutation(10)
    ids = [wanted[i] for i in order] + ["stray1", "stray2"]
    rows = np.vstack([x[order], _unit(2, 8, seed=5)])
    if kind.startswith("npy"):
        dtype = np.float16 if kind == "npy16" else np.float32
        _write_npy(tmp_path / "ds", "corpus", ids, rows.astype(dtype))
    else:
        _write_parquet(tmp_path / "ds", "corpus", ids, rows, fixed=kind == "parquet")
    out, report = _import(tmp_path, wanted, normalize=kind == "npy16")
    if kind == "npy16":  # float16 rows are off unit norm by ~1e-3: normalize re-normalises
        expected = x.astype(np.float16).astype(np.float32)
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(out, x)
    assert report.extra_ids == 2 and report.source_rows == 12 and report.rows == 10


def test_float16_rows_outside_the_tolerance_need_normalize(tmp_path):
    x = _unit(4, 8)
    x[2] *= 1.01
    _write_npy(tmp_path / "ds", "queries", ["q0", "q1", "q2", "q3"], x)
    with pytest.raises(
        vectors.VectorFileError, match=r"queries.npy: id 'q2' \(row 2\) has L2 norm 1.01"
    ):
        _import(tmp_path, ["q0", "q1", "q2", "q3"], role="queries")
    out, report = _import(tmp_path, ["q0", "q1", "q2", "q3"], role="queries", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert report.normalized_rows == 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", r"corpus_ids.txt: 1 id\(s\) of the collection have no vector, e.g. 'd3'"),
        ("duplicate", r"corpus_ids.txt: duplicate id 'd1' \(rows 1 and 3\)"),
        ("dim", r"corpus.npy: shape \(5, 6\); the model's dim is 8"),
        ("nan", r"corpus.npy: id 'd4' \(row 4\) has a NaN or Inf value"),
        ("inf", r"corpus.npy: id 'd0' \(row 0\) has a NaN or Inf value"),
        ("norm", r"corpus.npy: id 'd2' \(row 2\) has L2 norm 0.5"),
        ("count", r"corpus_ids.txt: 4 ids for 5 vectors"),
        ("dtype", r"corpus.npy: dtype int64"),
    ],
)
def test_each_bad_file_names_the_file_and_the_id(tmp_path, damage, message):
    x = _unit(5, 8)
    ids = [f"d{i}" for i in range(5)]
    wanted = list(ids)
    if damage == "missing":
        ids, x = ids[:3] + ids[4:], np.delete(x, 3, axis=0)
    elif damage == "duplicate":
        ids[3] = "d1"
        wanted = ["d0", "d1", "d2", "d4"]
    elif damage == "dim":
        x = x[:, :6]
    elif damage == "nan":
        x[4, 3] = np.nan
    elif damage == "inf":
        x[0, 0] = np.inf
    elif damage == "norm":
        x[2] *= 0.5
    elif damage == "count":
        ids = ids[:4]
    elif damage == "dtype":
        x = np.arange(40).reshape(5, 8)
    _write_npy(tmp_path / "ds", "corpus", ids, x)
    with pytest.raises(vectors.VectorFileError, match=message):
        _import(tmp_path, wanted)


def test_parquet_rows_of_the_wrong_length_are_named(tmp_path):
    x = _unit(4, 8)
    _write_parquet(tmp_path / "ds", "corpus", ["a", "b", "c", "d"], x, fixed=False)
    table = pq.read_table(tmp_path / "ds" / "corpus.parquet").to_pylist()
    table[2]["vector"] = table[2]["vector"][:5]
    pq.write_table(pa.Table.from_pylist(table), tmp_path / "ds" / "corpus.parquet")
    with pytest.raises(vectors.VectorFileError, match="corpus.parquet: row 2 has 5 values"):
        _import(tmp_path, ["a", "b", "c", "d"])
    _write_parquet(tmp_path / "ds", "corpus", ["a", "b", "c", "d"], x[:, :4])
    with pytest.raises(
        vectors.VectorFileError, match="vectors have 4 values; the model's dim is 8"
    ):
        _import(tmp_path, ["a", "b", "c", "d"])


def test_missing_files_say_what_the_folder_should_hold(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(vectors.VectorFileError, match=r"no corpus.npy \(\+ corpus_ids.txt\)"):
        vectors.find_source(tmp_path, "ds", "corpus")
    np.save(tmp_path / "ds" / "queries.npy", _unit(2, 8))
    with pytest.raises(vectors.VectorFileError, match="its ids file .*query_ids.txt is missing"):
        vectors.find_source(tmp_path, "ds", "queries")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("not_utf8", r"corpus_ids.txt: line 3 is not UTF-8 \(byte 0xe9 at column 2\)"),
        ("empty_npy", r"corpus.npy: the file is empty \(0 bytes\), not a .npy array"),
        ("truncated_npy", r"corpus.npy: not a readable .npy array"),
        ("npz", r"corpus.npy: a .npz archive \(a zip of arrays: x\), not one .npy array"),
        ("bom", r"corpus_ids.txt: line 1: id '\\ufeffd0' begins with a byte-order mark"),
        ("spaces", r"corpus_ids.txt: line 3: id ' d2 ' has whitespace around it"),
        ("tab", r"corpus_ids.txt: line 5: id 'd4\\t' has whitespace around it"),
    ],
)
def test_an_unreadable_file_or_a_stray_character_is_named_with_its_file_and_line(
    tmp_path, damage, message
):
    """Before: UnicodeDecodeError, EOFError, AttributeError (none naming the file), and a BOM or
    spaces reported only as 'id(s) of the collection have no vector'."""
    x, ids = _unit(5, 8), [f"d{i}" for i in range(5)]
    folder = tmp_path / "ds"
    _write_npy(folder, "corpus", ids, x)
    if damage == "not_utf8":
        (folder / "corpus_ids.txt").write_bytes(b"d0\nd1\nd\xe9\nd3\nd4\n")
    elif damage == "empty_npy":
        (folder / "corpus.npy").write_bytes(b"")
    elif damage == "truncated_npy":
        (folder / "corpus.npy").write_bytes((folder / "corpus.npy").read_bytes()[:100])
    elif damage == "npz":
        np.savez(folder / "corpus.npz", x=x)
        (folder / "corpus.npz").rename(folder / "corpus.npy")
    elif damage == "bom":
        (folder / "corpus_ids.txt").write_text("\ufeff" + "".join(f"{i}\n" for i in ids))
    elif damage == "spaces":
        ids[2] = " d2 "
    elif damage == "tab":
        ids[4] = "d4\t"
    if damage in ("spaces", "tab"):
        (folder / "corpus_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    with pytest.raises(vectors.VectorFileError, match=message):
        _import(tmp_path, [f"d{i}" for i in range(5)])


def test_a_parquet_id_with_a_bom_is_named_with_its_row(tmp_path):
    _write_parquet(tmp_path / "ds", "corpus", ["a", "\ufeffb", "c"], _unit(3, 8))
    with pytest.raises(vectors.VectorFileError, match=r"corpus.parquet: row 1: id '\\ufeffb'"):
        _import(tmp_path, ["a", "b", "c"])


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "corpus.parquet").write_text("id,vector\n")
    with pytest.raises(vectors.VectorFileError, match="corpus.parquet: not a readable Parquet"):
        _import(tmp_path, ["a"])


@pytest.mark.parametrize(
    "dtype", ["list32", "list64", "array32", "array64"], ids=lambda d: f"polars-{d}"
)
def test_a_vector_column_written_by_polars_is_read(tmp_path, dtype):
    """Before: polars' List(Float32) (Arrow large_list) was refused as 'not a list'."""
    import polars as pl

    x = _unit(6, 8)
    inner = pl.Float32 if dtype.endswith("32") else pl.Float64
    kind = pl.List(inner) if dtype.startswith("list") else pl.Array(inner, 8)
    frame = pl.DataFrame({"id": [f"d{i}" for i in range(6)], "vector": x.tolist()})
    (tmp_path / "ds").mkdir()
    frame.with_columns(pl.col("vector").cast(kind)).write_parquet(
        tmp_path / "ds" / "corpus.parquet"
    )
    stored = pq.read_schema(tmp_path / "ds" / "corpus.parquet").field("vector").type
    assert pa.types.is_large_list(stored) or pa.types.is_fixed_size_list(stored)
    out, report = _import(tmp_path, [f"d{i}" for i in (5, 0, 3, 1, 2, 4)])
    np.testing.assert_allclose(out, x[[5, 0, 3, 1, 2, 4]], rtol=1e-6)
    assert report.source_rows == 6 and report.dtype == (
        "float" if inner == pl.Float32 else "double"
    )


def test_a_large_list_of_the_wrong_length_is_named(tmp_path):
    vector = pa.array([[0.6, 0.8], [1.0]], type=pa.large_list(pa.float32()))
    (tmp_path / "ds").mkdir()
    pq.write_table(
        pa.table({"id": ["a", "b"], "vector": vector}), tmp_path / "ds" / "corpus.parquet"
    )
    with pytest.raises(vectors.VectorFileError, match="corpus.parquet: row 1 has 1 values"):
        _import(tmp_path, ["a", "b"], dim=2)
