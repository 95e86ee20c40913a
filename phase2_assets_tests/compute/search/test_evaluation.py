"""The results table's shape: the same columns and types with or without rows."""

from phase2_assets.compute.search import evaluation


def test_an_empty_results_table_is_typed_like_a_full_one():
    """Before: an empty study-wide table had every column Float64, so the BFI's filter
    method == "binary" raised polars' "cannot compare string with numeric type" after an
    upstream failure, a misleading second error."""
    import polars as pl

    from phase2_assets.compute.analysis import decisions

    empty = evaluation.empty_results()
    assert list(empty.columns) == evaluation.RESULT_COLUMNS
    assert empty.schema["method"] == pl.String and empty.schema["bits"] == pl.Int64
    assert empty.filter(pl.col("method") == "binary").height == 0
    assert decisions.binary_vs_pq(empty).height == 0
    assert evaluation.rows_to_table([], "d", "m").schema == empty.schema
