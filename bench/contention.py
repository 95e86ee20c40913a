"""OPQ's training beside a busy process, against the same training alone.

One OPQ training (``opq.build_opq``: its own k-means and rotation updates, faiss and BLAS on every
core) is timed in a fresh interpreter alone, then again while one process keeps a core busy (a
Python loop: the user's other job, another step, CI's other tests). With OpenMP threads that sleep
when idle (``OMP_WAIT_POLICY=PASSIVE``, set by ``phase2_assets``) the training loses about the
core the busy process takes; with spinning threads (``ACTIVE``, libgomp's default elsewhere) each
barrier waits for a thread that the busy process has pushed off its core.

``contended_training_ratio`` = beside a busy process / alone (goal <= 3); the same ratio with
``OMP_WAIT_POLICY=ACTIVE`` is printed as the before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

N, DIM, M, TRAIN = 20_000, 384, 32, 16_384
BUSY = "while True: pass"


def _train() -> None:
    """The measured child: one OPQ training on seeded unit vectors; prints BENCH_JSON."""
    import json

    from phase2_assets.compute.methods import opq

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t0 = time.perf_counter()
    opq.build_opq(x, M, train_size=TRAIN, seed=3)
    print("BENCH_JSON " + json.dumps({"seconds": time.perf_counter() - t0}))


def _timed(policy: str | None, busy: bool) -> float:
    from bench import child

    env = dict(os.environ)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    spinner = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        return child("bench.contention", "train", env=env)["seconds"]
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def compare() -> dict:
    out = {}
    for policy in ("PASSIVE", "ACTIVE"):
        alone = _timed(policy, busy=False)
        beside = _timed(policy, busy=True)
        out[policy] = {"alone_s": alone, "beside_busy_s": beside, "ratio": beside / alone}
    return {"ratio": out["PASSIVE"]["ratio"], "by_policy": out}


if __name__ == "__main__":
    if sys.argv[1:] == ["train"]:
        _train()
