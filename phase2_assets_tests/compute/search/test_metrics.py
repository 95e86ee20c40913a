"""Retrieval metrics on tiny cases computed by hand (and the evaluation row built from them)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from phase2_assets.compute.methods import METHODS
from phase2_assets.compute.search import evaluation, metrics

PRED = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
TRUTH = np.array([[0, 2, 5, 6], [8, 9, 4, 5]])


# ---- recall ------------------------------------------------------------------------------------


def test_recall_single_query_hand_values():
    pred, truth = PRED[:1], TRUTH[:1]
    assert metrics.recall_at_k(pred, truth, 1) == 1.0  # {0} vs {0}
    assert metrics.recall_at_k(pred, truth, 2) == 0.5  # {0,1} vs {0,2}
    assert metrics.recall_at_k(pred, truth, 3) == pytest.approx(2 / 3)  # {0,1,2} vs {0,2,5}
    assert metrics.recall_at_k(pred, truth, 4) == 0.5  # {0,1,2,3} vs {0,2,5,6}


def test_recall_is_averaged_over_queries():
    # query 2: @1 {4} vs {8} -> 0; @2 {4,5} vs {8,9} -> 0; @4 {4,5,6,7} vs {8,9,4,5} -> 1/2
    assert metrics.recall_at_k(PRED, TRUTH, 1) == 0.5
    assert metrics.recall_at_k(PRED, TRUTH, 2) == 0.25
    assert metrics.recall_at_k(PRED, TRUTH, 4) == 0.5


def test_recall_order_within_top_k_does_not_matter():
    assert metrics.recall_at_k(np.array([[3, 2, 1, 0]]), np.array([[0, 1, 2, 3]]), 4) == 1.0
    assert metrics.recall_at_k(np.array([[3, 2, 1, 0]]), np.array([[0, 1, 2, 3]]), 2) == 0.0


def test_recall_k_larger_than_columns_uses_available_columns():
    assert metrics.recall_at_k(PRED[:1], TRUTH[:1], 10) == 0.5


def test_recall_query_count_mismatch_raises():
    with pytest.raises(ValueError, match="query counts differ"):
        metrics.recall_at_k(PRED, TRUTH[:1], 2)


def test_recall_counts_minus_one_as_a_miss_never_a_hit():
    """Before: 0.9 (``intersect1d(..., assume_unique=True)`` on ten copies of -1)."""
    assert metrics.recall_at_k(np.full((1, 10), -1), np.arange(10)[None], 10) == 0.0
    padded = np.array([[0, 1, 2, -1, -1]])
    assert metrics.recall_at_k(padded, np.arange(5)[None], 5) == pytest.approx(3 / 5)


def test_recall_refuses_a_corpus_row_twice_in_one_row():
    """Before: one right row repeated ten times scored 0.1 and more (assume_unique)."""
    with pytest.raises(ValueError, match=r"corpus row 3 appears 10 times in query row 0"):
        metrics.recall_at_k(np.full((1, 10), 3), np.arange(10)[None], 10)
    with pytest.raises(ValueError, match=r"corpus row 4 appears 2 times in query row 1"):
        metrics.recall_at_k(np.array([[0, 1, 2], [4, 5, 4]]), np.array([[0, 1, 2], [4, 5, 6]]), 3)


def test_recall_refuses_fewer_columns_than_the_truth_holds_for_k():
    """Before: k was shrunk to the prediction's 10 columns: recall_at_100 1.0 for a right top-10."""
    truth = np.arange(200).reshape(2, 100)
    with pytest.raises(ValueError, match="prediction has 10 columns, the exact top-100 needs"):
        metrics.recall_at_k(truth[:, :10], truth, 100)
    # A truth with fewer columns than k (a corpus of fewer than k passages) still sets k.
    assert metrics.recall_at_k(truth[:, :4], truth[:, :4], 100) == 1.0


def test_recall_refuses_floats_and_ids_below_minus_one():
    with pytest.raises(ValueError, match="must be integer corpus rows, got dtype float64"):
        metrics.recall_at_k(np.array([[0.0, np.nan]]), np.array([[0, 1]]), 2)
    with pytest.raises(ValueError, match="id -2 at query row 0, column 1 is not a corpus row"):
        metrics.recall_at_k(np.array([[0, -2]]), np.array([[0, 1]]), 2)


# ---- overlap (Jaccard) ---------------------------------------------------------------------------


