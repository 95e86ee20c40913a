"""Every method's search output is checked before it is scored (issue 24, item 3).

Before, the ids went straight into the metrics: a method returning -1 everywhere (faiss's "no
result") scored recall_at_10 0.90, one corpus row repeated k times scored nDCG above the ideal,
10 columns returned when 100 were asked gave recall_at_100 1.0, out-of-range ids scored 0.0,
and a float array with a NaN failed with "cannot convert float NaN to integer", naming no method.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from phase2_assets.compute.methods import METHODS, Built, Memory, Method, Plan, Settings
from phase2_assets.compute.search import evaluation
from phase2_assets.compute.search.evaluation import SearchOutputError
from phase2_assets.compute.search.exact_search import float_topk

N_DOCS, N_QUERIES, DIM, BITS, K = 300, 12, 32, 64, 100
SETTINGS = Settings(pq_train_size=N_DOCS)


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    corpus, queries = _unit(rng, N_DOCS, DIM), _unit(rng, N_QUERIES, DIM)
    scores, ids = float_topk(queries, corpus, K)
    qrels = [{int(ids[i, 2]): 1.0, int(ids[i, 40]): 2.0} for i in range(N_QUERIES)]
    refs = evaluation.References(truth_ids=ids, truth_scores=scores, qrels=qrels, n_docs=N_DOCS)
    return corpus, queries, refs


def _corrupted(corrupt, *, may_return_fewer=False) -> Method:
    """The registered binary method, its real search output passed through ``corrupt``."""
    binary = type(METHODS["binary"])

    def search(self, built, queries, k, bits, settings):
        return corrupt(binary.search(self, built, queries, k, bits, settings))

    cls = type("Corrupted", (binary,), {"search": search, "may_return_fewer": may_return_fewer})
    return cls()


def _score(method, data):
    corpus, queries, refs = data
    built = method.build(corpus, BITS, SETTINGS)
    return evaluation.search_and_score(method, built, queries, refs, bits=BITS, settings=SETTINGS)


def test_the_real_binary_output_passes_and_is_scored(data):
    row = _score(_corrupted(lambda ids: ids), data)
    assert 0.0 < row["recall_at_10"] <= 1.0 and row["n_queries"] == N_QUERIES


def test_minus_one_everywhere_is_refused_naming_the_method(data):
    """Before: scored (recall_at_10 0.90 in a full run; here any number), no error."""
    with pytest.raises(SearchOutputError) as err:
        _score(_corrupted(lambda ids: np.full_like(ids, -1)), data)
    msg = str(err.value)
    assert "method 'binary' at 64 bits" in msg
    assert "-1 (no result)" in msg and "may_return_fewer" in msg
    assert "query row 0, column 0: -1" in msg


def test_one_row_repeated_k_times_is_refused(data):
    """Before: scored, with nDCG@10 above the ideal (each hit counted k times)."""
    with pytest.raises(SearchOutputError, match="returned 100 times for one query") as err:
        _score(_corrupted(lambda ids: np.repeat(ids[:, :1], ids.shape[1], axis=1)), data)
    assert "method 'binary' at 64 bits" in str(err.value)
    assert "query row 0, column 1" in str(err.value)


def test_a_duplicate_inside_one_row_is_refused(data):
    def twice(ids):
        ids = ids.copy()
        ids[5, 7] = ids[5, 3]
        return ids

    with pytest.raises(SearchOutputError, match=r"columns 3, 7.*query row 5, column 7"):
        _score(_corrupted(twice), data)


def test_ten_columns_when_a_hundred_were_asked_is_refused(data):
    """Before: recall_at_100 was computed over the 10 columns returned: 1.0 for a right top-10."""
    with pytest.raises(SearchOutputError, match=r"shape \(12, 10\), expected \(12, 100\)"):
        _score(_corrupted(lambda ids: ids[:, :10]), data)


def test_too_many_queries_or_a_flat_array_is_refused(data):
    with pytest.raises(SearchOutputError, match=r"expected \(12, 100\)"):
        _score(_corrupted(lambda ids: np.concatenate([ids, ids[:1]])), data)
    with pytest.raises(SearchOutputError, match="1-d array"):
        _score(_corrupted(lambda ids: ids.ravel()), data)
    with pytest.raises(SearchOutputError, match="a list, not a numpy array"):
        _score(_corrupted(lambda ids: ids.tolist()), data)


@pytest.mark.parametrize("value", [N_DOCS, 10**9, -2])
def test_an_id_outside_the_corpus_is_refused(data, value):
    """Before: an id >= n_docs scored as a miss (0.0 with no error); -2 the same."""

    def out_of_range(ids):
        ids = ids.copy()
        ids[4, 9] = value
        return ids

    with pytest.raises(SearchOutputError) as err:
        _score(_corrupted(out_of_range), data)
    msg = str(err.value)
    assert f"outside the corpus rows [0, {N_DOCS})" in msg
    assert f"query row 4, column 9: {value}" in msg


def test_a_float_array_with_nan_is_refused_naming_the_method(data):
    """Before: ``ValueError: cannot convert float NaN to integer``, no method named."""

    def with_nan(ids):
        ids = ids.astype(np.float64)
        ids[2, 6] = np.nan
        return ids

    with pytest.raises(SearchOutputError) as err:
        _score(_corrupted(with_nan), data)
    msg = str(err.value)
    assert "method 'binary' at 64 bits" in msg and "dtype float64" in msg
    assert "query row 2, column 6: nan" in msg
    # Whole floats are refused too: a ranking is integer corpus rows.
    with pytest.raises(SearchOutputError, match="dtype float32"):
        _score(_corrupted(lambda ids: ids.astype(np.float32)), data)


def test_the_error_is_a_value_error_and_names_no_bits_for_a_reference_method():
    refs = evaluation.References(
        truth_ids=np.array([[0, 1]]), truth_scores=np.array([[0.9, 0.8]]), qrels=[{}], n_docs=5
    )
    with pytest.raises(ValueError, match=r"^method 'float32': .*shape \(1, 1\)"):
        evaluation.method_row(
            METHODS["float32"], np.array([[0]]), refs, dim=8, bits=None, search_seconds=0.0
        )


# ---- a method that declares it may return fewer than k results ---------------------------------


class Fewer(Method):
    """A stand-in for an inverted-file or graph index: returns the exact top-k with the last
    ``missing[q]`` results of query q replaced by -1 padding."""

    name = "fewer_stub"
    budget = "bits"
    description = "test stub"
    may_return_fewer = True

    def __init__(self, truth, missing, *, hole=False):
        self.truth, self.missing, self.hole = truth, missing, hole

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bits / 8, 0)

    def build(self, corpus, bits, settings):
        return Built(None)

    def search(self, built, queries, k, bits, settings):
        ids = self.truth[:, :k].copy()
        for q, m in enumerate(self.missing):
            if m:
                ids[q, k - m :] = -1
        if self.hole:
            ids[0, 0], ids[0, k - 1] = -1, self.truth[0, 0]
        return ids


def _fewer_refs():
    truth = np.arange(20).reshape(2, 10)  # query 0: rows 0..9, query 1: rows 10..19
    scores = np.tile(np.linspace(1.0, 0.1, 10), (2, 1))
    qrels = [{9: 1.0}, {10: 1.0}]  # query 0's only relevant row is the one it misses
    return evaluation.References(truth_ids=truth, truth_scores=scores, qrels=qrels, n_docs=50)


def test_padding_from_a_method_that_may_return_fewer_is_scored_as_misses():
    refs = _fewer_refs()
    method = Fewer(refs.truth_ids, missing=[3, 0])  # query 0 returns 7 results, query 1 all 10
    row = evaluation.search_and_score(
        method, None, np.zeros((2, 4), np.float32), refs, bits=64, settings=Settings()
    )
    # recall_at_10 = (7/10 + 10/10) / 2; the truth has 10 columns, so recall_at_50/100 are @10.
    assert row["recall_at_10"] == pytest.approx(0.85)
    assert row["recall_at_50"] == pytest.approx(0.85)
    assert row["recall_at_100"] == pytest.approx(0.85)
    assert row["recall_at_1"] == 1.0 and row["recall_at_5"] == 1.0
    # Jaccard: query 0 {0..6} vs {0..9} = 7/10 (the padding is no member of the set).
    assert row["overlap_at_10"] == pytest.approx(0.85)
    # nDCG@10: query 0's relevant row 9 was not returned -> 0; query 1's at rank 1 -> 1.
    assert row["ndcg_at_10"] == pytest.approx(0.5)
    # Fidelity nDCG: query 0 loses the gains of ranks 8-10.
    disc = 1 / np.log2(np.arange(2, 12))
    gains = np.linspace(1.0, 0.1, 10)
    q0 = float(gains[:7] @ disc[:7]) / float(gains @ disc)
    assert row["ndcg_at_10_vs_float"] == pytest.approx((q0 + 1.0) / 2)
    assert not math.isnan(row["ndcg_at_10_vs_float"])


def test_padding_before_a_result_is_refused_even_from_such_a_method():
    refs = _fewer_refs()
    with pytest.raises(SearchOutputError, match=r"'fewer_stub' at 64 bits.*before a result"):
        evaluation.search_and_score(
            Fewer(refs.truth_ids, missing=[0, 0], hole=True),
            None,
            np.zeros((2, 4), np.float32),
            refs,
            bits=64,
            settings=Settings(),
        )


def test_no_registered_method_declares_it_may_return_fewer():
    """Every registered method searches exhaustively (flat faiss indexes with k <= ntotal, the
    exact Hamming scan, re-ranking of a shortlist): none pads with -1, so the checks refuse a -1
    from any of them. A method that can (IVF, HNSW) must say so."""
    assert [n for n, m in METHODS.items() if m.may_return_fewer] == []


# ---- every registered method's real output passes the checks ------------------------------------


def _registered():
    plan = Plan(bits=frozenset({16, BITS}), pq_bytes=frozenset({2, BITS // 8}))
    for name, method in sorted(METHODS.items()):
        for bits in (None,) if method.budget == "reference" else (BITS, 16):
            if method.applies(DIM, bits, plan):  # ITQ keeps at most d bits: 16 here
                yield pytest.param(name, bits, id=f"{name}-{bits or 'ref'}")
                break


@pytest.mark.parametrize(("name", "bits"), list(_registered()))
def test_every_registered_method_output_passes_the_checks(data, name, bits):
    """The checks refuse no real method's output (on a corpus of 300 passages, top-100), and
    the k each method is asked for is the ground truth's."""
    corpus, queries, refs = data
    method = METHODS[name]
    if method.requirement(N_DOCS, DIM, bits, SETTINGS) is not None:
        pytest.skip(method.requirement(N_DOCS, DIM, bits, SETTINGS))
    if name == "float32":  # the exact ranking itself, scored as reference_metrics does
        row = evaluation.method_row(
            method, refs.truth_ids, refs, dim=DIM, bits=None, search_seconds=0.0
        )
    else:
        built = method.build(corpus, bits, SETTINGS)
        row = evaluation.search_and_score(
            method, built, queries, refs, bits=bits, settings=SETTINGS
        )
    assert 0.0 <= row["recall_at_100"] <= 1.0
    assert row["ndcg_at_10_vs_float"] <= 1.0 + 1e-9
