"""A real S3 HTTP API on loopback for tests: moto's server mode in its own process, as s3fs's own
test suite runs it. The study reaches it the way it reaches AWS, through s3fs and botocore's
standard environment (``AWS_ENDPOINT_URL`` and credentials), so nothing in the product knows it
is talking to a stand-in.

``refusing_proxy`` puts a fault-injecting reverse proxy in front of it (standard library only, a
daemon thread of this process): every request is forwarded unchanged, except the PUTs whose path
matches a pattern switched on by the test, which are answered as S3 answers a refused write
(403 ``AccessDenied``) and never reach the store. Point ``AWS_ENDPOINT_URL`` at the proxy and a
run meets an endpoint that refuses its upload mid-run; a control file lets other processes'
requests (a daemon, workers) be refused from the test too.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from xml.sax.saxutils import escape

from phase2_assets.stack import servers
from phase2_assets.stack.launcher import make_bucket

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def s3_server(timeout_s: float = 30.0) -> Iterator[dict[str, str]]:
    """Start moto's server (the stack's own ``servers.s3_endpoint``) on a free port of 127.0.0.1
    and yield the environment a process needs to use it (endpoint and credentials); the server
    is stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="phase2-s3-"))
    port = servers.free_port()
    server = servers.s3_endpoint(folder, port).start(timeout_s)
    try:
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", **CREDENTIALS}
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def new_bucket(env: dict[str, str], name: str) -> None:
    """Create a bucket on the server of ``env`` (s3fs, with the endpoint passed explicitly)."""
    assert make_bucket(env, name), f"bucket {name!r} not created on {env['AWS_ENDPOINT_URL']}"


class RefusingProxy:
    """The proxy ``refusing_proxy`` yields: ``endpoint`` to point clients at, ``refuse_puts`` to
    switch refusal on and off, and ``refused`` (the method and path of each refused request)."""

    def __init__(self, upstream: str, control_file: str | os.PathLike | None = None):
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// endpoint, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.control_file = Path(control_file) if control_file is not None else None
        self.endpoint = ""  # set once the server listens
        self.refused: list[str] = []
        self.held: list[str] = []
        self._pattern: str | None = None
        self._hold: str | None = None
        self._drop_held = False
        self._lock = threading.Lock()

    def hold_puts(self, pattern: str | None, *, drop_held: bool = False) -> None:
        """Keep every matching PUT waiting, unanswered, until the hold is lifted (None): a step
        stopped in the middle of storing its output, for as long as a test needs it there. Each
        held request is listed in ``held`` when it arrives. Lifted with ``drop_held``, the held
        requests are never forwarded (their connections are closed): the uploads of a client
        that died while they waited."""
        re.compile(pattern or "")
        with self._lock:
            self._hold = pattern
            self._drop_held = drop_held

    def wait_while_held(self, method: str, target: str) -> bool:
        """Wait while this request is held; whether it is to be dropped rather than forwarded."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
        with self._lock:
            hold = self._hold
            if method != "PUT" or not hold or re.search(hold, path) is None:
                return False
            self.held.append(f"{method} {target}")
        while True:
            time.sleep(0.1)
            with self._lock:
                if self._hold != hold:
                    return self._drop_held

    def refuse_puts(self, pattern: str | None) -> None:
        """Refuse every PUT (objects, multipart parts, copies) whose path ``/<bucket>/<key>``
        (URL-decoded, without the query) matches the regular expression ``pattern``
        (``re.search``); None forwards them all again. With a control file, the switch is
        written there, where every process's requests through this proxy see it."""
        re.compile(pattern or "")
        if self.control_file is not None:
            write_control(self.control_file, pattern)
        else:
            with self._lock:
                self._pattern = pattern

    def pattern(self) -> str | None:
        """The refusal in force: the control file's (re-read on each request), or the switch."""
        if self.control_file is not None:
            return read_control(self.control_file)
        with self._lock:
            return self._pattern

    def refuses(self, method: str, target: str) -> bool:
        pattern = self.pattern()
        if method != "PUT" or not pattern:
            return False
        path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
        return re.search(pattern, path) is not None

    def record_refusal(self, method: str, target: str) -> None:
        with self._lock:
            self.refused.append(f"{method} {target}")


