"""The report lists the skipped rows and says why a switch was not judged (issue 24, item 8).

Before: the report had no trace of the rows that were skipped, and its kill-switch table did not
show why a switch was "not evaluated"."""

from __future__ import annotations

import polars as pl

from phase2_assets.compute.analysis import decisions
from phase2_assets.compute.report import page, sections
from phase2_assets.compute.search import evaluation

REASON = (
    "PQ's k-means needs at least 256 training vectors (256 centroids per sub-quantiser); "
    "the corpus has 100"
)


def _results() -> pl.DataFrame:
    rows = [
        ("float32", 1024, 1.0),
        ("binary", 32, 0.1),
        ("binary", 64, 0.2),
    ]
    table = pl.DataFrame(
        [
            {"dataset": "tiny", "model": "bert", "method": m, "bits": b, "recall_at_10": r}
            for m, b, r in rows
        ]
    )
    return evaluation.conform(table).with_columns(
        pl.col("ndcg_at_10").fill_null(0.5).cast(pl.Float64),
        pl.col("bytes_per_vector").fill_null(8.0).cast(pl.Float64),
    )


def _skipped() -> pl.DataFrame:
    return evaluation.skipped_table(
        {("tiny", "bert", "pq", 32): REASON, ("tiny", "bert", "opq", 64): "OPQ's k-means ..."}
    )


def _sections(skipped):
    empty = pl.DataFrame()
    return sections.report_sections(_results(), empty, empty, empty, [], skipped=skipped)


def test_the_skipped_section_lists_dataset_model_method_bits_and_reason():
    found = [s for s in _sections(_skipped()) if s[0] == "Skipped"]
    assert len(found) == 1
    _, caption, table = found[0]
    assert "2 planned rows not in the results table" in caption
    assert "skipped_methods.parquet" in caption
    assert table.columns == ["dataset", "model", "method", "bits", "reason"]
    assert table.rows() == [
        ("tiny", "bert", "opq", 64, "OPQ's k-means ..."),
        ("tiny", "bert", "pq", 32, REASON),
    ]


def test_no_skipped_section_when_nothing_was_skipped():
    for skipped in (None, evaluation.skipped_table({})):
        assert not [s for s in _sections(skipped) if s[0] == "Skipped"]


def test_the_page_shows_the_section_and_why_f2_was_not_judged():
    f2 = decisions.f2_pq_dominance(_results(), 0.5, _skipped())
    html = page.render(
        title="t",
        verdict={"colour": "YELLOW", "reasons": []},
        switches=[f2.to_dict()],
        sections=_sections(_skipped()),
    )
    assert "<h2>Skipped</h2>" in html
    assert "why not evaluated" in html
    assert "PQ was skipped at 1 benchmark (tiny × bert at 32 bits: PQ&#x27;s k-means" in html
    assert html.count("k-means needs at least 256 training vectors") == 2  # switch + section
