"""The study's file stores: a table that replaces a longer one says so."""

from __future__ import annotations

import dagster as dg
import polars as pl

from phase2_assets.defs.storage.io_managers import StudyStorage


def test_a_table_that_replaces_a_longer_one_says_so(tmp_path):
    rows = {"n": 5}

    @dg.asset(io_manager_key="parquet_io_manager", key=["results", "table"])
    def table() -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(rows["n"]))})

    resources = {"parquet_io_manager": StudyStorage(base_dir=str(tmp_path), format="parquet")}
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([table], resources=resources, instance=instance).success
    rows["n"] = 2
    result = dg.materialize([table], resources=resources, instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("results__table")[0].metadata
    assert meta["rows_before"].value == 5 and meta["rows_dropped"].value == 3
    warnings = [
        e.message
        for e in instance.all_logs(result.run_id)
        if e.level >= 30 and "the new table has 2 rows" in e.message
    ]
    assert warnings, "no warning in the run log"
    assert pl.read_parquet(tmp_path / "results" / "table.parquet").height == 2
    rows["n"] = 4  # more rows than before: no warning, no rows_dropped
    result = dg.materialize([table], resources=resources, instance=instance)
    meta = result.asset_materializations_for_node("results__table")[0].metadata
    assert "rows_dropped" not in meta
