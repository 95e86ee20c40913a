"""Fingerprints of every number the study keeps, computed in this process as it is configured.

``python -m phase2_assets_tests.compute.determinism_probe THREADS [PART]`` prints one JSON object:
the BLAS kernels this process runs (threadpoolctl's ``architecture``, which ``OPENBLAS_CORETYPE``
chooses), faiss's SIMD level, torch's CPU capability, and a SHA-256 for each kept result: the
float ground truth (scores and ids), the instrument's codes, the geometry's numbers, the X3
adapter's codes, and, for every registered method at two budgets, its built index and its result
lists. ``test_determinism_across_kernels`` runs it under every kernel the CPU can execute and at
one and all threads, and compares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys

import numpy as np

DIM = 384


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _fingerprint(obj) -> bytes:
    """The bytes of whatever a method built: arrays, faiss indexes (serialised), dataclasses of
    them, and plain values."""
    import faiss

    if isinstance(obj, np.ndarray):
        return obj.tobytes()
    if isinstance(obj, faiss.Index):
        return faiss.serialize_index(obj).tobytes()
    if dataclasses.is_dataclass(obj):
        return b"|".join(_fingerprint(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, (list, tuple)):
        return b"|".join(_fingerprint(v) for v in obj)
    if obj is None or isinstance(obj, (int, float, str, bool)):
        return repr(obj).encode()
    raise TypeError(f"no fingerprint for {type(obj).__name__}: add it here")


def _digest(obj) -> str:
    return hashlib.sha256(_fingerprint(obj)).hexdigest()[:16]


def corpus_and_queries(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """384-d unit vectors in a narrow cone (as sentence embeddings are), queries near documents:
    scores bunch up, so last-bit differences reach rankings, codes and trained indexes."""
    rng = np.random.default_rng(seed)
    corpus = _unit(rng, 4000, DIM) + 0.2
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = corpus[:100] + 0.01 * _unit(rng, 100, DIM)
    return corpus, queries


def method_cases():
    """(name, bits) for every registered method but the float reference, at 64 and 256 bits."""
    from phase2_assets.compute.methods import METHODS

    for name, method in sorted(METHODS.items()):
        if name == "float32":
            continue
        for bits in (None,) if method.budget == "reference" else (64, 256):
            if method.fits(DIM, bits):
                yield name, bits


def _points(n: int = 15):
    """Regression points of two features and a planted target (E8/X2's shape). Few: every point
    is one more leave-one-out fit of each model (the MLP's dominate the probe's cost), and the
    models' rounding meets the thread count in the first fit as much as in the thirtieth."""
    import polars as pl

    rng = np.random.default_rng(2)
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    return pl.DataFrame({"x1": x1, "x2": x2, "y": 0.5 - 0.2 * x1 + rng.normal(0, 0.01, n)})


def study_numbers(threads: int) -> dict[str, str]:
    """Digests of the study's own reductions: ground truth, codes, geometry, the X3 adapter, the
    E8/X2 predictors."""
    from phase2_assets.compute import threads as threads_lib
    from phase2_assets.compute.analysis import adapter, geometry, predictors
    from phase2_assets.compute.methods import Settings, instrument
    from phase2_assets.compute.search import exact_search

    corpus, queries = corpus_and_queries()
    config = adapter.AdapterConfig(
        name="quick", epochs=3, train_size=1024, anchors=256, neighbours=10, negatives=10
    )
    with threads_lib.limited(threads):
        predicted = predictors.fit_predictors(_points(), ["x1", "x2"], "y", seed=0, n_bootstrap=20)
        scores, ids = exact_search.float_topk(queries, corpus, 100, corpus_block=1024)
        shape = geometry.embedding_geometry(corpus, pair_sample=500, seed=1)
        fitted = adapter.AdapterMethod(config, seed=3, device="cpu")
        adapter_codes = fitted.build(corpus[:3000], 128, Settings()).index.codes
        return {
            "ground_truth_scores": _digest(scores),
            "ground_truth_ids": _digest(ids),
            "instrument_codes": _digest(instrument.encode(corpus, 256, 7)),
            "geometry": hashlib.sha256(repr(shape).encode()).hexdigest()[:16],
            "adapter_codes": _digest(adapter_codes),
            "predictors": hashlib.sha256(predicted.write_csv().encode()).hexdigest()[:16],
        }


def method_numbers(threads: int) -> dict[str, str]:
    """Digests of every registered method's built index and its result lists."""
    from phase2_assets.compute import threads as threads_lib
    from phase2_assets.compute.methods import METHODS, Settings

    corpus, queries = corpus_and_queries()
    # PQ, OPQ and ITQ train on half the corpus: k-means and the rotations are the probe's costliest
    # steps, and their rounding by thread count shows on 2,000 points as on 4,000.
    settings = Settings(pq_train_size=2000, corpus_block=2048, query_block=64)
    out = {}
    with threads_lib.limited(threads):
        for name, bits in method_cases():
            method = METHODS[name]
            built = method.build(corpus, bits, settings)
            ids = method.search(built, queries, 50, bits, settings)
            out[f"{name}-{bits or 'ref'}/index"] = _digest(built.index)
            out[f"{name}-{bits or 'ref'}/ids"] = _digest(ids)
    return out


def environment() -> dict:
    """What chose the kernels: the BLAS libraries' architectures, faiss's and torch's SIMD."""
    import faiss
    import torch
    from threadpoolctl import threadpool_info

    blas = sorted(
        f"{i.get('prefix')}:{i.get('architecture')}"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )
    level = getattr(faiss, "get_compile_options", lambda: "")()
    return {"blas": blas, "faiss": level, "torch": torch.backends.cpu.get_cpu_capability()}


def main(argv: list[str]) -> None:
    threads = int(argv[1])
    part = argv[2] if len(argv) > 2 else "all"
    digests = {}
    if part in ("all", "study"):
        digests.update(study_numbers(threads))
    if part in ("all", "methods"):
        digests.update(method_numbers(threads))
    print(json.dumps({"environment": environment(), "digests": digests}))


if __name__ == "__main__":
    main(sys.argv)
