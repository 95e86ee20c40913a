"""Assemble one Definitions object from a study config.

Machine-dependent choices come from the environment, never from the study: where files live
(``$PHASE2_DATA_DIR``, ``$PHASE2_STORAGE_URL``), the executor (``$PHASE2_EXECUTOR``,
``$PHASE2_MAX_CONCURRENT``) and the runtime settings in ``resources``. The one exception is the
store: a code location may name its own (``storage_url``), so that one deployment holds several
studies, each in its own store, whatever the environment of the process that runs its steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from phase2_assets.compute.methods import METHODS
from phase2_assets.config import Study
from phase2_assets.defs.assets import (
    analysis,
    bands,
    codes,
    collection,
    embeddings,
    exploratory,
    ground_truth,
    ladder,
    metrics,
    verdict,
)
from phase2_assets.defs.execution import executors as execution
from phase2_assets.defs.execution.slots import dead_runs_sensor
from phase2_assets.defs.graph.groups import check_placed
from phase2_assets.defs.graph.jobs import build_jobs
from phase2_assets.defs.graph.partitions import build_partitions
from phase2_assets.defs.graph.sensors import build_tier_sensors
from phase2_assets.defs.steps.runtime import runtime_from_env
from phase2_assets.defs.storage.io_managers import io_manager_resources
from phase2_assets.defs.storage.locations import cache_dir

ASSET_MODULES = (
    collection,
    embeddings,
    ground_truth,
    codes,
    metrics,
    ladder,
    analysis,
    exploratory,
)


def default_data_dir() -> str:
    return os.environ.get("PHASE2_DATA_DIR") or str(Path.cwd() / "data")


def build_definitions(
    study: Study,
    data_dir: str | None = None,
    storage_url: str | None = None,
    **resource_overrides,
) -> dg.Definitions:
    """``data_dir``: the local folder (scratch, the download cache; the files too without a
    store). ``storage_url``: this study's own store (any fsspec URL), which wins over
    ``$PHASE2_STORAGE_URL`` and is checked as it is."""
    _check_method_names(study)
    data_dir = str(Path(data_dir or default_data_dir()).resolve())
    runtime = runtime_from_env(data_dir, storage_url)
    root = runtime.storage_root
    parts = build_partitions(study)
    assets = [a for module in ASSET_MODULES for a in module.build(study, parts)]
    assets += verdict.build(study) + bands.build(study)
    check_placed(assets)
    assets = execution.with_backfill_policy(assets)
    resources = {
        "runtime": runtime,
        **io_manager_resources(str(root), str(cache_dir(data_dir))),
        **resource_overrides,
    }
    level_jobs = build_jobs(assets, parts, study.name)
    return dg.Definitions(
        assets=assets,
        jobs=level_jobs,
        sensors=[*build_tier_sensors(study, root, level_jobs), dead_runs_sensor()],
        resources=resources,
        executor=execution.executor_from_env(execution.step_pools(assets)),
    )


def _check_method_names(study: Study) -> None:
    unknown = sorted(set(study.methods.extra or ()) - set(METHODS))
    if unknown:
        raise ValueError(
            f"study {study.name!r}: methods.extra names unknown methods {unknown}; "
            f"registered: {sorted(METHODS)}"
        )
