"""Hamming top-k: the instrument's exact search against faiss ``IndexBinaryFlat`` on the same codes.

Both sides build their index from the same packed 256-bit codes and return the top-100 of every
query; rounds alternate and the fastest of each side counts, to damp noise on a shared machine.
The instrument must also return the same distances (it only differs in how ties are ordered).
"""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np

from phase2_assets.compute.methods import instrument

BITS, K = 256, 100


def compare(workdir: Path, quick: bool) -> dict:
    from bench.study import PAIR

    data = workdir / "data"
    corpus = np.load(data / "corpus_embeddings" / f"{PAIR}.npy", mmap_mode="r", allow_pickle=False)
    queries = np.load(data / "query_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    codes = instrument.encode(corpus, BITS, 42)
    q_codes = instrument.encode(queries, BITS, 42)
    bare_times, ours_times = [], []
    for _ in range(2 if quick else 3):
        t0 = time.perf_counter()
        index = faiss.IndexBinaryFlat(BITS)
        index.add(codes)
        bare_d, _ = index.search(q_codes, K)
        bare_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, ours_d = instrument.hamming_topk(q_codes, codes, K)
        ours_times.append(time.perf_counter() - t0)
    if not np.array_equal(bare_d, ours_d):
        raise AssertionError("instrument.hamming_topk and IndexBinaryFlat disagree on distances")
    return {
        "codes": list(codes.shape),
        "queries": len(q_codes),
        "bare_seconds": min(bare_times),
        "ours_seconds": min(ours_times),
        "ratio": min(bare_times) / min(ours_times),
    }
