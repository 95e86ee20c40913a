"""An S3 endpoint that refuses a PUT mid-run (issue 26): moto's server behind the fault-injecting
proxy of ``phase2_assets.testing.s3``, which answers the PUTs of one asset's objects with S3's
403 ``AccessDenied`` and forwards everything else.

The run fails with an error naming the object; the object is absent (or, when an earlier run
stored it, the very same object, still the recorded one); nothing the failed run wrote locally
is read back as the object; and once the store takes PUTs again the study completes with the
results of a clean run.
"""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET

import dagster as dg
import numpy as np
import polars as pl
import pytest
from upath import UPath

from phase2_assets.cli import runs
from phase2_assets.config import plan
from phase2_assets.defs.graph.jobs import BITS_JOB
from phase2_assets.defs.storage.gates import read_gates
from phase2_assets.defs.storage.io_managers import NpyStore, UploadFailed
from phase2_assets.defs.storage.locations import STORAGE_ENV
from phase2_assets.testing import graph as gh
from phase2_assets.testing.s3 import new_bucket, refusing_proxy, s3_server

s3fs = pytest.importorskip("s3fs")
pytest.importorskip("moto")
pytestmark = pytest.mark.slow  # a server process, a proxy and most of a study twice

BUCKET = "phase2-study"
CODES = dg.AssetKey("binary_codes")


# moto checks who asks, not the signature: a request as the test credentials' owner.
AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
}


def _request(endpoint, method, target, body=None, headers=None):
    """(status, headers, body) of one plain HTTP request."""
    conn = http.client.HTTPConnection(endpoint.removeprefix("http://"), timeout=30)
    try:
        conn.request(method, target, body=body, headers={**AUTH, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _error_code(body: bytes) -> str | None:
    return ET.fromstring(body).findtext("Code")


def test_the_proxy_forwards_every_request_and_refuses_matching_puts(tmp_path):
    control = tmp_path / "control.json"
    with s3_server() as env, refusing_proxy(env["AWS_ENDPOINT_URL"], control) as proxy:
        new_bucket(env, BUCKET)
        ep = proxy.endpoint
        data = bytes(range(256)) * 1000
        assert _request(ep, "PUT", f"/{BUCKET}/kept/a.bin", data)[0] == 200
        status, _, got = _request(ep, "GET", f"/{BUCKET}/kept/a.bin")
        assert (status, got) == (200, data)
        status, headers, got = _request(ep, "HEAD", f"/{BUCKET}/kept/a.bin")
        assert (status, headers["Content-Length"], got) == (200, str(len(data)), b"")
        streamed = iter([b"first ", b"second ", b"third"])  # no length: sent chunked
        assert _request(ep, "PUT", f"/{BUCKET}/kept/chunked.txt", streamed)[0] == 200
        assert _request(ep, "GET", f"/{BUCKET}/kept/chunked.txt")[2] == b"first second third"
        status, _, got = _request(ep, "GET", f"/{BUCKET}?list-type=2&prefix=kept/")
        assert status == 200 and b"<Key>kept/a.bin</Key>" in got  # the query goes through

        # Switched on from another process, through the control file.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from phase2_assets.testing.s3 import write_control; "
                "write_control(sys.argv[1], r'/refused/')",
                str(control),
            ],
            check=True,
        )
        status, headers, got = _request(ep, "PUT", f"/{BUCKET}/refused/b.bin", data)
        assert (status, _error_code(got)) == (403, "AccessDenied")
        assert headers["Content-Type"] == "application/xml"
        part = f"/{BUCKET}/refused/b.bin?partNumber=1&uploadId=abc"  # a multipart upload's part
        assert _request(ep, "PUT", part, b"x" * 100)[0] == 403
        # A client waiting for 100-continue gets the 403 instead and never sends the body.
        conn = http.client.HTTPConnection(ep.removeprefix("http://"), timeout=30)
        conn.putrequest("PUT", f"/{BUCKET}/refused/c.bin")
        conn.putheader("Authorization", AUTH["Authorization"])
        conn.putheader("Content-Length", "5")
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        response = conn.getresponse()
        assert (response.status, _error_code(response.read())) == (403, "AccessDenied")
        conn.close()
        assert _request(ep, "GET", f"/{BUCKET}/refused/b.bin")[0] == 404  # never stored
        assert _request(ep, "PUT", f"/{BUCKET}/kept/b.bin", data)[0] == 200  # others still go
        assert proxy.refused == [
            f"PUT /{BUCKET}/refused/b.bin",
            f"PUT {part}",
            f"PUT /{BUCKET}/refused/c.bin",
        ]

        proxy.refuse_puts(None)
        assert _request(ep, "PUT", f"/{BUCKET}/refused/b.bin", data)[0] == 200
        assert _request(ep, "GET", f"/{BUCKET}/refused/b.bin")[2] == data
        assert len(proxy.refused) == 3


def test_an_upload_that_breaks_off_names_the_object_and_leaves_no_local_copy(tmp_path):
    """No answer from the store (a reset connection): the same error, hedged as it must be."""
    root = UPath(f"memory://upload-{uuid.uuid4().hex[:8]}/study")
    store = NpyStore(root, cache_dir=tmp_path)
    path = root / "binary_codes" / "pair" / "8.npy"
    try:
        store.dump_to_path(None, np.zeros(4, np.uint8), path)  # the stored version
        before = path.fs.cat_file(path.path)

        def reset(*args, **kwargs):
            raise ConnectionResetError("connection reset by peer")

        path.fs.put_file = reset
        with pytest.raises(UploadFailed) as failed:
            store.dump_to_path(None, np.ones(4, np.uint8), path)
        said = str(failed.value)
        assert said.startswith(
            f"upload of {path} failed: ConnectionResetError: connection reset by peer. "
            "A PUT is all or nothing"
        ), said
        assert "the previous version is still the recorded one" in said
        del path.fs.put_file
        assert not store.cached_path(path).exists()
        assert path.fs.cat_file(path.path) == before
        assert store.load_from_path(None, path).tolist() == [0, 0, 0, 0]  # the store's, fetched
    finally:
        vars(path.fs).pop("put_file", None)
        path.fs.rm(root.path, recursive=True)


