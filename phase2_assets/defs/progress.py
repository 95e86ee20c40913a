"""Progress lines in the run log for steps that take minutes at 500K scale.

The computation reports (done, total) after every block; the run log gets a line for the first
block (the rate, early), then when a tenth more of the work is done or a minute has passed, and
always the last, so a 2M-block search
prints about ten lines instead of thousands, and a stuck step is visible as silence.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import dagster as dg

from phase2_assets.compute.methods import Settings


def log_progress(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    what: str,
    unit: str = "rows",
    *,
    every_seconds: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[int, int], None]:
    start = last_time = clock()
    last_tenth, last_done = -1, 0

    def report(done: int, total: int) -> None:
        nonlocal start, last_time, last_tenth, last_done
        now = clock()
        if done < last_done:  # a new phase (a build, then a search): count afresh
            start, last_tenth = now, -1
        last_done = done
        tenth = (10 * done) // max(total, 1)
        if done < total and tenth == last_tenth and now - last_time < every_seconds:
            return
        last_time, last_tenth = now, tenth
        rate = done / (now - start) if now > start else float("inf")
        context.log.info(
            f"{what}: {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f}%, "
            f"{rate:,.0f} {unit}/s)"
        )

    return report


def with_progress(settings: Settings, context, what: str) -> Settings:
    """The study's method settings, reporting block progress of ``what`` to this run's log."""
    return dataclasses.replace(settings, progress=log_progress(context, what))
