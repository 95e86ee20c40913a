"""Streaming a memory-mapped matrix does not leave the whole matrix in the resident set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phase2_assets.compute import instrument, storage


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
