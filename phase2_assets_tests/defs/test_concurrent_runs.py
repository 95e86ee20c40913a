"""Two processes materialising different partitions into one data folder at once: no clobbering."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from phase2_assets.compute.methods import instrument
from phase2_assets.testing.graph import build, materialize

pytestmark = pytest.mark.slow  # two Python processes, each building and materialising the study

PAIR = "tiny__tiny-bert"

ONE_PARTITION = textwrap.dedent(
    """
    import sys
    from phase2_assets.defs.graph.partitions import pair_bits_key
    from phase2_assets.testing.graph import build, materialize

    study, defs = build(sys.argv[1], sys.argv[2])
    result = materialize(defs, "bits", pair_bits_key(sys.argv[3], int(sys.argv[4])))
    sys.exit(0 if result.success else 1)
    """
)


def test_two_runs_on_different_bit_lengths_at_once(tmp_path, tiny_study):
    data = tmp_path / "data"
    study, defs = build(tiny_study, data)
    assert materialize(defs, "dataset", "tiny").success
    assert materialize(defs, "pair", PAIR).success

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ONE_PARTITION, str(tiny_study), str(data), PAIR, str(bits)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for bits in (16, 32)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]

    vectors = np.load(data / "corpus_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    for bits in (16, 32):
        codes = np.load(data / "binary_codes" / PAIR / f"{bits}.npy", allow_pickle=False)
        expected = instrument.encode(vectors, bits, study.seeds.projection)
        np.testing.assert_array_equal(codes, expected)  # each run wrote its own file, whole
        assert (data / "binary_metrics" / PAIR / f"{bits}.parquet").exists()
    leftovers = [p.name for p in data.rglob(".tmp-*")]
    assert leftovers == []  # no temporary file left behind by either writer
