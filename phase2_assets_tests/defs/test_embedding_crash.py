"""kill -9 during a real embedding materialisation, then a rerun: identical vectors, no chunk
encoded twice.

The killed run is a separate Python process materialising the embeddings asset through Dagster
with the tiny BERT; each chunk is slowed down (after it is encoded) so that SIGKILL lands
mid-asset, after a few chunks have been journalled. The rerun happens here, counting what it
encodes, and is compared with an uninterrupted run in another folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from phase2_assets.compute.data import resumable
from phase2_assets.defs.storage.io_managers import staging_path
from phase2_assets.testing.graph import build, materialize
from phase2_assets.testing.tiny import write_tiny_study

pytestmark = pytest.mark.slow  # a Python process killed mid-embedding, then a rerun

PAIR = "tiny__tiny-bert"
N_DOCS, N_QUERIES = 300, 12  # the tiny collection
CHUNK = 20  # 15 passage chunks
EMBEDDINGS = [dg.AssetKey("corpus_embeddings"), dg.AssetKey("query_embeddings")]

KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    from phase2_assets.compute.data import resumable
    from phase2_assets.testing.graph import build

    real = resumable.encode_to

    def slow(*args, **kwargs):
        report = real(*args, **kwargs)
        time.sleep(0.3)
        return report

    resumable.encode_to = slow
    study, defs = build(sys.argv[1], sys.argv[2])
    dg.materialize(
        assets=list(defs.assets),
        selection=[dg.AssetKey("corpus_embeddings"), dg.AssetKey("query_embeddings")],
        partition_key=sys.argv[3],
        resources=dict(defs.resources),
    )
    """
)


def _embed(defs):
    return dg.materialize(
        assets=list(defs.assets),
        selection=EMBEDDINGS,
        partition_key=PAIR,
        resources=dict(defs.resources),
    )


def _wait_for_chunks(journal: Path, proc: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
        try:
            done = json.loads(journal.read_text())["chunks_done"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            done = 0
        if done >= at_least:
            return done
        time.sleep(0.05)
    raise AssertionError(f"{journal} never reached {at_least} chunks")


def test_kill_9_mid_embedding_then_rerun_resumes_with_identical_vectors(
    tmp_path, tiny_beir, tiny_model, monkeypatch
):
    study_file = write_tiny_study(
        tmp_path / "tiny.yaml",
        tiny_beir,
        tiny_model,
        retrieval={"query_block": 5, "corpus_block": 128, "encode_chunk": CHUNK},
    )
    crashed_dir, clean_dir = tmp_path / "crashed", tmp_path / "clean"
    _, crashed = build(study_file, crashed_dir)
    assert materialize(crashed, "dataset", "tiny").success

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(study_file), str(crashed_dir), PAIR],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = resumable.journal_path(staging_path(crashed_dir, f"tiny-corpus_embeddings-{PAIR}"))
    try:
        _wait_for_chunks(journal, proc, at_least=3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = json.loads(journal.read_text())["chunks_done"]
    assert 3 <= done < 15, done
    assert not (crashed_dir / "corpus_embeddings" / f"{PAIR}.npy").exists()

    encoded: list[int] = []
    real = resumable.encode_to

    def counting(model, texts, out, **kwargs):
        encoded.append(len(texts))
        return real(model, texts, out, **kwargs)

    monkeypatch.setattr(resumable, "encode_to", counting)
    rerun = _embed(crashed)
    assert rerun.success
    written = rerun.asset_materializations_for_node("embeddings")
    meta = {m.asset_key.path[-1]: m.metadata for m in written}
    assert meta["corpus_embeddings"]["chunks_resumed"].value == done
    assert meta["query_embeddings"]["chunks_resumed"].value == 0
    assert sum(encoded) == (N_DOCS - done * CHUNK) + N_QUERIES  # nothing encoded twice
    assert not journal.exists()

    monkeypatch.setattr(resumable, "encode_to", real)
    _, clean = build(study_file, clean_dir)
    assert materialize(clean, "dataset", "tiny").success
    assert _embed(clean).success
    for name in ("corpus_embeddings", "query_embeddings"):
        got = np.load(crashed_dir / name / f"{PAIR}.npy", allow_pickle=False)
        want = np.load(clean_dir / name / f"{PAIR}.npy", allow_pickle=False)
        np.testing.assert_array_equal(got, want)
