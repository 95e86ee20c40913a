"""OPQ's training budget against PQ's training time and against faiss's full OPQ training.

On the vectors of a finished ``phase2 demo`` (SciFact x all-MiniLM-L6-v2 in ``--data-dir``), at
every PQ size of the demo: the seconds of PQ's training (``quantizers.build_pq``), of the
product's OPQ training (``opq.train_opq`` with the study's defaults) and recall_at_10 of that OPQ
against the exact top-10, beside faiss's own ``OPQMatrix`` trained with its defaults (50
alternations of 4 k-means iterations, 40 for the first), which is what the product ran before
the budget. ``python -m bench --only opq``.
"""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np

from phase2_assets.compute.methods import Settings, opq, quantizers
from phase2_assets.compute.search.metrics import recall_at_k

PAIR = "scifact__minilm"
BYTES = (8, 16, 32, 64)


def _arrays(data: Path):
    def load(path: Path):
        if not path.exists():
            raise FileNotFoundError(f"{path}: run `phase2 demo --data-dir {data}` first")
        return np.load(path, allow_pickle=False)

    corpus = load(data / "corpus_embeddings" / f"{PAIR}.npy")
    queries = load(data / "query_embeddings" / f"{PAIR}.npy")
    truth = load(data / "float_ground_truth" / f"{PAIR}.npz")["ids"][:, :10]
    return corpus, queries, truth


def faiss_opq_50(corpus: np.ndarray, m: int, seed: int) -> faiss.Index:
    """faiss's OPQMatrix with its default iterations, seeded as the product seeded it before."""
    dim = corpus.shape[1]
    index = faiss.index_factory(dim, f"OPQ{m},PQ{m}x8np", faiss.METRIC_INNER_PRODUCT)
    transform = faiss.downcast_VectorTransform(index.chain.at(0))
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    start = (q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]).astype(np.float32)
    faiss.copy_array_to_vector(start.ravel(), transform.A)
    inner = faiss.ProductQuantizer(dim, m, 8)
    inner.cp.seed = seed
    transform.pq = quantizers.quiet_kmeans(inner)
    final = faiss.downcast_index(index.index).pq
    final.cp.seed = seed
    quantizers.quiet_kmeans(final)
    try:
        index.train(corpus)
    finally:
        transform.pq = None
    index.add(corpus)
    return index


def compare(data: Path) -> dict:
    corpus, queries, truth = _arrays(data)
    s = Settings()
    rows = {}
    for m in BYTES:
        _, pq_report = quantizers.build_pq(corpus, m, train_size=s.pq_train_size, seed=s.pq_seed)
        t0 = time.perf_counter()
        opq.train_opq(
            corpus,
            m,
            seed=s.pq_seed,
            **opq.OpqParams().model_dump(exclude={"train_size"}),
        )
        opq_seconds = time.perf_counter() - t0
        ours = opq.OPQ().build(corpus, 8 * m, s)
        ours_recall = recall_at_k(opq.OPQ().search(ours, queries, 10, 8 * m, s), truth, 10)
        t0 = time.perf_counter()
        reference = faiss_opq_50(corpus, m, s.pq_seed)
        reference_seconds = time.perf_counter() - t0
        reference_recall = recall_at_k(quantizers.index_topk(reference, queries, 10), truth, 10)
        rows[m] = {
            "pq_train_seconds": pq_report.train_seconds,
            "opq_train_seconds": opq_seconds,
            "opq_iterations": ours.index.iterations,
            "opq_recall_at_10": ours_recall,
            "faiss_opq50_seconds": reference_seconds,
            "faiss_opq50_recall_at_10": reference_recall,
            "time_ratio": opq_seconds / pq_report.train_seconds,
            "recall_gap": ours_recall - reference_recall,
        }
        print(f"# opq {m} bytes: {rows[m]}", flush=True)
    return rows
