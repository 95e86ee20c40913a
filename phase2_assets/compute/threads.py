"""How many threads the numeric libraries of this process may use: its share of the cores.

faiss (OpenMP), the BLAS libraries numpy, scipy and faiss bundle (OpenBLAS), and torch each start
one thread per core by default, and their idle threads spin. When two such steps share a 2-core
machine, or a step shares it with another busy process, the spinning threads take the cores from
the working ones: OPQ at 64 bits took 17x longer beside one other busy process. A step that uses
only its share (the cores divided by the steps that may run beside it) never competes that way,
and every result here is bit-identical whatever the share (``compute/test_thread_determinism``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, lowered by a cgroup CPU quota (a
    container's or a Kubernetes pod's ``cpu`` limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def share(cores: int, steps_at_once: int) -> int:
    """Threads per step when ``steps_at_once`` steps split ``cores`` (at least one)."""
    return max(1, cores // max(1, steps_at_once))


@contextmanager
def single_thread() -> Iterator[int]:
    """One thread for a library step whose sums depend on the thread count: LAPACK and BLAS
    inside PCA, ITQ and OPQ training, faiss's k-means (PQ), its OpenMP mean (RaBitQ), every
    faiss call that goes through its bundled OpenBLAS (a PCA or rotation applied, PQ's distance
    tables), torch's CPU reductions in the X3 adapter's training. faiss's OpenBLAS is built on
    OpenMP and takes faiss's OpenMP thread count at each call, so only pinning both pins it:
    OpenBLAS's Haswell kernel (AVX2 machines, and AMD EPYC where ``OPENBLAS_CORETYPE=Haswell``)
    rounds PQ's tables, OPQ's rotations and PCA's projections differently at 2 threads than at 1.
    Products the study computes itself go through ``exact_products`` and need no pinning."""
    with limited(1) as n:
        yield n


def blocks_in_parallel(fn: Callable[[Any], Any], items: Iterable) -> Iterator:
    """``fn(item)`` for every item, on as many Python threads as this step's OpenMP share, each
    with faiss (and so faiss's OpenBLAS) on one thread: a library call whose sums depend on its
    thread count gives the same numbers at any share, and the blocks still use every core (faiss
    releases the GIL). Results in the order of ``items``."""
    import faiss

    workers = faiss.omp_get_max_threads()
    if workers <= 1:
        with single_thread():
            yield from map(fn, items)
        return

    def pinned(item):
        faiss.omp_set_num_threads(1)  # this thread's OpenMP setting only
        return fn(item)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(pinned, items)


@contextmanager
def limited(threads: int) -> Iterator[int]:
    """Run the block with faiss, BLAS, OpenMP and torch limited to ``threads``; restore after."""
    import faiss

    torch = sys.modules.get("torch")  # imported by the code location; never imported here
    before = (faiss.omp_get_max_threads(), torch.get_num_threads() if torch else None)
    with threadpool_limits(limits=threads):
        faiss.omp_set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            faiss.omp_set_num_threads(before[0])
            if torch:
                torch.set_num_threads(before[1])
