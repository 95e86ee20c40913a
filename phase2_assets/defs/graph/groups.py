"""Where every asset sits in the study plan: its group in the UI and its experiment tag.

The lineage view groups assets the way the plan is read (docs/plan.md): the core track E1–E6, the
analysis track E7–E8 with X1–X2, the exploratory track X3–X4, and the report (kill-switches,
verdict, ledger, HTML report). The finer experiment id is a tag (``phase2/experiment``), which
the catalog shows and filters by. Each asset says where it sits where it is defined
(``**in_plan(CORE, "E2")``); an asset that does not is refused when the definitions are built,
so nothing lands in Dagster's ``default`` group.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

CORE, ANALYSIS, EXPLORATORY, REPORT = "core", "analysis", "exploratory", "report"
GROUP_ORDER = (CORE, ANALYSIS, EXPLORATORY, REPORT)
EXPERIMENT_TAG = "phase2/experiment"


def in_plan(group: str, experiment: str) -> dict:
    """Decorator arguments (``@dg.asset``, ``dg.AssetOut``) placing an asset in the plan."""
    if group not in GROUP_ORDER:
        raise ValueError(f"group {group!r}: expected one of {', '.join(GROUP_ORDER)}")
    return {"group_name": group, "tags": {EXPERIMENT_TAG: experiment}}


def check_placed(assets: Iterable[dg.AssetsDefinition]) -> None:
    for asset in assets:
        for key, spec in asset.specs_by_key.items():
            if spec.group_name not in GROUP_ORDER or EXPERIMENT_TAG not in spec.tags:
                raise KeyError(
                    f"asset {key.to_user_string()!r} has no place in the plan: give its "
                    "decorator **in_plan(group, experiment) (defs/groups.py)"
                )
