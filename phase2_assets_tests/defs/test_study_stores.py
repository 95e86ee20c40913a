"""Two studies in one deployment: each code location names its own store (``storage_url``), which
wins over the process-wide ``$PHASE2_STORAGE_URL``, so a Celery worker that runs the steps of
both locations in one process keeps each study's files in its own store.

fsspec's in-memory filesystem stands in for the object stores (these tests run in one process).
Before: every file went to ``$PHASE2_STORAGE_URL`` whatever the location, and the study stamp
(``study.json``) was written to the local data folder even when the study lived in the store.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import dagster as dg
import polars as pl
import pytest
from upath import UPath

from phase2_assets.components.study import StudyComponent, study_location
from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.defs.storage import study_stamp
from phase2_assets.defs.storage.locations import (
    ALLOW_MEMORY_ENV,
    STORAGE_ENV,
    StorageURLError,
)
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study

# What a study may leave in the local folder when its files live in a store.
SCRATCH = {".staging", ".cache", "downloads"}
# A smaller tiny study (two bit lengths, a short adapter): every level of the plan, in seconds.
SMALL = {
    "tiers": {
        "tier1": {
            "datasets": ["tiny"],
            "models": ["tiny-bert"],
            "bits": [8, 16],
            "pq_bytes": [1, 2],
        }
    },
    "bfi": {"recall_bits": [8, 16]},
    "exploratory": {
        "adapter_bits": [8, 16],
        "adapters": [{"name": "affine_tanh_pearson", "epochs": 2, "anchors": 128}],
    },
}


@pytest.fixture
def stores(monkeypatch):
    """A factory of fresh ``memory://`` roots, removed afterwards (the filesystem is
    process-wide)."""
    monkeypatch.setenv(ALLOW_MEMORY_ENV, "1")
    made = []

    def new(name: str) -> UPath:
        root = UPath(f"memory://{name}-{uuid.uuid4().hex[:8]}/study")
        made.append(root)
        return root

    yield new
    for root in made:
        if root.exists():
            root.fs.rm(root.path, recursive=True)


def _files(root: UPath) -> dict[str, str]:
    """Every file under ``root`` (relative path -> SHA-256)."""
    if not root.exists():
        return {}
    fs = root.fs
    base = root.path.rstrip("/")
    return {
        path[len(base) + 1 :]: hashlib.sha256(fs.cat_file(path)).hexdigest()
        for path in sorted(fs.find(base))
    }


def _table(root: UPath, name: str) -> pl.DataFrame:
    with (root / "results" / f"{name}.parquet").open("rb") as fh:
        return pl.read_parquet(fh)


def test_two_studies_in_one_process_keep_every_file_in_their_own_store(
    tmp_path, tiny_beir, tiny_model, stores, monkeypatch
):
    env_root = stores("env")
    monkeypatch.setenv(STORAGE_ENV, str(env_root))  # the worker's own setting: a third place
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    data = tmp_path / "data"  # one worker's local folder, shared by both locations
    roots = {"study_a": stores("a"), "study_b": stores("b")}
    built = {}
    for name, root in roots.items():  # both locations loaded before either runs
        config = write_tiny_study(
            tmp_path / f"{name}.yaml", tiny_beir, tiny_model, name=name, **SMALL
        )
        built[name] = gh.build(config, data, storage_url=str(root))
        assert built[name][1].resources["runtime"].storage_root == root

    seen = {}
    for name, (study, defs) in built.items():
        runs = gh.materialize_study(study, defs)
        assert runs and all(r.success for r in runs), name
        for run in runs:  # every materialisation's file is in this study's store
            for event in run.get_asset_materialization_events():
                path = event.materialization.metadata.get("path")
                if path is not None:
                    assert str(path.value).startswith(f"{roots[name]}/"), (name, path.value)
        seen[name] = _files(roots[name])
    # The second study's runs did not touch the first study's files.
    assert _files(roots["study_a"]) == seen["study_a"]

    pair = built["study_a"][0].pairs()[0]
    for name, root in roots.items():
        files = seen[name]
        for expected in (
            f"corpus_embeddings/{pair}.npy",
            "binary_codes/" + pair + "/8.npy",
            "results/kill_switches.json",  # the gate file
            "results/retrieval_metrics.parquet",
            "results/skipped_methods.parquet",  # a side table
            "results/verdict.json",
            "results/report.html",
            "study.json",  # the stamp
        ):
            assert expected in files, (name, expected)
        assert any(f.startswith("results/figures/") for f in files), name
        stamp = json.loads((root / "study.json").read_text())
        assert stamp["name"] == name
        assert study_stamp.read(root)["name"] == name
    assert _table(roots["study_a"], "retrieval_metrics").equals(
        _table(roots["study_b"], "retrieval_metrics")
    )  # the same tiny study twice, each complete

    assert not env_root.exists()  # nothing in $PHASE2_STORAGE_URL's store
    assert {p.name for p in data.iterdir()} <= SCRATCH  # no asset, gate, table or stamp locally
    assert list(cwd.iterdir()) == []


def test_the_stamp_is_in_the_store_and_another_study_is_refused_naming_it(
    tmp_path, tiny_study, stores
):
    root = stores("stamp")
    data = tmp_path / "data"
    study = load_study(str(tiny_study))
    assert study_stamp.claim(root, study, tiny_study) is None
    assert study_stamp.read(root)["name"] == "tiny"
    assert json.loads((root / "study.json").read_text())["config"] == str(tiny_study.resolve())
    assert not data.exists()  # before: written to <data>/study.json, which no worker reads

    with pytest.raises(study_stamp.OtherStudyError) as exc:
        study_stamp.claim(root, load_study("demo"), "demo")
    message = str(exc.value)
    assert message.startswith(f"the store {root} holds study 'tiny'")
    assert "not study 'demo'" in message and f"delete {root}/study.json" in message
    assert "--data-dir" not in message  # a store is not a data folder
    assert study_stamp.read(root)["name"] == "tiny"  # unchanged

    (root / "study.json").write_text("{not json")
    with pytest.raises(study_stamp.OtherStudyError, match=f"{root}/study.json: not a study stamp"):
        study_stamp.read(root)


def test_phase2_reads_the_stamp_from_the_store(tmp_path, tiny_study, stores, monkeypatch, capsys):
    """``phase2 report`` with another study is refused by the stamp in $PHASE2_STORAGE_URL's
    store, before anything runs; the local data folder holds none."""
    from phase2_assets.cli import main

    root = stores("cli")
    study_stamp.claim(root, load_study(str(tiny_study)), tiny_study)
    monkeypatch.setenv(STORAGE_ENV, str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    assert main(["report", "demo", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"the store {root} holds study 'tiny'" in err and "not study 'demo'" in err
    assert not (data / "study.json").exists()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("memory://p2", "gone when it exits"),
        ("xyz://bucket/p", "Unsupported filesystem"),
        ("https://example.org/p", "'https' is not a file system a study can be kept in"),
        ("file:///proc/x", "/proc/x is a virtual file system"),
        ("file://otherhost/srv/study", "'otherhost' is the host of this file:// URL"),
    ],
)
def test_an_unusable_storage_url_of_a_location_is_refused_naming_it(
    url, why, tmp_path, tiny_study, monkeypatch
):
    monkeypatch.delenv(ALLOW_MEMORY_ENV, raising=False)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    study = load_study(str(tiny_study))
    for build in (
        lambda: build_definitions(study, str(tmp_path), storage_url=url),
        lambda: study_location(str(tiny_study), storage_url=url, data_dir=str(tmp_path)),
        lambda: StudyComponent.resolve_from_yaml(
            f"config: {tiny_study}\nstorage_url: {url}\n"
        ).build_defs(dg.ComponentTree.for_test().load_context),
    ):
        with pytest.raises(StorageURLError, match=why) as exc:
            build()
        assert str(exc.value).startswith(f"storage_url={url!r}: ")


def test_a_location_whose_store_package_is_missing_names_the_setting(
    tmp_path, tiny_study, monkeypatch
):
    from phase2_assets.defs.storage import locations

    real = locations.fsspec.get_filesystem_class

    def get_filesystem_class(protocol):
        if protocol == "s3":
            raise ImportError("Install s3fs to access S3") from ModuleNotFoundError(
                "No module named 's3fs'", name="s3fs"
            )
        return real(protocol)

    monkeypatch.setattr(locations.fsspec, "get_filesystem_class", get_filesystem_class)
    with pytest.raises(StorageURLError) as exc:
        study_location(str(tiny_study), storage_url="s3://bucket/b", data_dir=str(tmp_path))
    message = str(exc.value)
    assert message.startswith("storage_url='s3://bucket/b': s3:// needs the Python package s3fs")
    assert message.endswith("pip install s3fs, or name another store in storage_url")


def test_a_location_s_own_store_wins_over_the_environment(
    tmp_path, tiny_study, stores, monkeypatch
):
    """The environment's URL is not even read: a bad one does not stop a location that names
    its own store; without one, the location follows the environment as before."""
    own = stores("own")
    monkeypatch.setenv(STORAGE_ENV, "xyz://not-a-store")
    component = StudyComponent.resolve_from_yaml(f"config: {tiny_study}\nstorage_url: {own}\n")
    defs = component.build_defs(dg.ComponentTree.for_test().load_context)
    assert defs.resources["runtime"].storage_url == str(own)
    assert defs.resources["runtime"].storage_root == own
    assert defs.resources["npy_io_manager"].base_dir == str(own)

    env = stores("env")
    monkeypatch.setenv(STORAGE_ENV, str(env))
    defs = study_location(str(tiny_study), data_dir=str(tmp_path))
    assert defs.resources["runtime"].storage_root == env
    monkeypatch.delenv(STORAGE_ENV)
    defs = study_location(str(tiny_study), data_dir=str(tmp_path))
    assert defs.resources["runtime"].storage_url is None
    assert defs.resources["runtime"].storage_root == UPath(str(tmp_path.resolve()))
