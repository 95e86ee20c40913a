"""What the instance remembers of a study's checks and timings, as plain tables.

The target bands of E2 and E4 are read from the sanity checks of the codes and the ground truth,
which live in the instance's event log, not in any asset's value. Only this study's results
count: a run tagged with another study's name (two studies on one instance share asset keys and
partition names) is left out; untagged runs (an ad-hoc materialisation, ``dagster.materialize``)
are kept.
"""

from __future__ import annotations

from functools import cache

import dagster as dg
import polars as pl

from phase2_assets.defs.graph.jobs import STUDY_TAG

CHECK_COLUMNS = {"check": pl.String, "partition": pl.String, "passed": pl.Boolean}


def _ours(instance: dg.DagsterInstance, study: str):
    @cache
    def ours(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is None or run.tags.get(STUDY_TAG, study) == study

    return ours


def latest_checks(
    instance: dg.DagsterInstance, asset: str, checks: list[str], study: str, limit: int = 10000
) -> pl.DataFrame:
    """The newest evaluation of each (check, partition) of ``asset``: whether it passed."""
    ours = _ours(instance, study)
    rows: dict[tuple[str, str], tuple[int, bool]] = {}
    for name in checks:
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit):
            evaluation = record.evaluation  # None, or only planned, until the check has run
            if not isinstance(evaluation, dg.AssetCheckEvaluation) or not ours(record.run_id):
                continue
            where = (name, record.partition or "")
            if where not in rows or record.id > rows[where][0]:
                rows[where] = (record.id, bool(evaluation.passed))
    return pl.DataFrame(
        [{"check": c, "partition": p, "passed": ok} for (c, p), (_, ok) in sorted(rows.items())],
        schema=CHECK_COLUMNS,
    )


def latest_seconds(
    instance: dg.DagsterInstance, asset: str, study: str, field: str = "seconds"
) -> float | None:
    """The ``field`` seconds of the newest materialisation of each partition, summed; None when
    no materialisation recorded it."""
    ours = _ours(instance, study)
    newest: dict[str | None, tuple[int, float]] = {}
    result = instance.fetch_materializations(dg.AssetKey(asset), limit=10000)
    for record in result.records:
        mat = record.asset_materialization
        if mat is None or field not in mat.metadata or not ours(record.run_id):
            continue
        if mat.partition not in newest or record.storage_id > newest[mat.partition][0]:
            newest[mat.partition] = (record.storage_id, float(mat.metadata[field].value))
    return sum(s for _, s in newest.values()) if newest else None