def write_control(control_file: str | os.PathLike, pattern: str | None) -> None:
    """Switch a proxy's refusal from any process: ``{"refuse_put": pattern}``, written atomically
    (a request never reads half a file)."""
    control_file = Path(control_file)
    tmp = control_file.with_name(f".{control_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"refuse_put": pattern}))
    os.replace(tmp, control_file)


def read_control(control_file: str | os.PathLike) -> str | None:
    """The pattern in a control file; None when it is absent or says none."""
    try:
        return json.loads(Path(control_file).read_text()).get("refuse_put") or None
    except FileNotFoundError:
        return None


_BLOCK = 1 << 16


class _Handler(http.server.BaseHTTPRequestHandler):
    """Relays one client connection's requests (HTTP/1.1 keep-alive), each on a fresh upstream
    connection; the request goes out byte for byte: method, target, headers in their order, the
    body streamed as it arrives (a chunked body with its chunk framing)."""

    protocol_version = "HTTP/1.1"
    proxy: RefusingProxy  # set on the subclass made for each proxy

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # quiet: the store's own log has every request

    def handle_expect_100(self):
        # A refused PUT that waits for "100 Continue" gets the 403 instead, as S3 answers it:
        # the client then never sends the body, so there is none to drain.
        self._refusing = self.proxy.refuses(self.command, self.path)
        if self._refusing:
            self._expected_100 = True
            return True
        return super().handle_expect_100()

    def _dispatch(self):
        refusing = getattr(self, "_refusing", None)
        if refusing is None:
            refusing = self.proxy.refuses(self.command, self.path)
        waited = getattr(self, "_expected_100", False)
        self._refusing = self._expected_100 = None
        if refusing:
            self._refuse(drain=not waited)
        else:
            if self.proxy.wait_while_held(self.command, self.path):
                self.close_connection = True  # dropped: the store never sees it
                return
            self._forward()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body as it arrives, framing included (a chunked body stays chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(_BLOCK)
                yield line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, up to the blank line
                        trailer = self.rfile.readline(_BLOCK)
                        yield trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return
                if not (yield from self._read(size + 2)):  # the data and its CRLF
                    return
        yield from self._read(int(self.headers.get("Content-Length") or 0))

    def _read(self, left: int) -> Generator[bytes, None, bool]:
        """``left`` bytes of the request, block by block; whether all came (the client may
        stop early)."""
        while left:
            data = self.rfile.read(min(left, _BLOCK))
            if not data:
                return False
            left -= len(data)
            yield data
        return True

    def _refuse(self, drain: bool) -> None:
        if drain:  # the client sends the body regardless: read it, so the reply is read too
            for _ in self._body_chunks():
                pass
        self.proxy.record_refusal(self.command, self.path)
        parts = urllib.parse.urlsplit(self.path)
        bucket, _, key = urllib.parse.unquote(parts.path).lstrip("/").partition("/")
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>Access Denied: PUT refused by the test proxy</Message>"
            f"<BucketName>{escape(bucket)}</BucketName><Key>{escape(key)}</Key>"
            f"<Resource>{escape(parts.path)}</Resource><RequestId>{request_id}</RequestId>"
            "</Error>"
        ).encode()
        self.send_response_only(403, "Forbidden")
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", request_id)
        if not drain:
            self.send_header("Connection", "close")  # the unsent body must not be parsed next
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        host, port = self.proxy.upstream
        upstream = http.client.HTTPConnection(host, port, timeout=120)
        try:
            try:
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    upstream.putheader(name, value)
                upstream.endheaders()
                for data in self._body_chunks():
                    upstream.send(data)
                response = upstream.getresponse()
            except OSError as exc:
                self._bad_gateway(exc)
                return
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD" or response.status in (204, 304) or response.status < 200:
                return
            if response.chunked:  # decoded by http.client; framed again, chunk by chunk
                while data := response.read1(_BLOCK):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.write(b"0\r\n\r\n")
            else:
                if response.length is None:  # delimited by the upstream's close
                    self.close_connection = True
                while data := response.read(_BLOCK):
                    self.wfile.write(data)
        finally:
            upstream.close()

    def _bad_gateway(self, exc: OSError) -> None:
        body = f"proxy: upstream {self.proxy.upstream} failed: {exc!r}".encode()
        self.send_response_only(502, "Bad Gateway")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def refusing_proxy(
    upstream_endpoint: str, control_file: str | os.PathLike | None = None
) -> Iterator[RefusingProxy]:
    """A reverse proxy on a free port of 127.0.0.1 in front of ``upstream_endpoint`` (an
    ``http://`` S3 endpoint such as ``s3_server``'s), serving from a daemon thread until the
    block ends. It forwards every request unchanged until ``proxy.refuse_puts(pattern)``; then
    a PUT whose path matches is answered 403 with S3's XML error (``AccessDenied``), is not
    forwarded, and is counted in ``proxy.refused``. With ``control_file``, the pattern is read
    from that JSON file (``{"refuse_put": "<regex>"}``, see ``write_control``) on each request,
    so any process can switch it."""
    proxy = RefusingProxy(upstream_endpoint, control_file)
    handler = type("Handler", (_Handler,), {"proxy": proxy})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    proxy.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="refusing-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
