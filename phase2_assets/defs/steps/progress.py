"""Progress lines in the run log for steps that take minutes at 500K scale.

The computation reports (done, total) after every block; the run log gets a line for the first
block (the rate, early), then when a tenth more of the work is done or a minute has passed, and
always the last, so a 2M-block search
prints about ten lines instead of thousands, and a stuck step is visible as silence.
"""

from __future__ import annotations

import dataclasses
import os
import sys
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


PROGRESS_BAR_ENV = "PHASE2_PROGRESS_BAR"  # 1: draw it (phase2 sets it on a terminal); 0: never


def _terminal():
    """Where a bar can be drawn: the controlling terminal, opened directly, because a run's
    stderr is Dagster's compute-log capture (a pipe) even when it mirrors to a terminal."""
    wanted = os.environ.get(PROGRESS_BAR_ENV)
    if wanted == "0" or not (wanted == "1" or sys.stderr.isatty()):
        return None
    try:
        return open("/dev/tty", "w")  # noqa: SIM115 - closed when the bar finishes
    except OSError:
        return sys.stderr if sys.stderr.isatty() else None


def terminal_bar(what: str, unit: str = "texts", open_terminal=_terminal):
    """A tqdm bar (rate and time left) on the terminal of the researcher watching ``phase2``;
    nothing in a log file, in CI or in a daemon-launched run."""
    bar, stream = None, None

    def report(done: int, total: int) -> None:
        nonlocal bar, stream
        if bar is None:
            stream = open_terminal()
            if stream is None:
                return
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=done, desc=what, unit=f" {unit}", file=stream)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            if stream is not sys.stderr:
                stream.close()

    return report


def both(*reports: Callable[[int, int], None]) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        for r in reports:
            r(done, total)

    return report


def with_progress(settings: Settings, context, what: str) -> Settings:
    """The study's method settings, reporting block progress of ``what`` to this run's log."""
    return dataclasses.replace(settings, progress=log_progress(context, what))
