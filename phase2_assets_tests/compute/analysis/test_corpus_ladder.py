"""The corpus-size ladder: nested rungs that keep every judged passage, each scored against the
exact top-k of its own subset, and the per-tenfold slope that summarises it."""

import numpy as np
import polars as pl
import pytest

from phase2_assets.compute.analysis import corpus_ladder
from phase2_assets.compute.methods import METHODS, Settings


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_rungs_are_nested_keep_every_judged_row_and_end_with_the_whole_corpus():
    judged = np.array([3, 97, 50])
    rungs = corpus_ladder.rungs(100, [10, 40, 100, 250, 2], judged, seed=1)
    # 2 is below the judged count and 100/250 are not below the corpus: left out.
    assert [len(r) for r in rungs] == [10, 40, 100]
    for small, big in zip(rungs, rungs[1:], strict=False):
        assert set(small) <= set(big)
    for rung in rungs:
        assert set(judged) <= set(rung)
        assert np.all(np.diff(rung) > 0)  # sorted, no repeats
    assert np.array_equal(rungs[-1], np.arange(100))
    again = corpus_ladder.rungs(100, [10, 40], judged, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(again, rungs, strict=False))
    other = corpus_ladder.rungs(100, [10, 40], judged, seed=2)
    assert not np.array_equal(other[0], rungs[0])


def test_judged_rows_outside_the_corpus_are_refused():
    with pytest.raises(ValueError, match="outside the corpus of 10 passages"):
        corpus_ladder.rungs(10, [5], np.array([12]), seed=0)


def test_qrels_follow_their_passages_into_the_subset():
    rows = np.array([2, 5, 9])
    assert corpus_ladder._subset_qrels([{5: 1.0, 7: 2.0}, {9: 3.0, 2: 1.0}, {}], rows) == [
        {1: 1.0},
        {2: 3.0, 0: 1.0},
        {},
    ]


def test_identical_codes_on_every_rung_score_recall_one_and_the_slope_is_zero():
    """float16 of vectors that are exactly representable in float16 is the float ranking
    itself, so every rung's recall_at_10 is 1.0 whatever the subset."""
    rng = np.random.default_rng(0)
    corpus = unit(rng.standard_normal((600, 16))).astype(np.float16).astype(np.float32)
    corpus = unit(corpus).astype(np.float16).astype(np.float32)
    queries = unit(rng.standard_normal((20, 16)))
    qrels = [{i: 1.0} for i in range(20)]
    rows, skipped = corpus_ladder.ladder(
        corpus, queries, qrels, [(METHODS["float16"], None)], sizes=[100, 300],
        seed=0, settings=Settings(), k=10,
    )  # fmt: skip
    assert skipped == {}
    assert [r["corpus_docs"] for r in rows] == [100, 300, 600]
    assert all(r["recall_at_10"] == 1.0 for r in rows)
    trend = corpus_ladder.trend(corpus_ladder.table(rows, "d", "m"))
    assert trend["recall_change_per_tenfold"].to_list() == [0.0]


def test_binary_recall_at_fixed_bits_falls_as_distractors_are_added():
    """The same 64-bit codes rank against more passages on each rung: recall_at_10 on the whole
    corpus is below the smallest rung's, and the slope per tenfold is negative."""
    rng = np.random.default_rng(3)
    corpus = unit(rng.standard_normal((20000, 32)))
    queries = unit(rng.standard_normal((50, 32)))
    rows, _ = corpus_ladder.ladder(
        corpus, queries, [{} for _ in range(50)], [(METHODS["binary"], 64)],
        sizes=[200, 2000], seed=0, settings=Settings(), k=10,
    )  # fmt: skip
    recall = [r["recall_at_10"] for r in rows]
    assert [r["corpus_docs"] for r in rows] == [200, 2000, 20000]
    assert recall[0] > recall[-1]
    trend = corpus_ladder.trend(corpus_ladder.table(rows, "d", "m"))
    (slope,) = trend["recall_change_per_tenfold"].to_list()
    assert slope < 0
    # The slope is the least-squares fit over the three rungs (x = 2.3, 3.3, 4.3).
    x = np.log10([200, 2000, 20000])
    assert slope == pytest.approx(np.polyfit(x, recall, 1)[0], abs=1e-12)


def test_a_method_that_cannot_be_built_on_a_small_rung_is_skipped_with_why():
    """PQ's k-means needs 256 training vectors: skipped on the 100-passage rung (with faiss's
    reason), built and scored on the whole 400-passage corpus."""
    rng = np.random.default_rng(1)
    corpus = unit(rng.standard_normal((400, 16)))
    queries = unit(rng.standard_normal((5, 16)))
    rows, skipped = corpus_ladder.ladder(
        corpus, queries, [{} for _ in range(5)], [(METHODS["pq"], 64)], sizes=[100],
        seed=0, settings=Settings(), k=10,
    )  # fmt: skip
    assert skipped == {("pq", 64, 100): METHODS["pq"].requirement(100, 16, 64, Settings())}
    assert "needs at least 256 training vectors" in skipped[("pq", 64, 100)]
    assert [(r["method"], r["bits"], r["corpus_docs"]) for r in rows] == [("pq", 64, 400)]


def test_a_single_rung_has_no_trend():
    table = corpus_ladder.table(
        [{"method": "binary", "bits": 64, "corpus_docs": 50, "recall_at_10": 0.5,
          "ndcg_at_10": 0.4, "n_queries": 3}], "d", "m",
    )  # fmt: skip
    assert corpus_ladder.trend(table).height == 0
    assert corpus_ladder.trend(table.clear()).schema["recall_change_per_tenfold"] == pl.Float64


def test_the_pairs_left_with_one_rung_are_named_with_their_size():
    def rows(docs):
        return [{"method": "binary", "bits": 256, "corpus_docs": n, "recall_at_10": 0.5,
                 "ndcg_at_10": 0.4, "n_queries": 3} for n in docs]  # fmt: skip

    table = pl.concat(
        [corpus_ladder.table(rows([1000, 5183]), "scifact", "m"),
         corpus_ladder.table(rows([5000]), "msmarco-dl19", "m")]
    )  # fmt: skip
    said = corpus_ladder.single_rung(table)
    assert said.startswith("No trend on msmarco-dl19 × m (5,000 passages): one rung only")
    assert "scifact" not in said
    assert corpus_ladder.single_rung(corpus_ladder.table(rows([1000, 5183]), "s", "m")) is None
