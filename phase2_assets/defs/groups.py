"""Where every asset sits in the study plan: its group in the UI and its experiment tag.

The lineage view groups assets the way the plan is read (STUDY.md): the core track E1–E6, the
analysis track E7–E8 with X1–X2, the exploratory track X3–X4, and the report (kill-switches,
verdict, ledger, HTML report). The finer experiment id is a tag (``phase2/experiment``), which
the catalog shows and filters by. One table, so a new asset that is
not placed fails the build instead of landing in Dagster's ``default`` group.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

CORE, ANALYSIS, EXPLORATORY, REPORT = "core", "analysis", "exploratory", "report"
GROUP_ORDER = (CORE, ANALYSIS, EXPLORATORY, REPORT)
EXPERIMENT_TAG = "phase2/experiment"

PLAN: dict[str, tuple[str, str]] = {
    "corpus": (CORE, "E1"),
    "queries": (CORE, "E1"),
    "qrels": (CORE, "E1"),
    "corpus_embeddings": (CORE, "E1"),
    "query_embeddings": (CORE, "E1"),
    "binary_codes": (CORE, "E2"),
    "int8_index": (CORE, "E3"),
    "pq_index": (CORE, "E3"),
    "float_ground_truth": (CORE, "E4"),
    "evaluation_qrels": (CORE, "E4"),
    "reference_metrics": (CORE, "E4-E6"),
    "binary_metrics": (CORE, "E5"),
    "pq_metrics": (CORE, "E6"),
    "method_metrics": (CORE, "E5-E6"),
    "results/retrieval_metrics": (CORE, "E5-E6"),
    "embedding_geometry": (ANALYSIS, "E7"),
    "code_geometry": (ANALYSIS, "E7"),
    "results/geometry": (ANALYSIS, "E7"),
    "results/regression": (ANALYSIS, "E8"),
    "results/bfi": (ANALYSIS, "X1-X2"),
    "adapter_metrics": (EXPLORATORY, "X3"),
    "results/adapter": (EXPLORATORY, "X3"),
    "results/design_memo": (EXPLORATORY, "X4"),
    "results/budget_ledger": (REPORT, "budget"),
    "results/kill_switches": (REPORT, "F1-F3-K1-K3"),
    "results/verdict": (REPORT, "verdict"),
    "results/report": (REPORT, "report"),
}


def _place(spec: dg.AssetSpec) -> dg.AssetSpec:
    key = spec.key.to_user_string()
    if key not in PLAN:
        raise KeyError(f"asset {key!r} has no place in the plan; add it to defs/groups.PLAN")
    group, experiment = PLAN[key]
    return spec.replace_attributes(group_name=group, tags={**spec.tags, EXPERIMENT_TAG: experiment})


def place_in_plan(assets: Iterable[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    return list(dg.map_asset_specs(_place, list(assets)))
