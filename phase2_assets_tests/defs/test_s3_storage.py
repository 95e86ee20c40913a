"""The whole tiny study kept in S3 through a real S3 HTTP API (moto's server, its own process on
127.0.0.1): s3fs and botocore reach it through ``AWS_ENDPOINT_URL`` exactly as they reach AWS.

Where ``test_object_storage`` proves the IO managers on fsspec's in-memory filesystem, this runs
every level of the plan with ``PHASE2_STORAGE_URL=s3://...`` and compares the results with the
same study kept in a local folder: what a cluster user gets from an object store is the same
study, and only scratch space and the download cache stay on the machine.
"""

from __future__ import annotations

import polars as pl
import pytest
from upath import UPath

from phase2_assets.defs.storage import gates
from phase2_assets.defs.storage.locations import STORAGE_ENV
from phase2_assets.testing import graph as gh
from phase2_assets.testing.s3 import new_bucket, s3_server

pytest.importorskip("s3fs")
pytest.importorskip("moto")
pytestmark = pytest.mark.slow  # a server process and a whole study, about 20 s


@pytest.fixture
def s3(monkeypatch):
    with s3_server() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        new_bucket(env, "phase2-study")
        yield UPath("s3://phase2-study/tiny")


def test_every_level_of_the_study_is_kept_in_s3_with_the_local_results(
    tmp_path, s3, monkeypatch, tiny_study_run
):
    monkeypatch.setenv(STORAGE_ENV, str(s3))
    data = tmp_path / "data"
    study, defs = gh.build(tiny_study_run.study_path, data)
    runs = gh.materialize_study(study, defs)
    assert runs and all(r.success for r in runs)

    pair = study.pairs()[0]
    for key in ("corpus", "corpus_embeddings", "float_ground_truth", "binary_codes", "pq_index"):
        assert (s3 / key).exists(), key
        assert not (data / key).exists(), key  # only scratch and the download cache are local
    assert (s3 / "corpus_embeddings" / f"{pair}.npy").exists()
    assert {p.name for p in (s3 / "binary_codes" / pair).iterdir()} == {
        f"{b}.npy" for b in (8, 16, 32, 64)
    }

    def table(base, name: str) -> pl.DataFrame:
        with (UPath(base) / "results" / f"{name}.parquet").open("rb") as fh:
            return pl.read_parquet(fh)

    local = tiny_study_run.data_dir
    for name in ("retrieval_metrics", "geometry", "bfi"):
        assert table(s3, name).equals(table(local, name)), name
    assert (s3 / "results" / "report.html").read_text() == (
        local / "results" / "report.html"
    ).read_text()
    assert (s3 / "results" / "kill_switches.json").exists()
    from_store = gates.read_gates(defs.resources["runtime"].storage_root)
    from_folder = gates.read_gates(local)
    assert from_store and {n: s["fired"] for n, s in from_store.items()} == {
        n: s["fired"] for n, s in from_folder.items()
    }  # the gate file is read from the store, not from the (empty) local folder
