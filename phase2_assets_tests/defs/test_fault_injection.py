"""kill -9 in the middle of writing an asset file: the earlier result stays, byte for byte.

A real Python process materialises ``binary_codes`` with a changed projection seed; its array
writer is slowed down after writing half of the new file, and the test kills the process with
SIGKILL while that half-file exists. The file in place must be the previous materialisation,
unchanged and loadable, and a rerun must then replace it completely.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from phase2_assets.testing.graph import build, materialize
from phase2_assets.testing.tiny import write_tiny_study

PAIR, BITS = "tiny__tiny-bert", 32

KILLED_WRITE = textwrap.dedent(
    """
    import io, sys, time
    import numpy as np
    from phase2_assets.compute.data import storage
    from phase2_assets.defs.graph.partitions import pair_bits_key
    from phase2_assets.testing.graph import build, materialize

    def half_then_hang(target, array, allow_pickle=False):
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
        data = buffer.getvalue()
        with open(target, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
        print("HALF_WRITTEN", target, flush=True)
        time.sleep(120)

    storage.np.save = half_then_hang
    study, defs = build(sys.argv[1], sys.argv[2])
    materialize(defs, "bits", pair_bits_key(sys.argv[3], int(sys.argv[4])))
    """
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first_codes(tmp_path: Path, tiny_study_run) -> Path:
    """The codes materialised with the default seed (a copy of the session's tiny study): the
    result a fault must not touch."""
    data = tiny_study_run.copy_to(tmp_path).data_dir
    return data / "binary_codes" / PAIR / f"{BITS}.npy"


@pytest.mark.slow  # a Python process killed mid-write
def test_kill_9_mid_write_keeps_the_previous_codes_byte_for_byte(
    tmp_path, tiny_beir, tiny_model, tiny_study_run
):
    from phase2_assets.defs.graph.partitions import pair_bits_key

    data = tmp_path / "data"
    codes = _first_codes(tmp_path, tiny_study_run)
    before, before_codes = _sha(codes), np.load(codes, allow_pickle=False)

    second = write_tiny_study(
        tmp_path / "second.yaml", tiny_beir, tiny_model, seeds={"projection": 43}
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITE, str(second), str(data), PAIR, str(BITS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        line = ""
        while "HALF_WRITTEN" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "the writer ended before it was killed"
        assert "HALF_WRITTEN" in line, "the writer never reached the codes file"
        half_file = Path(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    assert half_file != codes and half_file.parent == codes.parent  # a temporary beside it
    assert _sha(codes) == before  # the previous materialisation, byte for byte
    np.testing.assert_array_equal(np.load(codes, allow_pickle=False), before_codes)

    _, rerun = build(second, data)
    assert materialize(rerun, "bits", pair_bits_key(PAIR, BITS)).success
    assert _sha(codes) != before  # seed 43 replaced it, completely
    np.load(codes, allow_pickle=False)
    assert not half_file.exists()  # the killed writer's temporary was swept by the rerun
    assert not list(codes.parent.glob(".tmp-*"))


def test_a_full_disk_fails_the_run_with_a_clear_error_and_keeps_the_previous_codes(
    tmp_path, tiny_beir, tiny_model, tiny_study_run, monkeypatch
):
    """The writer runs out of space half-way through the new file (ENOSPC, as the kernel says)."""
    import errno

    from phase2_assets.compute.data import storage
    from phase2_assets.defs.graph.partitions import pair_bits_key

    data = tmp_path / "data"
    codes = _first_codes(tmp_path, tiny_study_run)
    before = _sha(codes)

    def half_then_full(target, array, allow_pickle=False):
        with open(target, "wb") as fh:
            fh.write(b"\x93NUMPY" + b"\0" * 64)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(storage.np, "save", half_then_full)
    second = write_tiny_study(
        tmp_path / "second.yaml", tiny_beir, tiny_model, seeds={"projection": 43}
    )
    _, rerun = build(second, data)
    result = materialize(rerun, "bits", pair_bits_key(PAIR, BITS))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "disk is full" in message and str(codes) in message and "unchanged" in message
    assert _sha(codes) == before
    assert not list(codes.parent.glob(".tmp-*"))
