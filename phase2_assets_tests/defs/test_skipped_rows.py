"""Skipped rows are in the outputs, not only in the run log (issue 24, item 8).

On a 100-passage collection PQ and OPQ cannot be built (k-means needs 256 training vectors).
Before, the reason was only in the run log: the results table and the report just lacked those
rows, and F2 read "not evaluated (no binary and PQ rows at the same bytes yet)"."""

from __future__ import annotations

import json

import polars as pl
import pytest

REASON = "k-means needs at least 256 training vectors"
BITS = (8, 16, 32, 64)  # the tiny study's bit lengths (and PQ sizes of 1, 2, 4, 8 bytes)


@pytest.fixture(scope="module")
def small_study(small_corpus_run):
    """The tiny study on 100 passages (every method, 4 bit lengths), every level materialised
    as ``phase2 run`` does, once for the session (conftest)."""
    assert all(r.success for r in small_corpus_run.runs)
    return small_corpus_run.data_dir / "results", small_corpus_run.runs


def test_the_skipped_rows_table_names_each_row_and_why(small_study):
    results, _ = small_study
    skipped = pl.read_parquet(results / "skipped_methods.parquet")
    assert skipped.columns == ["dataset", "model", "method", "bits", "reason"]
    assert skipped.select("dataset", "model", "method", "bits").rows() == [
        ("tiny", "tiny-bert", method, bits) for method in ("opq", "pq") for bits in BITS
    ]
    assert all(REASON in r and "the corpus has 100" in r for r in skipped["reason"])
    # The results table keeps numbers in every metric column: the skipped rows are not in it.
    table = pl.read_parquet(results / "retrieval_metrics.parquet")
    assert not set(table["method"]) & {"pq", "opq"}
    assert {"binary", "int8", "itq"} <= set(table["method"])
    assert table["recall_at_10"].null_count() == 0


def test_the_results_asset_records_the_skipped_rows(small_study):
    results, runs = small_study
    meta = next(
        ev.step_materialization_data.materialization.metadata
        for r in runs
        for ev in r.get_asset_materialization_events()
        if ev.asset_key.to_user_string() == "results/retrieval_metrics"
    )
    assert meta["skipped_rows"].value == 8
    assert meta["skipped_table"].value.endswith("results/skipped_methods.parquet")
    records = [r.data for r in meta["skipped"].records]
    assert {(r["method"], r["bits"]) for r in records} == {
        (method, bits) for method in ("pq", "opq") for bits in BITS
    }
    assert all(REASON in r["reason"] for r in records)


def test_f2_says_pq_was_skipped_and_why(small_study):
    results, _ = small_study
    switches = json.loads((results / "kill_switches.json").read_text())["switches"]
    f2 = next(s for s in switches if s["name"] == "F2")
    assert f2["state"] == "not evaluated"
    assert f2["why_not"].startswith(
        "no binary and PQ rows at the same bytes: PQ was skipped at 4 benchmarks "
        "(tiny × tiny-bert at 8, 16, 32, 64 bits: PQ's k-means needs at least 256 training "
        "vectors"
    )
    assert "yet" not in f2["why_not"]
    verdict = json.loads((results / "verdict.json").read_text())
    assert any(
        r.startswith("F2 not evaluated (no binary and PQ rows") and "PQ was skipped" in r
        for r in verdict["reasons"]
    )


def test_the_report_has_a_skipped_section(small_study):
    results, _ = small_study
    html = (results / "report.html").read_text()
    assert "<h2>Skipped</h2>" in html
    section = html.split("<h2>Skipped</h2>", 1)[1].split("<h2>", 1)[0]
    assert "8 planned rows not in the results table" in section
    for cell in ("tiny-bert", "opq", "pq", REASON):
        assert cell in section.replace("&#x27;", "'")
    assert "PQ was skipped at 4 benchmarks" in html  # F2's row of the kill-switch table
    assert "skipped_methods.parquet" in html
