"""How the graph is cut into runs, and where the steps of a run execute.

Backfill policy: one partition per run, at every partitioned level (dataset, pair, pair x bits).
A run of a level's job already does all of that partition's work (``bits_job`` builds and scores
every method at one bit length), so the overhead that remains is one run per partition. Batching
several bit lengths into one run would need what this graph cannot give in Dagster 1.13: the
file-per-partition IO managers (``UPathIOManager``) refuse an output that spans partitions;
``binary_codes`` and ``pq_index`` skip bit lengths the tiers do not plan, which a ranged run can
only do for all of its partitions at once; and the blocking checks are evaluated per partition
(partitioned asset checks are a preview feature).

Run layout: per-run overhead is kept small relative to the work by where steps run. The
``pair_job`` (model on the device, memory-heavy ground truth and int8) gives each step its
own process, or its own pod on Kubernetes, sized by pool. The other jobs run every step in the
run's own process: their steps take seconds on small datasets, and a process per step first loads
the code location, about 3 s on 2 cores (a pod per step, far more; `test_load_cost`
keeps torch, scikit-learn and scipy.stats out of that load).

Executor: ``$PHASE2_EXECUTOR`` picks the step executor of ``pair_job`` and of ad-hoc asset
runs: ``multiprocess`` (default; at most ``$PHASE2_MAX_CONCURRENT`` steps at once, default one per
CPU), ``in_process``, ``k8s`` (``dagster_k8s.k8s_job_executor``: one pod per step; needs the
``cluster`` extra), or ``celery`` (``dagster_celery.celery_executor``: each step a task on a
Celery worker, see ``celery_workers``; every job's steps then go to the workers). The cluster
libraries are imported only when asked for.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping

import dagster as dg

from phase2_assets.defs.execution import pools
from phase2_assets.defs.steps.runtime import whole_number_env

EXECUTOR_ENV = "PHASE2_EXECUTOR"
MAX_CONCURRENT_ENV = "PHASE2_MAX_CONCURRENT"
DEFAULT_EXECUTOR = "multiprocess"

ONE_PARTITION_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)

# Container resources of a step pod by pool (k8s executor). Starting points for the full study
# (bge-large on 500K passages is a 2 GB float matrix); a GPU node pool may also need a
# nodeSelector or tolerations, which go in the same per-step config.
K8S_POOL_RESOURCES: dict[str, dict] = {
    pools.EMBEDDING: {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    },
    pools.MEMORY_HEAVY: {
        "requests": {"cpu": "2", "memory": "16Gi"},
        "limits": {"memory": "16Gi"},
    },
}


def with_backfill_policy(assets: Iterable[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Every partitioned asset backfills one partition per run (see the module docstring)."""
    return [
        a.with_attributes(backfill_policy=ONE_PARTITION_PER_RUN) if a.partitions_def else a
        for a in assets
    ]


def step_pools(assets: Iterable[dg.AssetsDefinition]) -> dict[str, str]:
    """Step (op) name -> pool, for the steps that belong to one."""
    return {a.op.name: a.op.pool for a in assets if a.is_executable and a.op.pool}


def k8s_step_config(pools_by_step: Mapping[str, str]) -> dict[str, dict]:
    """``per_step_k8s_config`` of the k8s executor: each pooled step's pod sized by its pool."""
    return {
        step: {"container_config": {"resources": K8S_POOL_RESOURCES[pool]}}
        for step, pool in sorted(pools_by_step.items())
        if pool in K8S_POOL_RESOURCES
    }


def max_concurrent_from_env() -> int | None:
    return whole_number_env(MAX_CONCURRENT_ENV, "a whole number of steps")


def _multiprocess(max_concurrent: int | None, _: Mapping[str, str]) -> dg.ExecutorDefinition:
    if max_concurrent is None:  # run config may still set it; Dagster's default is one per CPU
        return dg.multiprocess_executor
    return dg.multiprocess_executor.configured({"max_concurrent": max_concurrent})


def _in_process(_: int | None, __: Mapping[str, str]) -> dg.ExecutorDefinition:
    return dg.in_process_executor


def _celery(_: int | None, __: Mapping[str, str]) -> dg.ExecutorDefinition:
    dagster_celery = _import_cluster_library("dagster_celery", "dagster-celery", "celery")
    from phase2_assets.defs.execution.celery_workers import celery_settings

    # How many steps run at once is the workers' concurrency (`celery worker -c N`), and the
    # pools' limits, claimed in the instance before a step is submitted.
    return dagster_celery.celery_executor.configured(celery_settings())


def _k8s(max_concurrent: int | None, pools_by_step: Mapping[str, str]) -> dg.ExecutorDefinition:
    dagster_k8s = _import_cluster_library("dagster_k8s", "dagster-k8s", "k8s")
    config: dict = {"per_step_k8s_config": k8s_step_config(pools_by_step)}
    if max_concurrent is not None:
        config["max_concurrent"] = max_concurrent
    # Image, namespace, secrets and config maps come from the K8sRunLauncher in dagster.yaml.
    return dagster_k8s.k8s_job_executor.configured(config)


EXECUTORS: dict[str, Callable[[int | None, Mapping[str, str]], dg.ExecutorDefinition]] = {
    "multiprocess": _multiprocess,
    "in_process": _in_process,
    "k8s": _k8s,
    "celery": _celery,
}
# Executors whose steps run on other machines: every job's steps go there, those that would
# otherwise run in the run's own process included (that process is on the launching machine,
# whose files the workers need not see).
REMOTE_STEP_EXECUTORS = frozenset({"celery"})


def executor_name() -> str:
    name = os.environ.get(EXECUTOR_ENV, "").strip().lower() or DEFAULT_EXECUTOR
    if name not in EXECUTORS:
        raise ValueError(
            f"{EXECUTOR_ENV}={name!r} is not an executor this code location knows; "
            f"one of {', '.join(EXECUTORS)}"
        )
    return name


def steps_run_remotely() -> bool:
    """Whether ``$PHASE2_EXECUTOR`` sends steps to other machines (every job then uses it)."""
    return executor_name() in REMOTE_STEP_EXECUTORS


def executor_from_env(pools_by_step: Mapping[str, str]) -> dg.ExecutorDefinition:
    """The step executor named by ``$PHASE2_EXECUTOR`` (default ``multiprocess``)."""
    return EXECUTORS[executor_name()](max_concurrent_from_env(), pools_by_step)


def _import_cluster_library(module: str, package: str, executor: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{EXECUTOR_ENV}={executor} needs the {package} package, which is not installed: "
            "pip install -e '.[cluster]' (see deploy/cluster/README.md)"
        ) from exc
