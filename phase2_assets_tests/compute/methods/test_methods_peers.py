"""Known-answer tests of the baselines users already run: sentence-transformers' ubinary and its
int8 rescoring (checked byte for byte against ``quantize_embeddings``), float16, int4, Matryoshka
truncation (alone and with int8) and PCA in float32."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers.util.quantization import quantize_embeddings

from phase2_assets.compute.methods import METHODS, Memory, Plan, Settings
from phase2_assets.compute.methods.sign import encode_sign
from phase2_assets.compute.methods.sign_rescore import int8_ranges, quantize_int8
from phase2_assets.compute.search import exact_search
from phase2_assets.compute.search.metrics import recall_at_k

PLANNED = Plan(frozenset({64, 128, 256, 512}), frozenset({8, 16, 32, 64}))
SETTINGS = Settings(corpus_block=97, query_block=13)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    corpus = _unit(rng.standard_normal((600, 48)) / np.sqrt(np.arange(1, 49)) + 0.05)
    queries = _unit(corpus[:40] + 0.05 * rng.standard_normal((40, 48)))
    return corpus, queries


def _search(name, corpus, queries, bits, k=10, settings=SETTINGS):
    m = METHODS[name]
    return m.search(m.build(corpus, bits, settings), queries, k, bits, settings)


def _recall(name, corpus, queries, bits, k=10) -> float:
    truth = exact_search.float_topk(queries, corpus, k)[1]
    return recall_at_k(_search(name, corpus, queries, bits, k), truth, k)


@pytest.mark.parametrize(
    ("name", "bits", "code_bits", "memory"),
    [
        ("sign", None, 384, Memory(48.0, 0)),
        ("sign_rescore", None, 384, Memory(48.0, 2 * 4 * 384, 0.0, 384.0)),
        ("float16", None, 16 * 384, Memory(768.0, 0)),
        ("int4", None, 4 * 384, Memory(192.0, 2 * 4 * 384)),
        ("truncate", 256, 256, Memory(32.0, 0)),
        ("truncate_int8", 256, 256, Memory(32.0, 2 * 4 * 32)),
        ("pca_float", 256, 256, Memory(32.0, 4 * (384 * 8 + 384))),
    ],
)
def test_registered_with_honest_memory(name, bits, code_bits, memory):
    m = METHODS[name]
    assert m.description and m.code_bits(384, bits) == code_bits
    assert m.memory(384, bits) == memory
    assert m.applies(384, bits, PLANNED)


def test_truncation_and_pca_fit_only_where_their_dimensions_exist():
    assert not METHODS["truncate"].fits(48, 2048)  # 64 dims of a 48-d model
    assert not METHODS["truncate"].fits(384, 72)  # not a whole number of float32 dims
    assert METHODS["truncate_int8"].fits(48, 384) and not METHODS["truncate_int8"].fits(48, 392)
    assert not METHODS["pca_float"].fits(48, 2048)


def test_sign_is_sentence_transformers_ubinary_byte_for_byte(data):
    corpus, _ = data
    ours = encode_sign(corpus, chunk=77)
    assert np.array_equal(ours, quantize_embeddings(corpus, precision="ubinary"))
    odd = corpus[:, :45]  # 45 bits: the last byte padded with zero bits, as packbits does
    assert np.array_equal(encode_sign(odd), quantize_embeddings(odd, precision="ubinary"))
    assert METHODS["sign"].code_bits(45, None) == 48


def test_sign_finds_a_vector_by_its_own_code_and_ranks_by_hamming(data):
    corpus, _ = data
    ids = _search("sign", corpus, corpus[:30], None, k=1)
    codes = encode_sign(corpus)
    # Top-1 is at Hamming distance 0: the row itself, or an earlier row with the same code.
    for q, (row,) in enumerate(ids):
        assert row <= q and np.array_equal(codes[row], codes[q])


def test_sign_rescore_int8_is_sentence_transformers_int8(data):
    corpus, queries = data
    ranges = int8_ranges(corpus, chunk=101)
    expected = quantize_embeddings(corpus, precision="int8", calibration_embeddings=corpus)
    assert np.array_equal(quantize_int8(corpus, ranges, chunk=101), expected)
    expected_q = quantize_embeddings(queries, precision="int8", calibration_embeddings=corpus)
    assert np.array_equal(quantize_int8(queries, ranges), expected_q)


def test_sign_rescore_with_every_document_shortlisted_is_the_int8_ranking(data):
    corpus, queries = data
    n = len(corpus)
    settings = Settings(
        corpus_block=97,
        query_block=13,
        method_params={"sign_rescore": {"rescore_multiplier": n, "depth": 10}},
    )
    got = _search("sign_rescore", corpus, queries, None, k=10, settings=settings)
    int8 = quantize_int8(corpus, int8_ranges(corpus)).astype(np.float32)
    scores = queries @ int8.T
    rows = np.arange(n)
    expected = np.array([np.lexsort((rows, -s))[:10] for s in scores])
    assert np.array_equal(got, expected)


def test_rescoring_beats_the_sign_codes_alone(data):
    corpus, queries = data
    assert _recall("sign_rescore", corpus, queries, None) > _recall("sign", corpus, queries, None)


def test_float16_and_int4_follow_their_precision(data):
    corpus, queries = data
    f16, i4 = _recall("float16", corpus, queries, None), _recall("int4", corpus, queries, None)
    assert f16 >= 0.99
    assert 0.5 < i4 <= f16


def test_truncate_at_every_dimension_is_the_exact_ranking(data):
    corpus, queries = data
    # 48 dims x 32 bits: the whole (unit) vector, so the ranking is the ground truth's.
    truth = exact_search.float_topk(queries, corpus, 10)[1]
    assert np.array_equal(_search("truncate", corpus, queries, 48 * 32), truth)
    assert _recall("truncate", corpus, queries, 4 * 32) < 0.9  # 4 of 48 dims lose information


def test_truncate_int8_and_pca_float_keep_most_of_the_ranking(data):
    corpus, queries = data
    assert _recall("truncate_int8", corpus, queries, 48 * 8) >= 0.9  # every dimension, int8
    assert _recall("pca_float", corpus, queries, 48 * 32) >= 0.95  # every principal direction
    low = _recall("pca_float", corpus, queries, 4 * 32)
    assert low > _recall("truncate", corpus, queries, 4 * 32)  # 4 PCs beat 4 leading dims
