"""A step's outputs are all or nothing.

Dagster stores each output the moment the step yields it, so a multi-output step that fails half
way leaves its first outputs replaced and the rest old: a failed import of a pair's vectors
replaced the corpus embeddings and kept the old query embeddings, and the next run scored new
corpus vectors against old queries and ground truth. A step body wrapped here runs to its end
before Dagster sees any of its events: an exception yields nothing (every earlier file stays), and
a failed blocking check withholds every output of the step (its check results are still
reported). Outputs of such steps are declared ``is_required=False`` so withholding them is not a
second error. (A write that fails after an earlier output of the same step was stored, a full
disk say, can still leave the earlier one: each file is replaced atomically, not the set.)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import dagster as dg


def _is_blocking_failure(event, blocking: set[tuple[dg.AssetKey, str]]) -> bool:
    if not isinstance(event, dg.AssetCheckResult) or event.passed:
        return False
    if event.asset_key is None:  # a one-asset step: the check's name says which
        return any(name == event.check_name for _, name in blocking)
    return (dg.AssetKey.from_coercible(event.asset_key), event.check_name) in blocking


def all_or_nothing(fn: Callable) -> Callable:
    """A generator asset body whose outputs reach Dagster together, or not at all."""
    if not inspect.isgeneratorfunction(fn):
        raise TypeError(f"{fn.__name__}: all_or_nothing wraps a generator asset body")

    @functools.wraps(fn)
    def body(context, *args, **kwargs):
        events = list(fn(context, *args, **kwargs))  # raises before anything is stored
        blocking = {(s.asset_key, s.name) for s in context.assets_def.check_specs if s.blocking}
        failed = [e.check_name for e in events if _is_blocking_failure(e, blocking)]
        withheld = [e.output_name for e in events if isinstance(e, dg.Output)]
        if failed and withheld:
            context.log.error(
                f"blocking check(s) {', '.join(failed)} failed: none of this step's outputs "
                f"({', '.join(withheld)}) is stored, so every earlier file stays as it was"
            )
            events = [e for e in events if not isinstance(e, dg.Output)]
        yield from events

    return body
