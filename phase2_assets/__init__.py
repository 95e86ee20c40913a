"""phase2_assets: binary retrieval with text embeddings, as a Dagster code location.

OpenMP threads that wait on a barrier spin by default (libgomp spins for about 300,000 cycles
before it sleeps), so faiss's and torch's idle threads keep a core busy. Beside any other busy
process (another step, a user's job, CI's other tests) a training with more runnable threads than
cores then crawls: OPQ beside one busy process ran for 25 minutes instead of seconds. Idle threads
here spin only briefly, then sleep (``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=1000``;
faiss's bundled OpenBLAS runs on the same OpenMP; ``OPENBLAS_THREAD_TIMEOUT`` shortens numpy's
OpenBLAS spin). The short spin matters to torch: a transformer forward pass is thousands of small
parallel regions, and with no spin at all every one waits for a sleeping thread to wake (SciFact
through MiniLM in bf16 ran at 15 passages/s inside ``phase2 demo`` against 43/s with the spin;
k-means beside a busy process kept its 1.7-1.9x). libgomp reads the variables when it is loaded,
so they are set here, before anything imports faiss or torch; a value the user set is kept.
``bench`` measures it (``contended_training_ratio``).
"""

import os

WAIT_POLICY = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "GOMP_SPINCOUNT": "1000",
    "OPENBLAS_THREAD_TIMEOUT": "4",
}
for _name, _value in WAIT_POLICY.items():
    os.environ.setdefault(_name, _value)
