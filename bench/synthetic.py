"""Synthetic embeddings that look like a text encoder's: unit-norm, clustered and anisotropic.

Real embeddings share a mean direction (a "cone"), live near a low-dimensional subspace whose
axes carry very different variance, and form topical clusters; uniform random vectors have none
of that, and every neighbour is almost equally far, which flatters no method. Each vector here is
a cluster centre plus noise in a 64-d latent space, mapped to ``dim`` dimensions by a matrix with
decaying row scales, plus a little isotropic noise and a shared offset, then L2-normalised.
Queries are noisy copies of random passages and judge that passage relevant, so qrels exist for
nDCG. Written chunk by chunk into ``.npy`` memmaps: 1M x 768 needs a chunk of RAM to generate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CHUNK = 65536
LATENT = 64


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_vectors(
    corpus_path: Path, query_path: Path, *, n: int, dim: int, n_queries: int, seed: int = 0
) -> np.ndarray:
    """Write corpus and query vectors; return the corpus row each query was made from."""
    rng = np.random.default_rng(seed)
    spectrum = (1.0 + np.arange(LATENT)) ** -0.5
    mixing = (rng.standard_normal((LATENT, dim)) * spectrum[:, None] * 4 / np.sqrt(LATENT)).astype(
        np.float32
    )
    offset = (2.0 * rng.standard_normal(dim) / np.sqrt(dim)).astype(np.float32)
    centres = 1.5 * rng.standard_normal((max(16, n // 2000), LATENT)).astype(np.float32)
    corpus = np.lib.format.open_memmap(corpus_path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        chunk_rng = np.random.default_rng([seed, start])
        latent = centres[chunk_rng.integers(0, len(centres), size)]
        latent = latent + chunk_rng.standard_normal((size, LATENT), dtype=np.float32)
        iso = chunk_rng.standard_normal((size, dim), dtype=np.float32) * (1.2 / np.sqrt(dim))
        corpus[start : start + size] = _normalise(latent @ mixing + iso + offset)
    corpus.flush()
    sources = np.sort(rng.choice(n, size=n_queries, replace=False))
    noise = rng.standard_normal((n_queries, dim)).astype(np.float32) * 0.02
    np.save(query_path, _normalise(np.asarray(corpus[sources]) + noise), allow_pickle=False)
    del corpus
    return sources


def write_beir(folder: Path, n: int, sources: np.ndarray) -> None:
    """A BEIR folder whose row order matches the vectors: passage i is ``d{i}``."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        for i in range(n):
            fh.write(f'{{"_id": "d{i}", "title": "", "text": "synthetic passage {i}"}}\n')
    with open(folder / "queries.jsonl", "w") as fh:
        for j in range(len(sources)):
            fh.write(json.dumps({"_id": f"q{j}", "text": f"synthetic query {j}"}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"q{j}\td{int(s)}\t1" for j, s in enumerate(sources)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
