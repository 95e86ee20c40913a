"""The exhaustive scans at matrix-product speed: each one's search against faiss's own scan.

``python -m bench --only scans``: on one synthetic partition (500K x 768 by default), float16,
int8 and int4 are built once each (faiss ``IndexScalarQuantizer``) and searched for the top-100
of every query twice over, by faiss's ``search`` (its one-vector-at-a-time decode-and-multiply
loop, on every core) and by the study's route (``quantizers.index_topk``: the exact top-k of the
vectors decoded a block at a time, ``search.decoded``). ``binary_asym`` has no faiss scan of its
own; its baseline is faiss's SQ8 scan of the same corpus, the cheapest faiss scan of the four.
Rounds alternate and the faster of each side counts. Target per method: faiss's seconds / ours
(goal >= 3), with the share of list entries equal to faiss's.
"""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np

from bench import methods

K = 100
ROUNDS = 2
QTYPES = {
    "float16": faiss.ScalarQuantizer.QT_fp16,
    "int8": faiss.ScalarQuantizer.QT_8bit,
    "int4": faiss.ScalarQuantizer.QT_4bit,
}
ASYM_BITS = 512


def _fastest(fn, rounds: int = ROUNDS):
    best, out = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def compare(workdir: Path, n: int, dim: int, n_queries: int, log=print) -> dict:
    from phase2_assets.compute.methods import METHODS, Settings, quantizers
    from phase2_assets.compute.search.exact_search import merge_topk

    methods.prepare(workdir, n, dim, n_queries)  # the methods bench's synthetic partition
    corpus = np.load(workdir / "corpus.npy", mmap_mode="r", allow_pickle=False)
    queries = np.load(workdir / "queries.npy", allow_pickle=False)
    settings = Settings()
    rows, sq8_faiss = {}, None
    for name, qtype in QTYPES.items():
        index, _ = quantizers.build_scalar(corpus, qtype)

        def bare(index=index):
            return merge_topk(*index.search(queries, K), K)[1]

        def ours(index=index):
            return quantizers.index_topk(
                index,
                queries,
                K,
                query_block=settings.query_block,
                corpus_block=settings.corpus_block,
            )

        bare_s, bare_ids = _fastest(bare)
        ours_s, ours_ids = _fastest(ours)
        if name == "int8":
            sq8_faiss = bare_s
        rows[name] = {
            "faiss_seconds": bare_s,
            "ours_seconds": ours_s,
            "ratio": bare_s / ours_s,
            "equal_entries": float(np.mean(bare_ids == ours_ids)),
        }
        log(f"# scan {name}: faiss {bare_s:.1f} s, ours {ours_s:.1f} s")
        del index
    method = METHODS["binary_asym"]
    built = method.build(corpus, ASYM_BITS, settings)
    ours_s, _ = _fastest(lambda: method.search(built, queries, K, ASYM_BITS, settings))
    rows["binary_asym"] = {
        "faiss_seconds": sq8_faiss,
        "ours_seconds": ours_s,
        "ratio": sq8_faiss / ours_s,
        "bits": ASYM_BITS,
        "baseline": "faiss SQ8 scan",
    }
    log(f"# scan binary_asym@{ASYM_BITS}: {ours_s:.1f} s against faiss SQ8's {sq8_faiss:.1f} s")
    return {"n": n, "dim": dim, "n_queries": n_queries, "rows": rows}
