"""The numbers do not depend on the thread count, on any BLAS kernel, and the study's own
reductions not even on the kernel.

A test that compares 1 thread with 2 on the machine it runs on says nothing about the next
machine: OpenBLAS picks its kernel by CPU, and its Haswell kernel (AVX2 machines, and AMD EPYC,
where the environment sets ``OPENBLAS_CORETYPE=Haswell``) rounded the ground truth and PQ's tables
differently at 2 threads, where the SkylakeX kernel of the machine the old test was written on
did not. So the comparison runs in subprocesses under every kernel this CPU can execute
(``OPENBLAS_CORETYPE``), at one thread and at every core, each printing the digests of
``determinism_probe``:

- under each kernel, one thread and every core give the same digest for every result;
- across kernels, every result the study computes itself (ground truth, codes, rescoring, the
  geometry with its eigenvalues, the X3 adapter) is identical, by construction
  (``compute/exact_products``, ``compute/exact_eigenvalues``). The methods trained or searched by
  library code that rounds by the kernel (faiss's k-means and sgemm tables, LAPACK's eigen- and
  singular-value solvers in PCA, ITQ, OPQ and RaBitQ) and scikit-learn's E8/X2 regressions may
  differ there in the last bits; they are listed in ``KERNEL_DEPENDENT`` and in
  docs/methodology.md#determinism.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from phase2_assets.compute.methods import instrument
from phase2_assets.compute.search import exact_search

# OpenBLAS kernels and the CPU flags each needs (Linux /proc/cpuinfo names), one per family.
KERNELS = {
    "Prescott": {"pni"},
    "Sandybridge": {"avx"},
    "Haswell": {"avx2", "fma"},
    "SkylakeX": {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"},
}
# Digests allowed to differ between kernels (never between thread counts), by key prefix.
KERNEL_DEPENDENT = ("predictors", "pq-", "opq-", "pca_float-", "pca_int8-", "itq-", "rabitq-")
ROOT = Path(__file__).resolve().parents[2]
# Probes run two at a time: each is mostly one busy thread (imports, training, Python loops), and
# a digest must not depend on what else runs on the machine any more than on the thread count.
PARALLEL_PROBES = 2


def executable_kernels() -> list[str]:
    try:
        flags = next(
            set(line.split(":", 1)[1].split())
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return []
    return [name for name, needs in KERNELS.items() if needs <= flags]


def _probe(kernel: str, threads: int) -> dict:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    env.pop("OPENBLAS_L2_SIZE", None)  # set beside OPENBLAS_CORETYPE on some machines
    proc = subprocess.run(
        [sys.executable, "-m", "phase2_assets_tests.compute.determinism_probe", str(threads)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 OpenBLAS kernels")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to compare thread counts")
def test_determinism_across_kernels_and_thread_counts():
    kernels = executable_kernels()
    assert len(kernels) >= 2, f"this CPU executes only {kernels}"
    keys = [(k, t) for k in kernels for t in (1, os.cpu_count() or 2)]
    with ThreadPoolExecutor(max_workers=PARALLEL_PROBES) as pool:
        runs = dict(zip(keys, pool.map(lambda key: _probe(*key), keys), strict=True))
    for (kernel, _), run in runs.items():
        # The BLAS libraries really ran the kernel asked for (an unknown name falls back).
        assert any(kernel.lower() in b.lower() for b in run["environment"]["blas"]), run
    for kernel in kernels:
        one, every = runs[kernel, 1]["digests"], runs[kernel, os.cpu_count() or 2]["digests"]
        differ = sorted(k for k in one if one[k] != every[k])
        assert not differ, f"under OpenBLAS's {kernel} kernel, 1 thread vs all differ: {differ}"
    first = runs[kernels[0], 1]["digests"]
    for kernel in kernels[1:]:
        other = runs[kernel, 1]["digests"]
        differ = sorted(
            k for k in first if first[k] != other[k] and not k.startswith(KERNEL_DEPENDENT)
        )
        assert not differ, f"{kernels[0]} and {kernel} kernels differ on {differ}"


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to compare thread counts")
def test_one_thread_and_all_threads_give_bit_identical_results_here():
    """The fast loop's version, in this process on this machine's kernel."""
    from phase2_assets.compute import threads as threads_lib

    rng = np.random.default_rng(11)
    corpus, queries = _unit(rng, 20_000, 64), _unit(rng, 200, 64)
    runs = []
    for n in (1, os.cpu_count() or 2):
        with threads_lib.limited(n):
            scores, ids = exact_search.float_topk(queries, corpus, 50, corpus_block=4096)
            codes = instrument.encode(corpus, 128, 7)
        runs.append((scores.tobytes(), ids.tobytes(), codes.tobytes()))
    assert runs[0] == runs[1]
