"""phase2_assets: binary retrieval with text embeddings, as a Dagster code location.

OpenMP threads that wait on a barrier spin by default (libgomp spins for about 300,000 cycles
before it sleeps), so faiss's and torch's idle threads keep a core busy. Beside any other busy
process (another step, a user's job, CI's other tests) a training with more runnable threads than
cores then crawls: OPQ beside one busy process ran for 25 minutes instead of seconds. Idle threads
here sleep at once instead (``OMP_WAIT_POLICY=PASSIVE``, faiss's bundled OpenBLAS runs on the same
OpenMP; ``OPENBLAS_THREAD_TIMEOUT`` shortens numpy's OpenBLAS spin). libgomp reads the variables
when it is loaded, so they are set here, before anything imports faiss or torch; a value the user
set is kept. ``bench`` measures it (``contended_training_ratio``).
"""

import os

WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
for _name, _value in WAIT_POLICY.items():
    os.environ.setdefault(_name, _value)
