"""F2 says why it cannot be judged when the PQ rows were skipped (issue 24, item 8).

Before: on a corpus too small for PQ's k-means, F2 read "no binary and PQ rows at the same bytes
yet", as if PQ had not run yet, and the reason was only in the run log."""

from __future__ import annotations

import polars as pl

from phase2_assets.compute.analysis import decisions
from phase2_assets.compute.search import evaluation

REASON = (
    "PQ's k-means needs at least 256 training vectors (256 centroids per sub-quantiser); "
    "the corpus has 100"
)


def _results(methods_bits: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"dataset": "tiny", "model": "bert", "method": m, "bits": b, "recall_at_10": r}
            for m, b, r in methods_bits
        ]
    )


def _skipped(*rows) -> pl.DataFrame:
    return evaluation.skipped_table({("tiny", "bert", m, b): why for m, b, why in rows})


def test_f2_names_the_skipped_pq_rows_and_why():
    results = _results([("binary", 64, 0.2), ("binary", 32, 0.1), ("float32", 1024, 1.0)])
    skipped = _skipped(
        ("pq", 32, REASON), ("pq", 64, REASON), ("opq", 64, "OPQ's k-means needs ...")
    )
    f2 = decisions.f2_pq_dominance(results, 0.5, skipped)
    assert f2.state == "not evaluated"
    assert f2.why_not == (
        f"no binary and PQ rows at the same bytes: PQ was skipped at 2 benchmarks "
        f"(tiny × bert at 32, 64 bits: {REASON})"
    )
    assert f2.numbers["pq_rows_skipped"] == 2


def test_f2_without_skipped_rows_still_says_yet():
    results = _results([("binary", 64, 0.2)])
    for skipped in (None, _skipped(), _skipped(("opq", 64, "OPQ's k-means needs ..."))):
        f2 = decisions.f2_pq_dominance(results, 0.5, skipped)
        assert f2.why_not == "no binary and PQ rows at the same bytes yet"
        assert "pq_rows_skipped" not in f2.numbers


def test_f2_judged_on_the_pq_rows_there_are_counts_the_skipped_ones():
    results = _results([("binary", 64, 0.3), ("pq", 64, 0.5), ("binary", 8, 0.05)])
    f2 = decisions.f2_pq_dominance(results, 0.5, _skipped(("pq", 8, REASON)))
    assert f2.evaluated and f2.why_not == "" and f2.numbers["benchmarks"] == 1
    assert f2.numbers["pq_rows_skipped"] == 1


def test_many_pairs_are_listed_up_to_a_limit():
    skipped = evaluation.skipped_table({(f"d{i}", "bert", "pq", 64): REASON for i in range(5)})
    note = decisions.pq_skipped_note(skipped)
    assert note.startswith("PQ was skipped at 5 benchmarks (d0 × bert at 64 bits: ")
    assert note.endswith("; and 2 more)")
