"""Streaming a memory-mapped matrix does not leave the whole matrix in the resident set."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phase2_assets.compute.data import storage
from phase2_assets.compute.methods import instrument


def _rss_file_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status RssFile on this system")


def test_release_pages_keeps_the_data_and_leaves_other_arrays_alone(tmp_path):
    x = np.random.default_rng(0).standard_normal((4000, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = storage.load_npy(tmp_path / "x.npy")
    before = np.array(mapped[:10])
    storage.release_pages(mapped[100:200])  # a view finds its memmap
    np.testing.assert_array_equal(mapped[:10], before)
    np.testing.assert_array_equal(np.asarray(mapped), x)
    storage.release_pages(x)  # an in-memory array: nothing to do
    writable = np.load(tmp_path / "x.npy", mmap_mode="r+")
    writable[0, 0] = 7.0
    storage.release_pages(writable)  # writable maps are not touched
    assert writable[0, 0] == 7.0


def test_streaming_a_memmap_does_not_grow_the_resident_set_by_the_matrix(tmp_path):
    n, dim = 200_000, 128  # 100 MiB of float32
    out = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    for s in range(0, n, 50_000):
        out[s : s + 50_000] = 1.0
    del out
    mapped = storage.load_npy(tmp_path / "x.npy")
    start = _rss_file_mib()
    instrument.encode(mapped, 64, 0, chunk=20_000)
    storage.sha256_array(mapped, chunk_rows=20_000)
    assert _rss_file_mib() - start < 40  # one block at a time, not the 100 MiB matrix


@contextlib.contextmanager
def _tmpfs(where: Path, options: str):
    """A real small file system (root with CAP_SYS_ADMIN only); skips where mounting is refused."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temporary(target: Path, pid: int, host: str | None = None) -> Path:
    host = host or storage._host_tag()
    path = target.parent / f".tmp-{host}.{pid}-{target.name}-abcd1234.npy"
    path.write_bytes(b"half a file")
    return path


def test_a_write_removes_temporaries_of_dead_writers_only(tmp_path):
    target = tmp_path / "256.npy"
    dead = _temporary(target, _dead_pid())
    alive = _temporary(target, os.getpid())  # a writer that is still running
    elsewhere = _temporary(target, _dead_pid(), host="0badc0de")  # another host's writer
    other_file = _temporary(tmp_path / "128.npy", _dead_pid())  # swept when 128.npy is written
    storage.save_npy(target, np.arange(4))
    assert not dead.exists()
    assert alive.exists() and elsewhere.exists() and other_file.exists()
    np.testing.assert_array_equal(storage.load_npy(target), np.arange(4))


def test_a_full_disk_raises_naming_the_file_and_keeps_the_previous_one(tmp_path):
    with _tmpfs(tmp_path / "small", "size=1m") as small:
        target = small / "codes.npy"
        storage.save_npy(target, np.arange(10, dtype=np.int64))
        before = target.read_bytes()
        with pytest.raises(storage.WriteFailed, match="disk is full") as err:
            storage.save_npy(target, np.zeros(1 << 20, dtype=np.uint8))  # 1 MiB + header
        assert str(target) in str(err.value) and err.value.errno == errno.ENOSPC
        assert target.read_bytes() == before
        assert sorted(p.name for p in small.iterdir()) == ["codes.npy"]


def test_a_read_only_folder_raises_naming_the_file(tmp_path):
    with _tmpfs(tmp_path / "ro", "size=1m,ro") as read_only:
        with pytest.raises(storage.WriteFailed, match="read-only") as err:
            storage.save_npy(read_only / "codes.npy", np.arange(3))
        assert "codes.npy" in str(err.value)


def test_permission_denied_raises_naming_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "codes.npy"
    storage.save_npy(target, np.arange(3))

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(target))

    monkeypatch.setattr(storage.os, "replace", refuse)
    with pytest.raises(storage.WriteFailed, match="permission denied") as err:
        storage.save_npy(target, np.arange(5))
    assert str(target) in str(err.value)
    np.testing.assert_array_equal(storage.load_npy(target), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["codes.npy"]


def test_json_text_is_strict_json_with_null_for_what_could_not_be_computed():
    import json

    import numpy as np

    from phase2_assets.compute.data.storage import json_text

    text = json_text({"rho": float("nan"), "r2": np.float64("inf"), "n": np.int64(4), "x": [1.5]})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == {
        "rho": None,
        "r2": None,
        "n": 4,
        "x": [1.5],
    }