def test_overlap_is_jaccard():
    pred, truth = PRED[:1], TRUTH[:1]
    assert metrics.overlap_at_k(pred, truth, 2) == pytest.approx(1 / 3)  # |{0}| / |{0,1,2}|
    assert metrics.overlap_at_k(pred, truth, 3) == pytest.approx(2 / 4)  # {0,2} / {0,1,2,5}
    assert metrics.overlap_at_k(pred, truth, 4) == pytest.approx(2 / 6)  # {0,2} / {0,1,2,3,5,6}
    # mean with query 2 at k=4: {4,5} / {4,5,6,7,8,9} = 2/6
    assert metrics.overlap_at_k(PRED, TRUTH, 4) == pytest.approx(1 / 3)
    # Jaccard, not recall: at k=3 recall is 2/3 but Jaccard is 1/2.
    assert metrics.overlap_at_k(pred, truth, 3) != metrics.recall_at_k(pred, truth, 3)


def test_overlap_refuses_duplicates_and_leaves_padding_out_of_the_set():
    with pytest.raises(ValueError, match="corpus row 0 appears 2 times"):
        metrics.overlap_at_k(np.array([[0, 0, 1]]), np.array([[0, 1, 2]]), 3)
    # {0, 1} vs {0, 1, 2}: the -1 is no member of the top-3 set.
    assert metrics.overlap_at_k(np.array([[0, 1, -1]]), np.array([[0, 1, 2]]), 3) == 2 / 3


# ---- task nDCG -----------------------------------------------------------------------------------


def test_ndcg_graded_relevance_by_hand():
    # Ranking [10, 11, 12] has relevances 3, 0, 2; doc 13 (rel 1) is judged but not retrieved.
    pred = np.array([[10, 11, 12]])
    qrels = [{10: 3.0, 12: 2.0, 13: 1.0}]
    dcg = 3 / math.log2(2) + 0 / math.log2(3) + 2 / math.log2(4)  # = 4
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert dcg == 4.0
    assert metrics.ndcg_at_k(pred, qrels, 3) == pytest.approx(dcg / idcg)
    assert metrics.ndcg_at_k(pred, qrels, 3) == pytest.approx(0.840008, abs=1e-6)


def test_ndcg_cutoff_applies_to_ranking_and_ideal():
    qrels = [{10: 3.0, 12: 2.0, 13: 1.0}]
    assert metrics.ndcg_at_k(np.array([[10, 11, 12]]), qrels, 1) == 1.0
    assert metrics.ndcg_at_k(np.array([[12, 10, 11]]), qrels, 1) == pytest.approx(2 / 3)
    # k=2: dcg = 2 + 3/log2(3); ideal = 3 + 2/log2(3)
    expected = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3))
    assert metrics.ndcg_at_k(np.array([[12, 10, 11]]), qrels, 2) == pytest.approx(expected)


def test_ndcg_skips_queries_without_positive_judgement():
    pred = np.array([[10, 11, 12], [1, 2, 3], [5, 6, 7]])
    qrels = [
        {10: 3.0, 12: 2.0, 13: 1.0},  # 0.840008
        {1: 0.0, 2: 0.0},  # only non-relevant judgements: skipped, not counted as 0
        {6: 1.0},  # rank 2: 1/log2(3)
    ]
    first = 4 / (3 + 2 / math.log2(3) + 0.5)
    third = 1 / math.log2(3)
    assert metrics.ndcg_at_k(pred, qrels, 3) == pytest.approx((first + third) / 2)


def test_ndcg_negative_judgement_gains_nothing():
    # A judged -1 at rank 1 must not lower DCG below the gain of rank 2.
    got = metrics.ndcg_at_k(np.array([[1, 2]]), [{1: -1.0, 2: 1.0}], 2)
    assert got == pytest.approx(1 / math.log2(3))


def test_ndcg_all_queries_skipped_is_nan():
    assert math.isnan(metrics.ndcg_at_k(np.array([[1, 2]]), [{1: 0.0}], 2))


def test_ndcg_qrels_length_mismatch_raises():
    with pytest.raises(ValueError):
        metrics.ndcg_at_k(np.array([[1, 2]]), [{1: 1.0}, {2: 1.0}], 2)


def test_ndcg_refuses_a_row_repeated_above_the_ideal():
    """Before: 1 + 1/log2(3) + 1/2 = 2.13, nDCG above the ideal of 1."""
    with pytest.raises(ValueError, match=r"ndcg_at_3: .*corpus row 1 appears 3 times"):
        metrics.ndcg_at_k(np.array([[1, 1, 1]]), [{1: 1.0}], 3)


def test_ndcg_gives_padding_no_gain():
    # qrels keyed -1 cannot make the padding relevant.
    got = metrics.ndcg_at_k(np.array([[-1, 1]]), [{-1: 5.0, 1: 1.0}], 2)
    assert got == pytest.approx((1 / math.log2(3)) / (5.0 + 1 / math.log2(3)))


# ---- fidelity nDCG against the float ranking -----------------------------------------------------


