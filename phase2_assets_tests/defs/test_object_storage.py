"""The IO managers on an object store: fsspec's in-memory filesystem stands in for s3:// or gs://.

Every format round-trips through Dagster with its checksum recorded; a staged array is uploaded;
loads come memory-mapped from a local cache that is refetched when the object changes, and a
short download is an error. The last test runs two levels of the tiny study with
PHASE2_STORAGE_URL set, so the real assets (embeddings staged chunk by chunk) write to the store.
"""

from __future__ import annotations

import hashlib
import uuid

import dagster as dg
import faiss
import numpy as np
import polars as pl
import pytest
from upath import UPath

from phase2_assets.defs.storage import gates
from phase2_assets.defs.storage.io_managers import (
    NpyStore,
    StagedArray,
    io_manager_resources,
    staging_path,
)
from phase2_assets.defs.storage.locations import (
    ALLOW_MEMORY_ENV,
    STORAGE_ENV,
    StorageURLError,
    storage_root,
)
from phase2_assets.testing import graph as gh

PAIR = "tiny__bert"
PAIRS = dg.StaticPartitionsDefinition([PAIR])
PAIR_BITS = dg.MultiPartitionsDefinition(
    {"pair": PAIRS, "bits": dg.StaticPartitionsDefinition(["8", "16"])}
)


@pytest.fixture
def bucket(monkeypatch):
    """A fresh ``memory://`` prefix, removed afterwards (the filesystem is process-wide). These
    tests run in one process, so they may opt in to the memory file system."""
    monkeypatch.setenv(ALLOW_MEMORY_ENV, "1")
    root = UPath(f"memory://bucket-{uuid.uuid4().hex[:8]}/study")
    yield root
    if root.exists():
        root.fs.rm(root.path, recursive=True)


def _bytes(url: str) -> bytes:
    path = UPath(url)
    return path.fs.cat_file(path.path)


def _assets(data_dir):
    staged = staging_path(data_dir, f"vectors-{PAIR}")

    @dg.asset(partitions_def=PAIRS, io_manager_key="npy_io_manager")
    def vectors():
        np.save(staged, np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32))
        return StagedArray(staged)

    @dg.asset(partitions_def=PAIR_BITS, io_manager_key="npy_io_manager")
    def codes(context, vectors):
        assert isinstance(vectors, np.memmap)  # downloaded once, then memory-mapped
        bits = int(context.partition_key.keys_by_dimension["bits"])
        return np.packbits(vectors[:, :bits] > 0, axis=1)

    @dg.asset(partitions_def=PAIRS, io_manager_key="npz_io_manager")
    def truth(vectors):
        return {"ids": np.argsort(-(vectors @ vectors.T), axis=1)[:, :5]}

    @dg.asset(partitions_def=PAIRS, io_manager_key="faiss_io_manager")
    def index(vectors):
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(np.ascontiguousarray(vectors))
        return flat

    @dg.asset(partitions_def=PAIRS, io_manager_key="parquet_io_manager")
    def rows(truth, index):
        return pl.DataFrame({"ntotal": [index.ntotal], "k": [truth["ids"].shape[1]]})

    @dg.asset(key=["results", "summary"], io_manager_key="json_io_manager")
    def summary():
        return {"study": "tiny", "rows": 1}

    @dg.asset(io_manager_key="json_io_manager", ins={"summary": dg.AssetIn(["results", "summary"])})
    def summary_copy(summary):
        return summary

    @dg.asset(io_manager_key="html_io_manager")
    def page():
        return "<p>report</p>"

    return [vectors, codes, truth, index, rows, summary, summary_copy, page], staged


