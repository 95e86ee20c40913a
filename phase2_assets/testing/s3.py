"""A real S3 HTTP API on loopback for tests: moto's server mode in its own process, as s3fs's own
test suite runs it. The study reaches it the way it reaches AWS, through s3fs and botocore's
standard environment (``AWS_ENDPOINT_URL`` and credentials), so nothing in the product knows it
is talking to a stand-in."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from phase2_assets.testing.dagster_dev import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def s3_server(timeout_s: float = 30.0) -> Iterator[dict[str, str]]:
    """Start ``python -m moto.server`` on a free port of 127.0.0.1 and yield the environment a
    process needs to use it (endpoint and credentials); the server is stopped afterwards."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    # The server logs every request: to a file, never to a pipe nobody reads (a full pipe
    # blocks the server's next write, and with it every request after it).
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    said = log.read().decode(errors="replace")
                    raise RuntimeError(
                        f"moto's S3 server did not start on {endpoint}: {said[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def new_bucket(env: dict[str, str], name: str) -> None:
    """Create a bucket on the server of ``env`` (s3fs, with the endpoint passed explicitly)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        skip_instance_cache=True,
    )
    fs.mkdir(name)
    assert fs.exists(name), f"bucket {name!r} not created on {env['AWS_ENDPOINT_URL']}"
