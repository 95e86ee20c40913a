"""Downloads from a real loopback HTTP server: verified, atomic, and nothing left when they fail."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from phase2_assets.compute.data import download, sources
from phase2_assets.compute.data.sources import beir_zip


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buffer.getvalue()


TINY = {
    "tiny/corpus.jsonl": '{"_id": "d1", "title": "", "text": "a passage"}\n',
    "tiny/queries.jsonl": '{"_id": "q1", "text": "a question"}\n',
    "tiny/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
}


@pytest.fixture
def server():
    """Serves ``routes[path] = (body, announced length)`` on 127.0.0.1."""
    routes: dict[str, tuple[bytes, int]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body, length = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, routes
    httpd.shutdown()
    httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_download_with_the_right_md5_is_unpacked_and_loads(server, tmp_path):
    base, routes = server
    body = _zip(TINY)
    routes["/tiny.zip"] = (body, len(body))
    md5 = "md5:" + hashlib.md5(body).hexdigest()
    request = sources.Request(
        name="tiny",
        split="test",
        sample_size=None,
        seed=0,
        url=f"{base}/tiny.zip",
        download_dir=tmp_path / "dl",
        allow_download=True,
        checksum=md5,
    )
    source, folder, collection = sources.load(request)
    assert source.kind == "beir_zip" and folder == tmp_path / "dl" / "tiny"
    assert collection.corpus["doc_id"].to_list() == ["d1"]
    assert _leftovers(tmp_path / "dl") == ["tiny", "tiny.zip"]  # no temporaries


def test_a_wrong_checksum_discards_the_download_and_names_both_digests(server, tmp_path):
    base, routes = server
    body = _zip(TINY)
    routes["/tiny.zip"] = (body, len(body))
    wrong = "sha256:" + "0" * 64
    with pytest.raises(download.DownloadError) as err:
        download.fetch(f"{base}/tiny.zip", tmp_path / "tiny.zip", wrong)
    assert hashlib.sha256(body).hexdigest() in str(err.value) and "0" * 64 in str(err.value)
    assert f"{base}/tiny.zip" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_a_truncated_download_is_discarded(server, tmp_path):
    base, routes = server
    body = _zip(TINY)
    routes["/cut.zip"] = (body[: len(body) // 2], len(body))  # the server dies half-way
    with pytest.raises(download.DownloadError, match=f"{len(body)} bytes"):
        download.fetch(f"{base}/cut.zip", tmp_path / "cut.zip", None)
    assert _leftovers(tmp_path) == []


def test_the_returned_digest_is_the_files_sha256(server, tmp_path):
    base, routes = server
    body = _zip(TINY)
    routes["/tiny.zip"] = (body, len(body))
    got = download.fetch(f"{base}/tiny.zip", tmp_path / "tiny.zip", None)
    assert got == "sha256:" + hashlib.sha256(body).hexdigest()
    assert (tmp_path / "tiny.zip").read_bytes() == body


def test_a_cached_zip_that_no_longer_matches_is_refused(tmp_path):
    (tmp_path / "tiny.zip").write_bytes(_zip(TINY))
    with pytest.raises(download.DownloadError, match="delete the file"):
        beir_zip.download_beir("http://unused", tmp_path, "tiny", "md5:" + "f" * 32)
    assert not (tmp_path / "tiny").exists()


def test_unsafe_member_paths_are_refused(tmp_path):
    (tmp_path / "evil.zip").write_bytes(_zip({"evil/../../escape.txt": "x"}))
    with pytest.raises(download.DownloadError, match="unsafe member"):
        download.unpack(tmp_path / "evil.zip", tmp_path / "out", "evil")
    assert not (tmp_path.parent / "escape.txt").exists()


def test_a_crash_while_unpacking_leaves_no_half_collection(tmp_path, monkeypatch):
    (tmp_path / "tiny.zip").write_bytes(_zip(TINY))

    def half_then_crash(self, path):
        (Path(path) / "tiny").mkdir()
        (Path(path) / "tiny" / "corpus.jsonl").write_text('{"_id": "d1"')
        raise OSError("killed while unpacking")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", half_then_crash)
    with pytest.raises(OSError, match="killed"):
        download.unpack(tmp_path / "tiny.zip", tmp_path, "tiny")
    assert _leftovers(tmp_path) == ["tiny.zip"]  # no dataset folder a later run would trust
    monkeypatch.undo()
    assert (download.unpack(tmp_path / "tiny.zip", tmp_path, "tiny") / "corpus.jsonl").exists()


def test_a_malformed_checksum_is_refused_before_downloading(tmp_path):
    with pytest.raises(ValueError, match="md5:<32 hex>"):
        download.fetch("http://unused", tmp_path / "x.zip", "md5:xyz")