def _materialize(assets, resources, selection, partition_key=None) -> dict[str, dict]:
    result = dg.materialize(
        assets, selection=selection, partition_key=partition_key, resources=resources
    )
    assert result.success
    return {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_every_format_round_trips_through_the_store_with_its_checksum(tmp_path, bucket):
    data = tmp_path / "data"
    assets, staged = _assets(data)
    resources = io_manager_resources(str(bucket), cache_dir=str(data / ".cache"))
    meta = _materialize(assets, resources, ["vectors", "truth", "index", "rows"], PAIR)
    meta |= _materialize(
        assets, resources, ["codes"], dg.MultiPartitionKey({"pair": PAIR, "bits": "16"})
    )
    meta |= _materialize(assets, resources, ["results/summary", "summary_copy", "page"])

    assert set(meta) == {"vectors", "codes", "truth", "index", "rows"} | {
        "results/summary",
        "summary_copy",
        "page",
    }
    for name, m in meta.items():
        url = m["path"].value
        assert url.startswith(str(bucket)), name
        stored = _bytes(url)
        assert m["sha256"].value == hashlib.sha256(stored).hexdigest(), name
        assert m["file_bytes"].value == len(stored), name
    assert meta["codes"]["path"].value == f"{bucket}/codes/{PAIR}/16.npy"

    # The staged file was uploaded and became the cached copy: no second download, no leftover.
    assert not staged.exists()
    cache = data / ".cache" / "memory" / bucket.path.lstrip("/")
    assert (cache / "vectors" / f"{PAIR}.npy").exists()
    store = NpyStore(bucket, cache_dir=tmp_path / "elsewhere")  # another machine: empty cache
    vectors = store.load_from_path(None, bucket / "vectors" / f"{PAIR}.npy")
    assert isinstance(vectors, np.memmap) and vectors.shape == (50, 16)
    codes = store.load_from_path(None, bucket / "codes" / PAIR / "16.npy")
    np.testing.assert_array_equal(codes, np.packbits(np.asarray(vectors)[:, :16] > 0, axis=1))
    rows = pl.read_parquet(UPath(meta["rows"]["path"].value).open("rb"))
    assert rows.to_dicts() == [{"ntotal": 50, "k": 5}]
    assert _bytes(meta["page"]["path"].value) == b"<p>report</p>"


def test_a_changed_object_is_fetched_again_even_at_the_same_size(tmp_path, bucket):
    path = bucket / "codes" / PAIR / "8.npy"
    here = NpyStore(bucket, cache_dir=tmp_path / "here")
    there = NpyStore(bucket, cache_dir=tmp_path / "there")
    here.dump_to_path(None, np.zeros((4, 2), np.uint8), path)
    assert np.asarray(there.load_from_path(None, path)).sum() == 0
    here.dump_to_path(None, np.ones((4, 2), np.uint8), path)  # same bytes on disk, new content
    assert np.asarray(there.load_from_path(None, path)).sum() == 8
    assert np.asarray(here.load_from_path(None, path)).sum() == 8


def test_a_short_download_is_an_error_and_leaves_no_cached_copy(tmp_path, bucket, monkeypatch):
    path = bucket / "vectors" / f"{PAIR}.npy"
    NpyStore(bucket, cache_dir=tmp_path / "writer").dump_to_path(None, np.ones(100), path)
    reader = NpyStore(bucket, cache_dir=tmp_path / "reader")

    def truncated(rpath, lpath, **kwargs):
        with open(lpath, "wb") as fh:
            fh.write(path.fs.cat_file(rpath)[:-10])

    monkeypatch.setattr(path.fs, "get_file", truncated)
    with pytest.raises(OSError, match="the store reports"):
        reader.load_from_path(None, path)
    assert not reader.cached_path(path).exists()
    monkeypatch.undo()
    assert np.asarray(reader.load_from_path(None, path)).sum() == 100


def test_a_missing_object_is_file_not_found(tmp_path, bucket):
    """UPathIOManager skips missing partitions (allow_missing_partitions) on FileNotFoundError."""
    store = NpyStore(bucket, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        store.load_from_path(None, bucket / "codes" / PAIR / "512.npy")


def test_a_remote_base_needs_a_local_cache(bucket):
    with pytest.raises(ValueError, match="cache_dir"):
        NpyStore(bucket)


def test_study_levels_write_to_the_store_and_the_gate_is_read_there(
    tmp_path, tiny_study, bucket, monkeypatch
):
    monkeypatch.setenv(STORAGE_ENV, str(bucket))
    data = tmp_path / "data"
    study, defs = gh.build(tiny_study, data)
    assert gh.materialize(defs, "dataset", "tiny").success
    pair = study.pairs()[0]
    assert gh.materialize(defs, "pair", pair).success

    written = {
        "corpus_embeddings": "npy",
        "float_ground_truth": "npz",
        "int8_index": "faiss",
        "reference_metrics": "parquet",
    }
    for name, ext in written.items():
        assert (bucket / name / f"{pair}.{ext}").exists(), name
        assert not (data / name).exists(), name  # only scratch and the cache stay local
    cache = data / ".cache" / "memory" / bucket.path.lstrip("/")
    vectors = np.load(cache / "corpus_embeddings" / f"{pair}.npy", mmap_mode="r")
    assert vectors.shape[1] == 32

    fired = {"name": "F1", "fired": True, "rule": "r", "numbers": {}}
    root = defs.resources["runtime"].storage_root
    assert str(root) == str(bucket)
    assert str(gates.write_gates(root, [fired])).startswith(str(bucket))
    assert gates.fired(root, ("F1", "F2")) == [fired]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("memory://p2", "gone when it exits"),
        ("xyz://bucket/p", "Unsupported filesystem"),
        ("https://example.org/p", "'https' is not a file system a study can be kept in"),
        ("file:///proc/x", "/proc/x is a virtual file system"),
    ],
)
def test_a_storage_url_that_would_lose_the_study_is_refused_naming_the_variable(
    url, why, monkeypatch, tmp_path
):
    """Before: memory:// "succeeded" and lost everything at exit; an unknown protocol or
    file:///proc gave a raw traceback that did not name the variable."""
    monkeypatch.delenv(ALLOW_MEMORY_ENV, raising=False)
    monkeypatch.setenv(STORAGE_ENV, url)
    with pytest.raises(StorageURLError, match=why) as exc:
        storage_root(tmp_path)
    assert str(exc.value).startswith(f"{STORAGE_ENV}={url!r}: ")