@pytest.fixture
def store(monkeypatch):
    """moto behind the proxy; the study's processes see only the proxy's endpoint. Yields the
    proxy and an s3fs client that looks at the bucket directly."""
    s3fs.S3FileSystem.clear_instance_cache()  # no client of an earlier test's endpoint
    with s3_server() as env, refusing_proxy(env["AWS_ENDPOINT_URL"]) as proxy:
        for name, value in {**env, "AWS_ENDPOINT_URL": proxy.endpoint}.items():
            monkeypatch.setenv(name, value)
        new_bucket(env, BUCKET)
        direct = s3fs.S3FileSystem(
            key=env["AWS_ACCESS_KEY_ID"],
            secret=env["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=env["AWS_ENDPOINT_URL"],
            skip_instance_cache=True,
        )
        yield proxy, direct
    s3fs.S3FileSystem.clear_instance_cache()


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message, its causes included."""
    texts = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def _recorded_sha256(instance: dg.DagsterInstance, key: str) -> tuple[int, str]:
    """(number of materialisations, the latest one's sha256) of binary_codes [key]."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CODES, asset_partitions=[key]), limit=100
    ).records
    return len(records), records[0].asset_materialization.metadata["sha256"].value


def _downstream_of_codes(defs, key: str, instance) -> dg.ExecuteInProcessResult:
    """The bits level's assets that read binary_codes [key], run without it: what they load."""
    graph = defs.resolve_asset_graph()
    readers = [k for k in graph.get(CODES).child_keys if k in graph.get_all_asset_keys()]
    return defs.resolve_job_def(BITS_JOB).execute_in_process(
        partition_key=key, asset_selection=readers, instance=instance, raise_on_error=False
    )


def test_a_refused_put_fails_the_run_naming_the_object_and_nothing_half_written_is_read_back(
    tmp_path, store, monkeypatch, tiny_study_run
):
    proxy, direct = store
    root = UPath(f"s3://{BUCKET}/tiny")
    monkeypatch.setenv(STORAGE_ENV, str(root))
    data = tmp_path / "data"
    study, defs = gh.build(tiny_study_run.study_path, data)
    gates_root = defs.resources["runtime"].storage_root  # the store: where the gates are
    instance = dg.DagsterInstance.ephemeral()
    done: set[plan.Request] = set()
    failures: list[dg.ExecuteInProcessResult] = []

    def execute(request: plan.Request) -> bool:
        if request in done:
            return True  # succeeded in the walk before
        result = runs.execute_in_process(defs, request, instance)
        if result.success:
            done.add(request)
        else:
            failures.append(result)
        return result.success

    # 1. The store refuses every binary_codes PUT: the first bits run fails on its upload.
    proxy.refuse_puts(r"/binary_codes/")
    failed = plan.follow(study, lambda: read_gates(gates_root), execute)
    assert [r.level for r in failed] == ["bits"] and done, failed
    key = failed[0].key
    bits, pair = key.split("|")
    url = f"s3://{BUCKET}/tiny/binary_codes/{pair}/{bits}.npy"
    said = _failure_text(failures[0])
    assert f"upload of {url} failed: PermissionError: Access Denied" in said, said
    assert "The store refused it: the object in the store was not replaced" in said, said
    assert proxy.refused == [f"PUT /{BUCKET}/tiny/binary_codes/{pair}/{bits}.npy"]
    assert not direct.exists(url)
    cached = data / ".cache" / "s3" / BUCKET / "tiny" / "binary_codes" / pair / f"{bits}.npy"
    assert not cached.exists()  # the copy written for the upload is not left to be read
    # What reads the codes finds no object: it does not take the local copy for it.
    readers = _downstream_of_codes(defs, key, instance)
    assert not readers.success
    assert "FileNotFoundError" in _failure_text(readers) and not cached.exists()

    # 2. The store takes PUTs again: the rest of the study runs, with a clean run's results.
    proxy.refuse_puts(None)
    assert plan.follow(study, lambda: read_gates(gates_root), execute) == []
    stored = direct.cat_file(url)
    count, sha = _recorded_sha256(instance, key)
    assert hashlib.sha256(stored).hexdigest() == sha

    def table(base, name: str) -> pl.DataFrame:
        with (UPath(base) / "results" / f"{name}.parquet").open("rb") as fh:
            return pl.read_parquet(fh)

    for name in ("retrieval_metrics", "geometry", "bfi"):
        assert table(root, name).equals(table(tiny_study_run.data_dir, name)), name

    # 3. Refused again, over a stored object: the run fails, the object is the one recorded.
    before = direct.info(url)
    proxy.refuse_puts(r"/binary_codes/")
    again = gh.materialize(defs, "bits", key, instance)
    assert not again.success
    assert f"upload of {url} failed" in _failure_text(again)
    assert len(proxy.refused) == 2 and not cached.exists()
    after = direct.info(url)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert direct.cat_file(url) == stored
    assert _recorded_sha256(instance, key) == (count, sha)  # no materialisation recorded
    # Its readers load the stored object, downloaded again (the local copy was deleted).
    assert _downstream_of_codes(defs, key, instance).success
    assert cached.read_bytes() == stored