def test_ndcg_vs_float_by_hand():
    truth_ids = np.array([[5, 6, 7]])
    truth_scores = np.array([[0.9, 0.5, -0.2]])  # the negative similarity is clipped to gain 0
    pred = np.array([[6, 8, 5]])  # gains 0.5, 0 (not in the float top-3), 0.9
    dcg = 0.5 / math.log2(2) + 0.0 / math.log2(3) + 0.9 / math.log2(4)
    idcg = 0.9 / math.log2(2) + 0.5 / math.log2(3) + 0.0 / math.log2(4)
    got = metrics.ndcg_vs_float(pred, truth_ids, truth_scores, 3)
    assert got == pytest.approx(dcg / idcg)
    assert got == pytest.approx(0.781594, abs=1e-6)


def test_ndcg_vs_float_skips_queries_with_no_positive_similarity():
    truth_ids = np.array([[5, 6, 7], [1, 2, 3]])
    truth_scores = np.array([[0.9, 0.5, -0.2], [-0.1, -0.2, -0.3]])
    pred = np.array([[6, 8, 5], [9, 8, 7]])
    one = metrics.ndcg_vs_float(pred[:1], truth_ids[:1], truth_scores[:1], 3)
    assert metrics.ndcg_vs_float(pred, truth_ids, truth_scores, 3) == pytest.approx(one)


def test_ndcg_vs_float_refuses_duplicates_and_too_few_columns():
    truth_ids, truth_scores = np.array([[5, 6, 7]]), np.array([[0.9, 0.5, 0.2]])
    with pytest.raises(ValueError, match="corpus row 5 appears 3 times"):  # before: 1.9
        metrics.ndcg_vs_float(np.array([[5, 5, 5]]), truth_ids, truth_scores, 3)
    with pytest.raises(ValueError, match="prediction has 2 columns, the exact top-3 needs 3"):
        metrics.ndcg_vs_float(np.array([[5, 6]]), truth_ids, truth_scores, 3)
    padded = metrics.ndcg_vs_float(np.array([[5, -1, -1]]), truth_ids, truth_scores, 3)
    assert padded == pytest.approx(0.9 / (0.9 + 0.5 / math.log2(3) + 0.2 / 2))


def test_identical_predictions_score_perfectly():
    rng = np.random.default_rng(0)
    truth_ids = np.stack([rng.permutation(200)[:12] for _ in range(5)])
    truth_scores = np.sort(rng.uniform(0.1, 0.9, size=(5, 12)), axis=1)[:, ::-1]
    qrels = [{int(truth_ids[i, 3]): 1.0} for i in range(5)]
    row = metrics.retrieval_metrics(truth_ids.copy(), truth_ids, truth_scores, qrels)
    for k in metrics.RECALL_KS:
        assert row[f"recall_at_{k}"] == 1.0
    assert row["overlap_at_10"] == 1.0
    assert row["ndcg_at_10_vs_float"] == pytest.approx(1.0)
    assert row["ndcg_at_10"] == pytest.approx(1 / math.log2(5))  # relevant doc at rank 4
    # and a reversed prediction is not perfect on fidelity nDCG
    rev = metrics.ndcg_vs_float(truth_ids[:, :10][:, ::-1], truth_ids, truth_scores, 10)
    assert rev < 0.99


# ---- evaluation rows ---------------------------------------------------------------------------


def test_judgements_by_row_rekeys_to_row_order():
    qrels = pl.DataFrame(
        {
            "query_id": ["qb", "qa", "qa", "qz"],
            "doc_id": ["d3", "d1", "dx", "d1"],
            "score": [2, 1, 1, 1],
        }
    )
    j = evaluation.judgements_by_row(["d1", "d2", "d3"], ["qa", "qb"], qrels)
    # unknown doc 'dx' and unknown query 'qz' dropped; sorted by (query_row, doc_row)
    assert j.rows() == [(0, 0, 1), (1, 2, 2)]
    assert evaluation.qrels_lists(j, 3) == [{0: 1.0}, {2: 2.0}, {}]


def test_method_row_memory_accounting_for_binary():
    truth_ids = np.array([[0, 1, 2]])
    refs = evaluation.References(
        truth_ids=truth_ids, truth_scores=np.array([[0.9, 0.8, 0.7]]), qrels=[{0: 1.0}], n_docs=1000
    )
    row = evaluation.method_row(
        METHODS["binary"], truth_ids, refs, dim=384, bits=256, search_seconds=0.5
    )
    assert row["bits"] == 256
    assert row["bytes_per_vector"] == 32.0
    assert row["fixed_overhead_bytes"] == 4 * 256 * 384
    assert row["index_bytes_total"] == 32 * 1000 + 4 * 256 * 384
    assert row["recall_at_1"] == 1.0
    table = evaluation.rows_to_table([row], "scifact", "minilm")
    assert table.columns == evaluation.RESULT_COLUMNS
    assert table["dataset"].to_list() == ["scifact"]


def test_rows_to_table_empty_keeps_columns():
    table = evaluation.rows_to_table([], "scifact", "minilm")
    assert table.height == 0
    assert table.columns == evaluation.RESULT_COLUMNS