def _without_package(monkeypatch, package: str):
    """Make fsspec's file system class for a protocol fail as it does without its package."""
    from phase2_assets.defs.storage import locations

    real = locations.fsspec.get_filesystem_class

    def get_filesystem_class(protocol):
        if protocol in ("s3", "s3a"):
            try:
                raise ModuleNotFoundError(f"No module named {package!r}", name=package)
            except ModuleNotFoundError as missing:
                raise ImportError(f"Install {package} to access S3") from missing
        return real(protocol)

    monkeypatch.setattr(locations.fsspec, "get_filesystem_class", get_filesystem_class)


def test_an_object_store_whose_package_is_missing_is_one_line_naming_both(monkeypatch, tmp_path):
    _without_package(monkeypatch, "s3fs")
    monkeypatch.setenv(STORAGE_ENV, "s3://bucket/study")
    with pytest.raises(StorageURLError) as exc:
        storage_root(tmp_path)
    message = str(exc.value)
    assert message.startswith("PHASE2_STORAGE_URL='s3://bucket/study': s3:// needs the Python ")
    assert "package s3fs, which is not installed" in message and "pip install s3fs" in message
    assert "\n" not in message


def test_phase2_run_refuses_a_missing_object_store_package_in_one_line(
    monkeypatch, tmp_path, capsys
):
    """Before: a 65-line DagsterUserCodeLoadError from loading the code location, the one
    useful line (``Install s3fs to access S3``) at line 36."""
    from phase2_assets.cli import main

    _without_package(monkeypatch, "s3fs")
    for name in ("PHASE2_STUDY", "PHASE2_DATA_DIR", "PHASE2_EXECUTOR"):  # phase2 sets them
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(STORAGE_ENV, "s3://bucket/study")
    assert main(["run", "demo", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("phase2: PHASE2_STORAGE_URL='s3://bucket/study': s3:// needs")
    assert "s3fs" in err


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST"])
def test_file_localhost_is_the_absolute_path_not_a_folder_named_localhost(
    host, monkeypatch, tmp_path
):
    """RFC 8089: file://localhost/abs is /abs. Before: the study was written to ./localhost/abs."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    store = tmp_path / "store"
    monkeypatch.setenv(STORAGE_ENV, f"file://{host}{store}")
    root = storage_root(tmp_path / "data")
    assert root.protocol == "file" and root.path == str(store)
    written = gates.write_gates(root, [{"name": "F1", "fired": False}])
    assert (store / "results" / "kill_switches.json").is_file()
    assert written.path == str(store / "results" / "kill_switches.json")
    assert list(cwd.iterdir()) == []  # no ./localhost/... folder


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file://otherhost/srv/study", "'otherhost' is the host of this file:// URL"),
        ("file://localhost", "names no folder"),
        ("file://localhost/proc/x", "/proc/x is a virtual file system"),
    ],
)
def test_a_file_url_on_another_host_or_with_no_folder_is_refused(url, why, monkeypatch, tmp_path):
    monkeypatch.setenv(STORAGE_ENV, url)
    with pytest.raises(StorageURLError, match=why) as exc:
        storage_root(tmp_path)
    assert str(exc.value).startswith(f"{STORAGE_ENV}={url!r}: ")
