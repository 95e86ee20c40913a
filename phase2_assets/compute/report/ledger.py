"""The GPU budget ledger: device seconds per experiment, summed and held against the plan.

Every embedding (E1) and adapter (X3) materialisation records its device and seconds; the plan
caps GPU time per experiment (E1 <= 25 GPU-hours, X3 <= 5) and for the whole of Phase 2 (<= 65).
CPU seconds are ledgered beside them, so a CPU-only study still shows what it cost.

What counts against a budget is the cost of the results as they stand: the latest
materialisation of each (asset, partition). Counting every materialisation made the ledger, and
with it the memo and the report, change each time the same study ran again on its folder (1, then
2 materialisations of the adapter) and charged the budget twice for one result. What reruns spent
on top is kept beside it (``spent_gpu_hours``, ``spent_cpu_hours``, every materialisation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

PHASE = "Phase-2"
COLUMNS = {
    "experiment": pl.String,
    "materialisations": pl.Int64,
    "gpu_hours": pl.Float64,
    "cpu_hours": pl.Float64,
    "spent_gpu_hours": pl.Float64,
    "spent_cpu_hours": pl.Float64,
    "budget_gpu_hours": pl.Float64,
    "budget_used": pl.Float64,
    "within_budget": pl.Boolean,
}


@dataclass(frozen=True)
class DeviceRecord:
    experiment: str  # "E1", "X3", ...
    asset: str
    partition: str | None
    device: str  # "cuda:0", "cpu", ...
    seconds: float  # wall seconds on that device
    cpu_seconds: float = 0.0  # process CPU time
    order: int = 0  # the event's place in the instance's log: larger is newer


def _hours(records: list[DeviceRecord]) -> tuple[float, float]:
    gpu = sum(r.seconds for r in records if r.device.startswith("cuda")) / 3600
    return gpu, sum(r.cpu_seconds for r in records) / 3600


def latest(records: list[DeviceRecord]) -> list[DeviceRecord]:
    """The newest record of each (asset, partition): what the current results cost."""
    newest: dict[tuple[str, str | None], DeviceRecord] = {}
    for r in sorted(records, key=lambda r: r.order):
        newest[r.asset, r.partition] = r
    return list(newest.values())


def _row(experiment: str, records: list[DeviceRecord], budget: float | None) -> dict:
    current = latest(records)
    gpu, cpu = _hours(current)
    spent_gpu, spent_cpu = _hours(records)
    return {
        "experiment": experiment,
        "materialisations": len(current),
        "gpu_hours": gpu,
        "cpu_hours": cpu,
        "spent_gpu_hours": spent_gpu,
        "spent_cpu_hours": spent_cpu,
        "budget_gpu_hours": budget,
        "budget_used": gpu / budget if budget else None,
        "within_budget": gpu <= budget if budget is not None else None,
    }


def ledger(
    records: Iterable[DeviceRecord], budgets: dict[str, float], phase_cap: float
) -> pl.DataFrame:
    """One row per experiment with a budget or a record, then the Phase-2 total against its cap."""
    records = list(records)
    for r in records:
        if r.seconds < 0 or r.cpu_seconds < 0:
            raise ValueError(f"negative seconds in the ledger record of {r.asset} [{r.partition}]")
    names = sorted(set(budgets) | {r.experiment for r in records})
    rows = [_row(e, [r for r in records if r.experiment == e], budgets.get(e)) for e in names]
    rows.append(_row(PHASE, records, phase_cap))
    return pl.DataFrame(rows, schema=COLUMNS)


# What the memo and the report show of the ledger: the columns that are the same on every run of
# the same config. The hours are measured wall and CPU time, which differ from run to run; they
# stay in budget_ledger.parquet and the budget_ledger asset's metadata, so the memo and report
# are the same bytes on every run.
SHOWN = ["experiment", "materialisations", "budget_gpu_hours", "within_budget"]
HOURS_NOTE = (
    "Measured GPU- and CPU-hours differ from run to run, so they are not copied here: they are in "
    "results/budget_ledger.parquet and on the budget_ledger asset in the UI."
)


def over_budget(table: pl.DataFrame) -> list[str]:
    """Experiments (or the phase) whose GPU hours exceed their budget."""
    return table.filter(pl.col("within_budget") == False)["experiment"].to_list()  # noqa: E712
