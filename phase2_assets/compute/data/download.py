"""Downloads that are either complete and verified or absent.

A dataset zip is streamed to a temporary file beside its target while its digest is computed,
checked against the server's Content-Length and the configured checksum (BEIR publishes an MD5 per
zip), and only then renamed into place; a mismatch deletes the temporary and names the URL and
both digests. Unpacking goes to a temporary folder that is renamed over the dataset folder, so a
crash mid-extraction never leaves a half collection that a later run would take for a download.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from phase2_assets.compute.data.storage import atomic_path

CHECKSUM = re.compile(r"^(md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})$")


class DownloadError(OSError):
    """A download that is incomplete, does not match its checksum, or is an unsafe archive."""


def fetch(url: str, target: Path, checksum: str | None, timeout: float = 60) -> str:
    """Download ``url`` to ``target`` (atomic); return its digest as ``<algorithm>:<hex>``.

    ``checksum`` is ``md5:<hex>`` or ``sha256:<hex>``; ``None`` checks only the length and
    returns the SHA-256. One digest is computed while the bytes stream past.
    """
    if checksum is not None and not CHECKSUM.match(checksum):
        raise ValueError(f"checksum {checksum!r} is not 'md5:<32 hex>' or 'sha256:<64 hex>'")
    algorithm, expected = checksum.split(":") if checksum else ("sha256", None)
    digest = hashlib.new(algorithm)
    with atomic_path(target, suffix=target.suffix) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:  # noqa: S310
            length = resp.headers.get("Content-Length")
            written = 0
            try:
                while block := resp.read(1 << 20):
                    fh.write(block)
                    digest.update(block)
                    written += len(block)
            except http.client.IncompleteRead as exc:
                raise DownloadError(
                    f"{url}: the connection closed after {written + len(exc.partial)} of "
                    f"{length} bytes; the partial download was discarded"
                ) from exc
        if length is not None and int(length) != written:
            raise DownloadError(f"{url}: the server announced {length} bytes, {written} arrived")
        if expected is not None and digest.hexdigest() != expected:
            raise DownloadError(
                f"{url}: {algorithm} is {digest.hexdigest()}, the config expects {expected}; "
                f"the download was discarded (a changed or tampered file, or a wrong checksum)"
            )
    return f"{algorithm}:{digest.hexdigest()}"


def verify(path: Path, checksum: str) -> None:
    """Re-check an earlier download (a cached zip) before it is trusted again."""
    algorithm, expected = checksum.split(":")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise DownloadError(
            f"{path}: {algorithm} is {digest.hexdigest()}, the config expects {expected}; "
            f"delete the file to download it again"
        )


def unpack(archive: Path, dest_dir: Path, folder_name: str) -> Path:
    """Extract ``folder_name/`` from a zip into ``dest_dir`` by one rename."""
    final = dest_dir / folder_name
    with zipfile.ZipFile(archive) as zf:
        bad = zf.testzip()
        if bad:
            raise DownloadError(f"{archive}: corrupt member {bad}; delete the file and retry")
        for member in zf.namelist():
            if member.startswith("/") or ".." in Path(member).parts:
                raise DownloadError(f"{archive}: unsafe member path {member!r}")
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-unpack-{folder_name}-", dir=dest_dir))
        try:
            zf.extractall(staging)
            if not (staging / folder_name).is_dir():
                raise DownloadError(f"{archive}: no top-level folder {folder_name}/ inside")
            if final.exists():
                shutil.rmtree(final)
            (staging / folder_name).rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
