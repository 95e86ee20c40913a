"""Trainings beside a busy process, against the same trainings alone.

Two trainings, each timed in a fresh interpreter alone and then while one process keeps a core
busy (a Python loop: the user's other job, another step, CI's other tests):

- ``opq``: OPQ's training as the product runs it (``opq.build_opq``; on one thread since its
  numbers depend on the thread count, so a busy neighbour takes nothing it uses);
- ``kmeans``: faiss's k-means on every core (an OpenMP-parallel library step, as faiss's scans
  are), where idle threads that spin at each barrier wait for a thread the busy process pushed
  off its core.

With OpenMP threads that sleep when idle (``OMP_WAIT_POLICY=PASSIVE``, set by ``phase2_assets``)
each loses about the core the busy process takes; ``contended_training_ratio`` is the worse of
the two ratios (beside a busy process / alone, goal <= 3). The same ratios with
``OMP_WAIT_POLICY=ACTIVE`` (libgomp's spinning default elsewhere) are printed as the before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

N, DIM, M, TRAIN = 20_000, 384, 32, 16_384
BUSY = "while True: pass"
WORKLOADS = ("opq", "kmeans")


def _train(workload: str) -> None:
    """The measured child: one training on seeded vectors; prints BENCH_JSON."""
    import json

    import faiss

    from phase2_assets.compute.methods import opq

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    if workload == "opq":
        x = rng.standard_normal((N, DIM)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        t0 = time.perf_counter()
        opq.build_opq(x, M, train_size=TRAIN, seed=3)
    else:
        x = rng.standard_normal((65_536, 48)).astype(np.float32)
        t0 = time.perf_counter()
        for seed in range(3):
            faiss.Kmeans(48, 256, niter=10, seed=seed).train(x)
    print("BENCH_JSON " + json.dumps({"seconds": time.perf_counter() - t0}))


def _timed(workload: str, policy: str, busy: bool) -> float:
    from bench import child

    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    spinner = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        return child("bench.contention", "train", workload, env=env)["seconds"]
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def compare() -> dict:
    out: dict[str, dict] = {}
    for workload in WORKLOADS:
        for policy in ("PASSIVE", "ACTIVE"):
            alone = _timed(workload, policy, busy=False)
            beside = _timed(workload, policy, busy=True)
            out.setdefault(workload, {})[policy] = {
                "alone_s": alone,
                "beside_busy_s": beside,
                "ratio": beside / alone,
            }
    return {"ratio": max(w["PASSIVE"]["ratio"] for w in out.values()), "by_workload": out}


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"]:
        _train(sys.argv[2])
